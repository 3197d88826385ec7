"""Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391), returning every intermediate step.

For an image, a class c and a convolution layer with feature maps A^k (K maps of
H x W), Grad-CAM weighs each map by how much the class score responds to it:

    alpha_k^c = 1/(H W) * sum_ij  d y^c / d A^k_ij        (global average of the gradient)
    L^c       = ReLU( sum_k alpha_k^c A^k )                 (H x W, then upsampled)

y^c is the score before the softmax, as in the paper. The maps A^k are those a
conv layer passes on: the output of its block (convolution, batch norm, ReLU),
before any pooling. Every class's map comes from one batched forward and
backward pass: the image is repeated once per class and the backward pass
starts from a one-hot row per copy.
"""

from dataclasses import dataclass

import numpy as np

from .losses import softmax


@dataclass
class GradCAM:
    """Every step of Grad-CAM for a batch of (image, class) pairs. N = pairs."""

    layer: str  # the conv layer whose block output is explained
    classes: np.ndarray  # (N,) the class explained for each pair
    activations: np.ndarray  # (N, K, H, W)  A^k
    gradients: np.ndarray  # (N, K, H, W)  d y^c / d A^k
    weights: np.ndarray  # (N, K)        alpha_k^c
    weighted_sum: np.ndarray  # (N, H, W)  sum_k alpha_k A^k, before the ReLU
    cam: np.ndarray  # (N, H, W)           after the ReLU
    upsampled: np.ndarray  # (N, h, w)      bilinear, to the input's size
    normalized: np.ndarray  # (N, h, w)     upsampled / its maximum (all zeros stays zeros)
    scores: np.ndarray  # (N, C)            class scores before the softmax
    probabilities: np.ndarray  # (N, C)


def block_outputs(model):
    """{conv layer name: index in forward_all of its block's output} -- after batch norm and
    ReLU, before pooling, the maps the next stage receives."""
    out, current = {}, None
    for i, layer in enumerate(model.layers):
        if layer.kind == "conv":
            current = layer.name
        elif layer.kind in ("maxpool", "avgpool", "flatten", "dense"):
            current = None
        if current is not None:
            out[current] = i + 1  # acts[i + 1] is the output of layers[i]
    return out


def class_onehot(scores, classes):
    """The gradient that starts a backward pass at the score of classes[n] of each row n."""
    onehot = np.zeros_like(scores)
    onehot[np.arange(len(classes)), classes] = 1
    return onehot


def bilinear_matrix(size_out, size_in):
    """(size_out, size_in) matrix M with M @ v the bilinear resampling of v.

    Sample positions follow the half-pixel convention (align_corners=False in
    PyTorch, the default of OpenCV's resize): output pixel o looks at input
    coordinate (o + 0.5) * size_in / size_out - 0.5, clamped to the edges.
    """
    src = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    src = np.clip(src, 0, size_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, size_in - 1)
    frac = src - lo
    rows = np.arange(size_out)
    m = np.zeros((size_out, size_in))
    m[rows, lo] += 1 - frac  # each statement touches each row once, so += is safe
    m[rows, hi] += frac
    return m


def upsample(maps, height, width):
    """Bilinear resize of (N, H, W) maps to (N, height, width): rows then columns, as two matrix products."""
    rows = bilinear_matrix(height, maps.shape[1])  # (height, H)
    cols = bilinear_matrix(width, maps.shape[2])  # (width, W)
    return rows @ maps @ cols.T


def normalize(maps):
    """Each map divided by its maximum, so the strongest evidence is 1; an all-zero map stays zero."""
    peak = maps.reshape(len(maps), -1).max(axis=1)
    safe = np.where(peak > 0, peak, 1.0)
    return maps / safe[:, None, None]


def grad_cam(model, x, classes, layer=None):
    """Grad-CAM of images x (N, C, H, W) for classes (N,), at `layer` (default: the last conv layer).

    To explain one image for every class, repeat it: grad_cam(model, np.repeat(x, K, 0), np.arange(K)).
    """
    blocks = block_outputs(model)
    layer = layer or list(blocks)[-1]
    return grad_cam_layers(model, x, classes, [layer])[layer]


def grad_cam_layers(model, x, classes, layers=None):
    """{layer: GradCAM} for several conv layers (default: all) from one forward and backward pass."""
    blocks = block_outputs(model)
    layers = list(blocks) if layers is None else list(layers)
    for layer in layers:
        if layer not in blocks:
            raise ValueError(f"Grad-CAM needs a conv layer; the conv layers are {list(blocks)}, not {layer!r}")
    classes = np.asarray(classes)
    acts = model.forward_all(x)
    scores = acts[-1]
    grads = model.backward_all(class_onehot(scores, classes), need_params=False)  # from the class score itself
    model.clear_cache()
    out = {}
    for layer in layers:
        a, g = acts[blocks[layer]], grads[blocks[layer]]  # (N, K, H, W)
        weights = g.mean(axis=(2, 3))  # (N, K): the global average pool of each gradient map
        weighted = np.einsum("nk,nkhw->nhw", weights, a)  # sum_k alpha_k A^k
        cam = np.maximum(weighted, 0)
        up = upsample(cam, x.shape[2], x.shape[3])
        out[layer] = GradCAM(layer, classes, a, g, weights, weighted, cam, up, normalize(up), scores, softmax(scores))
    return out


def grad_cam_all_classes(model, image, layer=None):
    """The Grad-CAM steps of one image (C, H, W) for each class, from one batched pass."""
    k = model.output_shape()[0]
    return grad_cam(model, np.repeat(image[None], k, axis=0), np.arange(k), layer)
