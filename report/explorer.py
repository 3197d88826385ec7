"""The explorer's data: every test image, the network after every epoch, and NumPy's answers
for the page's self-test.

The page loads its data with <script> tags (browsers refuse fetch() of local files on file://):

- static/js/test-set.js sets window.CNN_TEST: every test image as uint8 pixels, its label,
  and NumPy's predicted class and confidence, in one zlib stream, base64-encoded; the page
  unpacks it with the browser's DecompressionStream("deflate").
- static/js/snapshots.js sets window.CNN_SNAPSHOTS: the network at initialisation and after
  every epoch but the last, batch norm folded in, weights rounded to float16. The network
  after the last epoch is trained-model.js, in float32.

The self-test's reference -- NumPy's Grad-CAM steps at every conv layer, saliency and guided
backpropagation, for a stratified set of test images, every class and every snapshot -- is
not published: the build writes it beside a harness page in a temporary folder and runs that
page in headless Chromium (report/browsercheck.py). NumPy computes it on the very weights
the page holds: the float32 network for the last epoch, the float16-rounded ones before.
What the rounding itself changes is measured separately (float16_effect).

Saliency and guided backpropagation follow each gradient to one pixel, so they are computed
as the page computes (page_arithmetic: sums in float64, every layer's output stored in
float32). Where a stroke is saturated, neighbouring windows are identical and a max pool
sees an exact tie; the page's sums give both the same value and the gradient goes to the
first, but float32 matrix products round a column by its place in the batch, so NumPy in
float32 could send it to the other, a difference of the whole gradient at two pixels (1.2
on one machine's network). Grad-CAM's weights average each channel's gradient, which such
a tie moves only within its window, so its steps are computed in float32 as the site shows them.
"""

import base64
import json
import zlib

import numpy as np

from cnn.attribution import (blur, class_probability, deletion_insertion, grad_cam_plus_plus, guided_backprop,
                             integrated_gradients, saliency, score_cam, smoothgrad, spearman)
from cnn.data import stratified_indices
from cnn.gradcam import block_outputs, grad_cam, grad_cam_layers
from cnn.model import fold_batchnorm, pool_before_relu
from cnn.parallel import DEFAULT_WORKERS

from .explain import chunked
from .export import export_layers
from .memory import release_freed_memory
from .trust import BLUR_SIGMA, IG_STEPS, SMOOTHGRAD_NOISE, SMOOTHGRAD_SAMPLES, evidence_map, threaded

TEST_SET_SCRIPT = "test-set.js"
SNAPSHOTS_SCRIPT = "snapshots.js"
SELFTEST_IMAGES = 50  # at least 5 of each class
METHOD_IMAGES = 5  # the first of them, explained by the methods that take many passes, under the final network


def js_global(name, doc, comment):
    """The text of a script that sets window.<name> to doc (a page's data, loaded by a <script> tag)."""
    return f"// {comment} Written by build.py; do not edit.\nwindow.{name} = {json.dumps(doc, separators=(',', ':'))};\n"


def test_set_script(data, proba):
    """window.CNN_TEST: every test image, its label, NumPy's predicted class and confidence."""
    x = data.x_test
    n = len(x)
    pixels = (x * 255).round().astype(np.uint8)  # the images were stored as bytes: exact
    pred = proba.argmax(axis=1)
    raw = b"".join([pixels.tobytes(), data.y_test.astype(np.uint8).tobytes(), pred.astype(np.uint8).tobytes(),
                    proba.max(axis=1).astype("<f4").tobytes()])
    doc = {"count": n, "shape": list(x.shape[1:]), "layout": ["pixels uint8", "labels uint8", "pred uint8",
                                                              "confidence float32"],
           "deflate": base64.b64encode(zlib.compress(raw, 6)).decode()}  # level 9: 2 % smaller, 14x slower
    return js_global("CNN_TEST", doc, "The test images, their labels and NumPy's answers.")


def page_networks(run):
    """{epoch: the network the page runs after that epoch}: batch norm folded; float16 weights before
    the last epoch (float32 for the last, as trained-model.js holds it)."""
    last = max(run.snapshots)
    out = {}
    for epoch in sorted(run.snapshots):
        model = fold_batchnorm(run.model_at(epoch))
        if epoch != last:
            for layer in model.layers:
                layer.params = {k: v.astype(np.float16).astype(np.float32) for k, v in layer.params.items()}
        out[epoch] = model
    return out


def snapshots_script(run, class_names, layer):
    """window.CNN_SNAPSHOTS: the network at initialisation and after every epoch but the last, in float16."""
    last = max(run.snapshots)
    doc = [{"epoch": e, "format": 1, "input_shape": list(run.model.input_shape), "classes": list(class_names),
            "gradcam_layer": layer, "layers": export_layers(run.model_at(e), np.float16)}
           for e in sorted(run.snapshots) if e != last]
    return js_global("CNN_SNAPSHOTS", doc, "The network before the last epoch: at initialisation and after each epoch.")


