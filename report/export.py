"""The trained network as a JavaScript file, for the in-browser demo.

Browsers refuse fetch() and XMLHttpRequest of local files on file://, so the
weights travel in a .js file that the page loads with a <script> tag: it sets
``window.CNN_MODEL`` (the layers and their float32 weights, base64-encoded) and
``window.CNN_SAMPLES`` (test images with NumPy's probabilities and Grad-CAM
maps, for the page's self-test against this very code).

Each batch normalisation is folded into the convolution before it
(cnn.model.fold_batchnorm): in evaluation mode it is a fixed affine map, so
scaling each output channel's kernel and shifting its bias gives the same
outputs with one layer fewer to compute.
"""

import base64
import json

import numpy as np

from cnn.gradcam import grad_cam
from cnn.model import fold_batchnorm

from .trust import BLUR_SIGMA, IG_STEPS, SMOOTHGRAD_NOISE, SMOOTHGRAD_SAMPLES

FORMAT = 1


def _b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def _tensor(array, dtype=np.float32):
    return {"shape": list(array.shape), "dtype": np.dtype(dtype).name, "data": _b64(array, dtype)}


def export_layers(model, dtype=np.float32):
    """The layers as the JavaScript forward pass runs them -- conv (batch norm folded in, see
    cnn.model.fold_batchnorm), relu, maxpool, flatten, dense -- with weights stored as dtype."""
    layers = []
    for layer in fold_batchnorm(model).layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "Dense"):
            if kind == "Conv2D" and layer.stride != 1:
                raise ValueError("the in-browser network supports stride-1 convolutions only")
            layers.append({"type": layer.kind, "name": layer.name, "pad": getattr(layer, "padding", 0),
                           "weight": _tensor(layer.params["weight"], dtype),
                           "bias": _tensor(layer.params.get("bias", np.zeros(layer.params["weight"].shape[0 if kind == "Conv2D" else 1], np.float32)), dtype)})
        elif kind == "ReLU":
            layers.append({"type": "relu", "name": layer.name})
        elif kind == "MaxPool2D":
            layers.append({"type": "maxpool", "name": layer.name, "size": layer.kernel_size, "stride": layer.stride})
        elif kind == "Flatten":
            layers.append({"type": "flatten", "name": layer.name})
        elif kind == "Dropout":
            pass  # the identity in evaluation
        else:
            raise ValueError(f"the in-browser network has no {kind} layer")
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
    model_doc = {
        "format": FORMAT, "input_shape": list(model.input_shape), "classes": list(class_names),
        "gradcam_layer": gradcam_layer, "layers": export_layers(model),
        "colormap": base64.b64encode(colormap_lut(colormap).tobytes()).decode(),
        # the settings of the methods that take many passes, as the trust chapter measured them
        "method_settings": {"steps": IG_STEPS, "sigma": BLUR_SIGMA, "samples": SMOOTHGRAD_SAMPLES,
                            "noise": SMOOTHGRAD_NOISE},
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
