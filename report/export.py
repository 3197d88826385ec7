"""The trained network as a JavaScript file, for the in-browser demo.

Browsers refuse fetch() and XMLHttpRequest of local files on file://, so the
weights travel in a .js file that the page loads with a <script> tag: it sets
``window.CNN_MODEL`` (the layers and their float32 weights, base64-encoded) and
``window.CNN_SAMPLES`` (test images with NumPy's probabilities and Grad-CAM
maps, for the page's self-test against this very code).

Each batch normalisation is folded into the convolution before it: in
evaluation mode it is the affine map gamma * (x - mean) / sqrt(var + eps) + beta,
so scaling each output channel's kernel and shifting its bias gives the same
outputs with one layer fewer to compute.
"""

import base64
import json

import numpy as np

from cnn.gradcam import grad_cam

FORMAT = 1


def _b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def _tensor(array):
    return {"shape": list(array.shape), "data": _b64(array, np.float32)}


def fold_batchnorm(conv, bn):
    """(weight, bias) of a conv layer with the batch norm that follows it folded in."""
    scale = bn.params["gamma"] / np.sqrt(bn.buffers["running_var"].astype(np.float64) + bn.eps)
    weight = conv.params["weight"] * scale[:, None, None, None]
    bias = (conv.params["bias"] - bn.buffers["running_mean"]) * scale + bn.params["beta"]
    return weight.astype(np.float32), bias.astype(np.float32)


def export_layers(model):
    """The layers as the JavaScript forward pass runs them: conv (batch norm folded), relu, maxpool, flatten, dense."""
    layers, i = [], 0
    while i < len(model.layers):
        layer = model.layers[i]
        kind = type(layer).__name__
        if kind == "Conv2D":
            if layer.stride != 1:
                raise ValueError("the in-browser demo supports stride-1 convolutions only")
            nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
            if nxt is not None and type(nxt).__name__ == "BatchNorm2D":
                weight, bias = fold_batchnorm(layer, nxt)
                i += 1
            else:
                weight, bias = layer.params["weight"], layer.params["bias"]
            layers.append({"type": "conv", "name": layer.name, "pad": layer.padding,
                           "weight": _tensor(weight), "bias": _tensor(bias)})
        elif kind == "ReLU":
            layers.append({"type": "relu", "name": layer.name})
        elif kind == "MaxPool2D":
            layers.append({"type": "maxpool", "name": layer.name, "size": layer.kernel_size, "stride": layer.stride})
        elif kind == "Flatten":
            layers.append({"type": "flatten", "name": layer.name})
        elif kind == "Dense":
            layers.append({"type": "dense", "name": layer.name, "weight": _tensor(layer.params["weight"]),
                           "bias": _tensor(layer.params["bias"])})
        elif kind == "Dropout":
            pass  # the identity in evaluation
        else:
            raise ValueError(f"the in-browser demo has no {kind} layer")
        i += 1
    return layers


def demo_indices(labels, per_class=2):
    """The test images the demo offers and self-tests on: the first few of each class."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]))


def colormap_lut(name):
    """256 RGB entries of a matplotlib colour map, for the page to colour its heat maps like the site's figures."""
    import matplotlib

    return (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def export_script(model, data, sample_indices, gradcam_layer, class_names, colormap):
    """(text of the .js file, the samples' arrays): the model, and samples with NumPy's answers for the self-test."""
    x = data.x_test[sample_indices]
    proba = model.predict_proba(x, workers=1)
    pred = proba.argmax(axis=1)
    cams = grad_cam(model, x, pred, gradcam_layer)
    relu_after = [l.name for l in model.layers[model.index(gradcam_layer):] if l.kind == "relu"][0]
    model_doc = {
        "format": FORMAT, "input_shape": list(model.input_shape), "classes": list(class_names),
        "gradcam_layer": relu_after, "layers": export_layers(model),
        "colormap": base64.b64encode(colormap_lut(colormap).tobytes()).decode(),
    }
    samples = {
        "count": int(len(sample_indices)), "indices": [int(i) for i in sample_indices],
        "labels": [int(v) for v in data.y_test[sample_indices]],
        "images": base64.b64encode((x[:, 0] * 255).round().astype(np.uint8).tobytes()).decode(),
        "proba": _b64(proba, np.float32), "pred": [int(v) for v in pred],
        "cam": _b64(cams.normalized, np.float32), "cam_shape": list(cams.normalized.shape[1:]),
    }
    text = ("// The trained network of this site, written by build.py. Generated: do not edit.\n"
            f"window.CNN_MODEL = {json.dumps(model_doc, separators=(',', ':'))};\n"
            f"window.CNN_SAMPLES = {json.dumps(samples, separators=(',', ':'))};\n")
    return text, {"proba": proba, "pred": pred, "cam": cams.normalized}