def float16_effect(run, data, networks, indices, workers=DEFAULT_WORKERS):
    """What rounding the snapshots to float16 changes, on the test images `indices`."""
    x = data.x_test[indices]

    def row(epoch):
        exact, net = run.model_at(epoch), networks[epoch]
        p, q = exact.predict_proba(x, workers=1), net.predict_proba(x, workers=1)
        layer = list(block_outputs(exact))[-1]
        c = p.argmax(axis=1)
        a, b = (chunked(lambda xs, cs: grad_cam(m, xs, cs, layer).normalized, x, c) for m in (exact, net))
        return {"epoch": epoch, "max_probability_change": float(np.abs(p - q).max()),
                "changed_predictions": int((p.argmax(axis=1) != q.argmax(axis=1)).sum()),
                "max_gradcam_change": float(np.abs(a - b).max())}

    return {"images": int(len(indices)),
            "epochs": threaded(row, workers, [e for e in networks if e != max(networks)])}


def selftest_reference(networks, data, rng, n=SELFTEST_IMAGES):
    """(header, docs): NumPy's answers for n stratified test images x every class x every conv
    layer x every network, as base64 float32 arrays, in the order the self-test loops: image,
    class; and, for the final network, those of the methods that take many passes.

    header["files"] lists the docs in the order they come, each as [kind, network, file name]
    (kind "methods" or "maps"; network: its position in the page's list, CNN_SNAPSHOTS then
    CNN_MODEL): the methods first, then one network's maps at a time. docs is a generator that
    makes each doc when asked for it."""
    idx = stratified_indices(data.y_test, min(n, len(data.y_test)), rng)
    x = data.x_test[idx]
    final = max(networks)
    k = networks[final].output_shape()[0]
    xs, cs = np.repeat(x, k, axis=0), np.tile(np.arange(k), len(idx))  # (image, class) pairs
    position = {epoch: p for p, epoch in enumerate(networks)}
    files = [["methods", position[final], "reference-methods.js"]] + [
        ["maps", position[epoch], f"reference-network-{position[epoch]}.js"] for epoch in networks]
    header = {"files": files, "indices": [int(i) for i in idx], "images": int(len(idx)), "classes": int(k),
              "image_size": int(np.prod(x.shape[1:])), "pixels": float32_base64(x)}

    x64, every = x.astype(np.float64), np.tile(np.arange(k), (len(idx), 1))
    steps = ("weights", "weighted_sum", "cam", "upsampled")

    def maps(epoch, net):
        page = page_arithmetic(net)  # for the maps that follow a gradient to its pixel: see above
        layers = chunked(lambda a, b: {layer: {k: getattr(g, k) for k in steps}
                                       for layer, g in grad_cam_layers(net, a, b).items()}, xs, cs)
        for arrays in layers.values():  # (K, h, w) of the layer's maps, for the page's loops
            arrays["shape"] = [arrays["weights"].shape[1], *arrays["weighted_sum"].shape[1:]]
        # every class of an image from one forward pass: (images, classes, H, W) -> (pairs, H, W)
        pairs = lambda fn: chunked(lambda a, b: fn(page, a, b), x64, every).reshape(len(xs), *x.shape[2:])
        return {"epoch": epoch, "probabilities": net.predict_proba(x, workers=1), "layers": layers,
                "saliency": pairs(saliency), "guided": pairs(guided_backprop)}

    def docs():  # in the order of files
        yield "methods", float32_base64({"epoch": final,
                                         "methods": method_reference(networks[final], x[:METHOD_IMAGES], rng)})
        for epoch, net in networks.items():
            release_freed_memory()  # the arrays behind the doc before, before this one's are made
            yield "maps", float32_base64(maps(epoch, net))

    return header, docs()


def _float32_values(a):
    return a.astype(np.float32).astype(np.float64)


def page_arithmetic(net):
    """A float64 copy of net (batch norm folded) whose layers round what they receive and pass
    on to float32 values, as cnn.js keeps its activations in Float32Arrays."""
    net = fold_batchnorm(net)
    for layer in net.layers:
        layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
        forward = layer.forward
        layer.forward = lambda x, training=False, forward=forward: _float32_values(forward(_float32_values(x), training))
    return net


