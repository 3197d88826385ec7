"""The lab ("Train it yourself"): its data, and NumPy's answers for the page's self-test.

- static/js/lab-data.js sets window.CNN_LAB: a stratified, seeded subset of the training
  images (LAB_SIZES["train"]), of the validation split and of the test images, as uint8
  pixels and labels in one zlib stream like the explorer's test set; the lab's default
  settings and presets; and the curves of the network this build trained in NumPy, for the
  page's "compare".
- The self-test's reference (not published): the lab's default network with cnn/'s layers,
  initial weights, one batch, and for three steps of SGD with momentum and three of Adam the
  dropout masks NumPy drew, the losses, every gradient, and the parameters and batch-norm
  statistics after the third step. report/browsercheck.py runs the page's engine
  (static/js/lab-engine.js) on the same numbers in headless Chromium.
"""

import base64
import zlib

import numpy as np

from cnn.data import stratified_indices
from cnn.layers import BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from cnn.losses import softmax_cross_entropy
from cnn.model import Sequential
from cnn.optim import SGD, Adam

LAB_DATA_SCRIPT = "lab-data.js"
LAB_SIZES = {"train": 10000, "validation": 1000, "test": 2000}
# The lab's default network and training, and the presets that each teach one thing.
DEFAULTS = {"widths": [8, 16], "batchnorm": True, "dropout": 0.25, "optimizer": "adam", "lr": 4e-3,
            "schedule": "cosine", "batch": 32, "epochs": 3, "train": 10000, "seed": 1}
PRESETS = [
    {"name": "too-high", "title": "Learning rate far too high",
     "settings": {"optimizer": "sgd", "lr": 50.0},
     "lesson": "Each step overshoots so far that the loss explodes within a few steps — sometimes until the "
               "numbers overflow to NaN (not a number); the page stops the training and says what happened."},
    {"name": "too-low", "title": "Learning rate far too low",
     "settings": {"optimizer": "sgd", "lr": 1e-4},
     "lesson": "Every step is right but tiny: the loss creeps down and the accuracy barely moves."},
    {"name": "no-bn", "title": "No batch norm",
     "settings": {"batchnorm": False},
     "lesson": "On a network this small, batch norm matters less than you might expect: without it, at the "
               "default learning rate, this one learns about as fast (a little faster at first) and ends within a "
               "few tenths of a percent. It earns its keep at high learning rates: at 0.1, with the default seed, "
               "the network with batch norm learns, and the one without it stalls at chance."},
    {"name": "plain-sgd", "title": "Plain SGD, against Adam",
     "settings": {"optimizer": "sgd", "lr": 0.05},
     "lesson": "Plain SGD takes the same step size for every weight; run it, then the default (Adam), and "
               "compare the curves."},
]
SELFTEST_STEPS = 3
SELFTEST_BATCH = 16
SELFTEST_RUNS = {"momentum": 0.05, "adam": 1e-3}  # optimiser -> learning rate


def lab_network(spec, rng):
    """The lab's network with cnn/'s layers: (conv 3x3, [batch norm], ReLU, max pool) x 2, flatten,
    dropout, dense. Names and order as in lab-engine.js's layout(). A conv followed by batch norm
    has no bias (the batch norm's beta does its job)."""
    layers, c = [], 1
    for f in spec["widths"]:
        layers.append(Conv2D(c, f, 3, padding=1, rng=rng, bias=not spec["batchnorm"]))
        if spec["batchnorm"]:
            layers.append(BatchNorm2D(f))
        layers += [ReLU(), MaxPool2D(2)]
        c = f
    layers += [Flatten(), Dropout(spec["dropout"], rng=rng), Dense(c * 7 * 7, 10, rng=rng, init="glorot")]
    return Sequential(layers)


def _pack(x, y):
    pixels = (x * 255).round().astype(np.uint8)
    raw = pixels.tobytes() + y.astype(np.uint8).tobytes()
    return {"count": int(len(x)), "shape": list(x.shape[1:]),
            "deflate": base64.b64encode(zlib.compress(raw, 6)).decode()}


def lab_data(data, history, rng):
    """(doc for window.CNN_LAB, context for the chapter)."""
    splits = {"train": (data.x_train, data.y_train), "validation": (data.x_val, data.y_val),
              "test": (data.x_test, data.y_test)}
    doc, sizes = {}, {}
    for name, (x, y) in splits.items():
        idx = np.sort(stratified_indices(y, min(LAB_SIZES[name], len(y)), rng))
        doc[name] = _pack(x[idx], y[idx])
        sizes[name] = int(len(idx))
    doc["defaults"] = dict(DEFAULTS, train=min(DEFAULTS["train"], sizes["train"]))
    doc["presets"] = PRESETS
    doc["classes"] = list(data.class_names)
    # the build's own run, for "compare": training loss against images seen, validation accuracy per epoch
    # steps: (epochs done, as a fraction; mean training loss of the last log_every batches)
    doc["numpy"] = {"train": int(len(data.x_train)),
                    "steps": [[float(progress), float(loss)] for _, progress, loss in history.steps],
                    "epochs": [[0, float(history.initial["val_accuracy"])]]
                    + [[e.epoch, float(e.val_accuracy)] for e in history.epochs]}
    return doc, {"sizes": sizes, "defaults": doc["defaults"], "presets": PRESETS}


def selftest_reference(data, rng):
    """NumPy's answers for the lab engine's self-test (see the module's docstring)."""
    spec = {k: DEFAULTS[k] for k in ("widths", "batchnorm", "dropout")}
    net = lab_network(spec, rng)
    initial = {k: v.copy() for k, v in net.state().items()}
    idx = stratified_indices(data.y_train, SELFTEST_BATCH, rng)
    x, y = data.x_train[idx], data.y_train[idx]
    runs = {}
    for kind, lr in SELFTEST_RUNS.items():
        net.set_state(initial)
        opt = SGD(lr=lr, momentum=0.9) if kind == "momentum" else Adam(lr=lr)
        dropout = next(l for l in net.layers if l.kind == "dropout")
        steps = []
        for _ in range(SELFTEST_STEPS):
            scores = net.forward(x, training=True)
            loss, dscores = softmax_cross_entropy(scores, y)
            net.backward(dscores)
            steps.append({"mask": (dropout.cache != 0).astype(np.float32), "loss": float(loss),
                          "grads": {f"{l.name}.{k}": g.copy() for l in net.layers for k, g in l.grads.items()}})
            opt.step(net)
        net.clear_cache()
        runs[kind] = {"lr": lr, "steps": steps, "after": {k: v.copy() for k, v in net.state().items()}}
    return {"spec": spec, "dropout_layer": "dropout1", "x": x, "y": y.astype(np.float32), "n": int(len(x)),
            "initial": initial, "runs": runs}
