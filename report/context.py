"""What the chapters can say: numbers and tables measured on this build's run.

``analyse`` runs the trained network over the test set and a few chosen images
and returns a JSON-able dict -- the chapters read it through their {{ }}
placeholders -- plus the arrays the figures are drawn from. Nothing here is
typed in by hand: every value is computed from the run and the data.
"""

import dataclasses
import re

import numpy as np

from cnn import functional as F
from cnn.gradcheck import check_model

# The figures and tables of the layers chapter follow these digits of the test set.
SHOWCASE_COUNT = 3


def pretty(text):
    """Typography for labels: '3x3' -> '3×3' between numbers, '->' -> '→'."""
    return re.sub(r"(?<=\d)x(?=\d)", "\u00d7", text).replace("->", "\u2192")


def receptive_fields(model):
    """Per layer: (receptive field size, jump) in input pixels, from kernel sizes and strides."""
    size, jump, rows = 1, 1, []
    for layer in model.layers:
        k = getattr(layer, "kernel_size", 1)
        s = getattr(layer, "stride", 1)
        if layer.kind in ("conv", "maxpool", "avgpool"):
            size += (k - 1) * jump
            jump *= s
        rows.append({"name": layer.name, "size": size, "jump": jump})
    return rows


def _conv_example(model, x, digit_index):
    """One real kernel of the first conv layer at one real position of one real digit, with every number."""
    conv = model.layers[0]
    w, b = conv.params["weight"], conv.params["bias"]
    image = x[digit_index : digit_index + 1]  # (1, 1, 28, 28)
    out, _ = F.conv2d_forward(image, w, b, conv.stride, conv.padding)
    out = np.ascontiguousarray(out[0])  # (F, 28, 28)
    channel = int(np.argmax(out.reshape(len(out), -1).max(axis=1)))  # the kernel that answers most strongly
    i, j = (int(v) for v in np.unravel_index(np.argmax(out[channel]), out[channel].shape))
    pad, k = conv.padding, conv.kernel_size
    padded = np.pad(image[0, 0], pad)
    patch = padded[i : i + k, j : j + k]
    kernel = w[channel, 0]
    products = patch * kernel  # below, + 0.0 turns a rounded -0.0 into 0.0
    return {
        "digit_index": digit_index, "channel": channel, "row": i, "col": j, "kernel_size": k,
        "padding": pad, "patch": (patch.round(4) + 0.0).tolist(), "kernel": (kernel.round(4) + 0.0).tolist(),
        "products": (products.round(4) + 0.0).tolist(), "sum": round(float(products.sum()), 4),
        "bias": round(float(b[channel]), 4), "output": round(float(out[channel, i, j]), 4),
        "map": out[channel],
    }


def _im2col_shapes(model):
    """Shapes of the im2col matrix, the weight matrix and the product for each conv layer, one image."""
    rows, shapes = [], [model.input_shape] + model.output_shapes()
    for layer, in_shape, out_shape in zip(model.layers, shapes, shapes[1:]):
        if layer.kind != "conv":
            continue
        c, k, f = layer.in_channels, layer.kernel_size, layer.out_channels
        positions = out_shape[1] * out_shape[2]
        rows.append({"name": layer.name, "input": pretty("x".join(map(str, in_shape))),
                     "cols": f"{positions} \u00d7 {k * k * c}", "weights": f"{k * k * c} \u00d7 {f}",
                     "output": f"{positions} \u00d7 {f}", "macs": positions * k * k * c * f})
    return rows


def analyse(config, run, data, rng):
    """(context for the chapters, arrays for the figures)."""
    model, history = run.model, run.history
    proba = model.predict_proba(data.x_test, workers=config.jobs)
    pred = proba.argmax(axis=1)
    y = data.y_test
    k = len(data.class_names)
    confidence = proba[np.arange(len(y)), pred]
    wrong = np.flatnonzero(pred != y)
    mistakes = wrong[np.argsort(-confidence[wrong], kind="stable")][:12]
    per_class = [{"label": c, "name": data.class_names[c], "count": int((y == c).sum()),
                  "correct": int(((y == c) & (pred == c)).sum())} for c in range(k)]
    for row in per_class:
        row["accuracy"] = row["correct"] / max(row["count"], 1)
    last = history.epochs[-1]
    # the test set, touched once: here, after training, with the final weights
    test_loss = float(-np.log(np.maximum(proba[np.arange(len(y)), y], np.finfo(proba.dtype).tiny)).mean())

    # the first test image of each of the first classes, for the layers chapter
    showcase = [int(np.flatnonzero(y == c)[0]) for c in range(min(SHOWCASE_COUNT, k))]
    example = _conv_example(model, data.x_test, showcase[0])
    grad_rows = check_model(model, rng, batch=2, max_entries=24)
    for row in grad_rows:
        row["max"] = max(row["errors"].values())

    summary = [{"name": n, "type": pretty(d), "shape": pretty("x".join(map(str, s))), "params": p}
               for n, d, s, p in model.summary_rows()]
    train_counts = np.bincount(data.y_train, minlength=k)
    test_counts = np.bincount(y, minlength=k)
    context = {
        "dataset": {"name": data.spec.name, "title": data.spec.title, "credit": data.spec.credit,
                    "nouns": {"singular": data.spec.noun, "plural": data.spec.nouns}, "drawn": data.spec.drawn,
                    "class_names": list(data.class_names), "train_size": len(data.x_train),
                    "test_size": len(data.x_test), "image_shape": list(data.x_train.shape[1:]),
                    "train_counts": train_counts.tolist(), "test_counts": test_counts.tolist(),
                    "mean_pixel": float(data.x_train.mean()),
                    "ink_fraction": float((data.x_train > 0).mean())},
        "model": {"summary": summary, "params": model.num_params(), "receptive": receptive_fields(model),
                  "last_conv": [r["name"] for r in summary if r["name"].startswith("conv")][-1],
                  "im2col": _im2col_shapes(model)},
        "train": dataclasses.asdict(config.train),
        "history": {"epochs": [dataclasses.asdict(e) for e in history.epochs], "initial": history.initial,
                    "log_every": history.log_every, "steps": len(history.steps)},
        "metrics": {"test_accuracy": float((pred == y).mean()), "test_loss": test_loss,
                    "val_accuracy": last.val_accuracy, "val_loss": last.val_loss,
                    "validation_size": len(data.x_val),
                    "train_accuracy": last.train_accuracy, "train_loss": last.train_loss,
                    "errors": int(len(wrong)), "per_class": per_class,
                    "train_seconds": sum(e.seconds for e in history.epochs),
                    "images_per_second": float(np.mean([e.images_per_second for e in history.epochs])),
                    "epoch_seconds": [e.seconds for e in history.epochs]},
        "gradcheck": {"rows": grad_rows, "max": max(r["max"] for r in grad_rows)},
        "conv": {key: v for key, v in example.items() if key != "map"},
        "mistakes": [{"index": int(i), "label": int(y[i]), "pred": int(pred[i]),
                      "confidence": float(confidence[i])} for i in mistakes],
        "showcase": showcase,
        "run": {"key": run.key, "reused": run.reused},
    }
    arrays = {"proba": proba, "pred": pred, "conv_map": example["map"], "mistakes": mistakes,
              "showcase": np.array(showcase)}
    return context, arrays