def method_reference(net, x, rng):
    """NumPy's Grad-CAM++, Score-CAM (every conv layer), integrated gradients (black and blurred
    baselines) and SmoothGrad (with the standard normal draws handed to the page) of images x
    for the class net predicts, with the settings of the trust chapter (report/trust.py).

    Computed as the page computes: sums in float64, every layer's output stored in float32
    (page_arithmetic). Over 32 or 25 passes, a ReLU or a max pool whose inputs nearly tie can
    tip either way under other roundings: integrated gradients from the blurred image moved by
    about 2e-4 between NumPy in float32, in float64 and the page, one network or another."""
    c = net.predict(x, workers=1)
    net = page_arithmetic(net)
    x = x.astype(np.float64)
    draws = rng.standard_normal((SMOOTHGRAD_SAMPLES,) + x.shape).astype(np.float32).astype(np.float64)  # as the page gets them
    ig = lambda b: evidence_map(integrated_gradients(net, x, c, b, IG_STEPS))
    return {"classes": c.astype(float), "draws": draws, "steps": IG_STEPS, "sigma": BLUR_SIGMA,
            "samples": SMOOTHGRAD_SAMPLES, "noise": SMOOTHGRAD_NOISE,
            "gradcampp": {layer: grad_cam_plus_plus(net, x, c, layer) for layer in block_outputs(net)},
            "scorecam": {layer: score_cam(net, x, c, layer, workers=1) for layer in block_outputs(net)},
            "ig_black": ig(None), "ig_blurred": ig(blur(x, BLUR_SIGMA)),
            "smoothgrad": smoothgrad(net, x, c, None, SMOOTHGRAD_SAMPLES, SMOOTHGRAD_NOISE, draws=draws)}


def float32_base64(value):
    """value with every array in it (nested in dicts and lists) as base64 of little-endian float32."""
    if isinstance(value, np.ndarray):
        return base64.b64encode(np.ascontiguousarray(value, dtype="<f4").tobytes()).decode()
    if isinstance(value, dict):
        return {k: float32_base64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [float32_base64(v) for v in value]
    return value


def over_training(run, data, picks, classes, workers=DEFAULT_WORKERS):
    """How the Grad-CAM map of the gallery images forms over training, at the last conv layer.

    For each snapshot: the map of each image for the class the final network predicts, its
    Spearman rank correlation with the final map, and the deletion AUC measured with that
    snapshot's own network. Returns (context rows, maps (epochs, images, H, W))."""
    x = data.x_test[picks]
    classes = np.asarray(classes)
    last = max(run.snapshots)
    nets = {epoch: run.model_at(epoch) for epoch in sorted(run.snapshots)}
    layer = list(block_outputs(run.model))[-1]
    maps = dict(zip(nets, threaded(lambda e: grad_cam(nets[e], x, classes, layer).normalized, workers, nets)))

    def row(epoch):
        fast = pool_before_relu(fold_batchnorm(nets[epoch]))  # scores only
        rho = spearman(maps[epoch], maps[last])
        curves = deletion_insertion(class_probability(fast, classes, workers=1), x, maps[epoch])
        return {"epoch": epoch, "rho_mean": float(np.nanmean(rho)) if np.isfinite(rho).any() else None,
                "rho_undefined": int(np.isnan(rho).sum()), "deletion": curves.deletion_auc,
                "insertion": curves.insertion_auc,
                "agrees_with_final": float((fast.predict(x, workers=1) == classes).mean())}

    return threaded(row, workers, nets), np.stack([maps[e] for e in sorted(maps)])


def explorer_artifacts(run, data, proba, context, rng, workers=DEFAULT_WORKERS):
    """(context for the chapter, {script name: text}, over-training maps for the figure);
    workers: threads for the networks' measurements (the numbers do not depend on it)."""
    networks = page_networks(run)
    layer = context["explain"]["layer"]
    scripts = {TEST_SET_SCRIPT: test_set_script(data, proba),
               SNAPSHOTS_SCRIPT: snapshots_script(run, data.class_names, layer)}
    gallery = context["explain"]["gallery"]
    rows, maps = over_training(run, data, [g["index"] for g in gallery], [g["pred"] for g in gallery], workers)
    sample = stratified_indices(data.y_test, min(300, len(data.y_test)), rng)
    ctx = {"test_images": int(len(data.y_test)), "epochs": int(max(run.snapshots)),
           "conv_layers": list(block_outputs(run.model)), "selftest_images": min(SELFTEST_IMAGES, len(data.y_test)),
           "method_images": min(METHOD_IMAGES, SELFTEST_IMAGES, len(data.y_test)),
           "bytes": {"test_set": len(scripts[TEST_SET_SCRIPT].encode()),
                     "snapshots": len(scripts[SNAPSHOTS_SCRIPT].encode())},
           "float16": float16_effect(run, data, networks, sample, workers), "over_training": rows}
    return ctx, scripts, maps
