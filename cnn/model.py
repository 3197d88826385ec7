"""Sequential: layers run in order, with what training and explanation need.

Besides forward/backward for training, ``forward_all`` keeps every layer's
activation and ``backward_all`` returns the gradient at every one of them,
starting from any gradient at the output (for instance a one-hot row per class
score): Grad-CAM, saliency and guided backprop are built from these two.

A checkpoint is one .npz file: the parameters and buffers as arrays named
``<layer>.<key>`` plus the architecture as JSON, so ``Sequential.load`` rebuilds
the model without code. It is read with ``allow_pickle=False``.
"""

import copy
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .errors import UserError
from .losses import softmax, softmax_cross_entropy
from .parallel import DataParallel, DEFAULT_WORKERS
from .layers import (LAYER_TYPES, BatchNorm2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU)

CHECKPOINT_FORMAT = 1
# Images per inference batch: measured on 2 cores, 128 runs about a fifth faster than 500 (the
# activations of a smaller batch stay in the processor's caches).
INFERENCE_BATCH = 128
_ARCH_KEY = "__architecture__"


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    confusion: np.ndarray  # (K, K): row = true class, column = predicted class


class Sequential:
    def __init__(self, layers, input_shape=(1, 28, 28)):
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)
        counts = {}
        for layer in self.layers:
            counts[layer.kind] = counts.get(layer.kind, 0) + 1
            layer.name = f"{layer.kind}{counts[layer.kind]}"

    # ------------------------------------------------------------ passes

    def forward(self, x, training=False):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dout, need_input_grad=True):
        """Backpropagate dout (the gradient at the output) through every layer; returns dx."""
        for i in range(len(self.layers) - 1, -1, -1):
            dout = self.layers[i].backward(dout, need_dx=need_input_grad or i > 0)
        return dout

    def forward_all(self, x, training=False):
        """Activations [x, a_1, ..., a_L]: acts[i + 1] is the output of layers[i]."""
        acts = [x]
        for layer in self.layers:
            acts.append(layer.forward(acts[-1], training))
        return acts

    def backward_all(self, dout, need_params=True):
        """Gradients aligned with forward_all: grads[i] is the gradient at acts[i].

        Call after forward_all (or forward) on the same batch. For the score of
        class c of every image, pass dout = one-hot rows, e.g. np.eye(K)[classes].
        need_params=False skips the gradients of the weights, which an explanation
        does not use (layer.grads is then left empty).
        """
        grads = [dout]
        for layer in reversed(self.layers):
            grads.append(layer.backward(grads[-1], need_params=need_params))
        return grads[::-1]

    def clear_cache(self):
        for layer in self.layers:
            layer.cache = None

    # ------------------------------------------------------------ inference

    def predict_proba(self, x, batch_size=INFERENCE_BATCH, workers=DEFAULT_WORKERS):
        """Class probabilities (N, K), in evaluation mode, batch by batch.

        The result does not depend on workers (cnn/parallel.py cuts every batch the same way)."""
        if len(x) == 0:
            return np.zeros((0,) + self.output_shape(), dtype=np.float32)
        with DataParallel(self, workers) as net:
            out = np.concatenate([softmax(net.forward(x[i : i + batch_size]))
                                  for i in range(0, len(x), batch_size)])
        self.clear_cache()
        return out

    def predict(self, x, batch_size=INFERENCE_BATCH, workers=DEFAULT_WORKERS):
        return self.predict_proba(x, batch_size, workers).argmax(axis=1)

    def evaluate(self, x, y, batch_size=INFERENCE_BATCH, workers=DEFAULT_WORKERS):
        """Mean cross-entropy, accuracy and confusion matrix on (x, y)."""
        if len(x) == 0:
            raise ValueError("evaluate needs at least one image")
        total, preds = 0.0, []
        with DataParallel(self, workers) as net:
            for i in range(0, len(x), batch_size):
                logits = net.forward(x[i : i + batch_size])
                loss, _ = softmax_cross_entropy(logits, y[i : i + batch_size])
                total += loss * len(logits)
                preds.append(logits.argmax(axis=1))
        self.clear_cache()
        pred = np.concatenate(preds)
        k = self.output_shape()[0]
        confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
        return Evaluation(total / len(x), float((pred == y).mean()), confusion)

    def replica(self):
        """A model sharing this one's parameter and buffer arrays, with its own caches and gradients.

        A layer that draws random numbers gets its own Generator, spawned from its original.
        """
        twin = copy.copy(self)
        twin.layers = []
        for layer in self.layers:
            c = copy.copy(layer)
            c.cache, c.grads = None, {}
            if getattr(layer, "rng", None) is not None:
                c.rng = layer.rng.spawn(1)[0]
            twin.layers.append(c)
        return twin

    # ------------------------------------------------------------ description

    def layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; the layers are {[l.name for l in self.layers]}")

    def index(self, name):
        return self.layers.index(self.layer(name))

    def output_shapes(self):
        """The per-sample output shape of every layer, from one zero image."""
        x = np.zeros((1,) + self.input_shape, dtype=np.float32)
        shapes = [a.shape[1:] for a in self.forward_all(x)[1:]]
        self.clear_cache()
        return shapes

    def output_shape(self):
        return self.output_shapes()[-1]

    def num_params(self):
        return sum(layer.num_params() for layer in self.layers)

    def summary_rows(self):
        """(name, description, output shape, parameter count) for every layer."""
        return [(l.name, l.describe(), shape, l.num_params())
                for l, shape in zip(self.layers, self.output_shapes())]

    def summary(self):
        rows = [("Layer", "Type", "Output shape", "Params")]
        rows += [(n, d, "x".join(map(str, s)), f"{p:,}") for n, d, s, p in self.summary_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        line = lambda r: "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths)))
        rule = "-" * len(line(rows[0]))
        body = [line(rows[0]), rule] + [line(r) for r in rows[1:]]
        return "\n".join(body + [rule, f"Total params: {self.num_params():,}"])

    def __repr__(self):
        return f"Sequential({', '.join(l.describe() for l in self.layers)})"

    # ------------------------------------------------------------ state

    def architecture(self):
        return {"format": CHECKPOINT_FORMAT, "input_shape": list(self.input_shape),
                "layers": [{"type": type(l).__name__, **l.config()} for l in self.layers]}

    @classmethod
    def from_architecture(cls, arch, rng):
        """A model built from architecture(); parameters freshly initialised from rng."""
        layers = []
        for spec in arch["layers"]:
            spec = dict(spec)
            layer_type = LAYER_TYPES[spec.pop("type")]
            if layer_type.uses_rng:
                spec["rng"] = rng
            layers.append(layer_type(**spec))
        return cls(layers, arch["input_shape"])

    def state(self):
        """Every parameter and buffer, keyed '<layer>.<key>'."""
        return {f"{l.name}.{k}": v for l in self.layers for k, v in {**l.params, **l.buffers}.items()}

    def set_state(self, state, source="state"):
        """Copy arrays into the model; UserError naming source if they do not fit."""
        expected = self.state()
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise UserError(f"{source}: does not fit this model (missing {missing or 'nothing'}, "
                            f"unexpected {extra or 'nothing'}).")
        for key, target in expected.items():
            value = state[key]
            if value.shape != target.shape or value.dtype.kind != "f":
                raise UserError(f"{source}: {key} has shape {value.shape} and dtype {value.dtype}; "
                                f"the model needs {target.shape} floats.")
        for layer in self.layers:
            for store in (layer.params, layer.buffers):
                for k in store:
                    store[k] = np.array(state[f"{layer.name}.{k}"], dtype=store[k].dtype)

    def astype(self, dtype):
        """A copy of the model with every parameter and buffer cast to dtype (for float64 checks)."""
        copy = Sequential.from_architecture(self.architecture(), np.random.default_rng(0))
        for src, dst in zip(self.layers, copy.layers):
            for name in ("params", "buffers"):
                setattr(dst, name, {k: v.astype(dtype) for k, v in getattr(src, name).items()})
            if src.uses_rng and hasattr(src, "rng"):
                dst.rng = src.rng
        return copy

    def save(self, path):
        """Write the checkpoint atomically: to a temporary name, then renamed into place."""
        arrays = {_ARCH_KEY: np.array(json.dumps(self.architecture()))}
        arrays.update(self.state())
        with atomic_file(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path, rng=None):
        """Rebuild a saved model. rng drives any Dropout layer (default: seed 0)."""
        path = Path(path)
        fix = "It is damaged, or was not written by Sequential.save."
        try:
            npz = np.load(path, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single .npy array, not an .npz archive")
            with npz:
                arrays = {k: npz[k] for k in npz.files}
        except FileNotFoundError:
            raise UserError(f"{path}: checkpoint not found.") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
            raise UserError(f"{path}: not a readable .npz checkpoint ({e}). {fix}") from None
        if _ARCH_KEY not in arrays:
            raise UserError(f"{path}: no architecture record ({_ARCH_KEY}); not a checkpoint "
                            f"written by Sequential.save. {fix}")
        try:
            arch = json.loads(str(arrays.pop(_ARCH_KEY)))
            if arch.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"checkpoint format {arch.get('format')!r}, "
                                 f"this code reads format {CHECKPOINT_FORMAT}")
            model = cls.from_architecture(arch, rng or np.random.default_rng(0))
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path}: the architecture record cannot be rebuilt ({e!r}). {fix}") from None
        model.set_state(arrays, source=str(path))
        return model


def fold_batchnorm(model):
    """A copy of model for inference, each batch norm merged into the conv or dense layer before it.

    In evaluation batch norm is a fixed affine map per channel,
        y = s * (z - running_mean) + beta,   s = gamma / sqrt(running_var + eps),
    and a conv or dense layer is affine too, z = W x + b, so the pair is one layer:
        W' = W * s (scaling each output channel),   b' = s * (b - running_mean) + beta.
    The copy gives the same probabilities up to float rounding without batch norm's
    three passes over every activation map (a third faster here); the faithfulness
    metrics, hundreds of thousands of forward passes, run on it. It is for forward passes only: the batch-norm layers
    whose parameters Grad-CAM and the gradient checks look at are gone.
    """
    layers = []
    for layer in model.layers:
        previous = layers[-1] if layers else None
        if layer.kind == "bn" and previous is not None and previous.kind in ("conv", "dense"):
            p = layer.params
            s = p["gamma"].astype(np.float64) / np.sqrt(layer.buffers["running_var"].astype(np.float64) + layer.eps)
            w = previous.params["weight"]
            b = previous.params.get("bias", np.zeros(len(s), dtype=w.dtype))  # a conv may have none
            scale = s.reshape(-1, 1, 1, 1) if previous.kind == "conv" else s  # conv: (F, C, KH, KW); dense: (in, F)
            previous.params = {
                "weight": (w * scale).astype(w.dtype),
                "bias": (s * (b - layer.buffers["running_mean"]) + p["beta"]).astype(b.dtype),
            }
            continue
        twin = copy.copy(layer)
        twin.cache, twin.grads = None, {}
        twin.params, twin.buffers = dict(layer.params), dict(layer.buffers)
        layers.append(twin)
    return Sequential(layers, model.input_shape)


def pool_before_relu(model):
    """A copy of model for class scores, each ReLU that a max pool follows moved after that pool.

    The two commute: both are exact (no rounding), and a ReLU keeps the order of its
    inputs, so max(relu(a), relu(b)) = relu(max(a, b)). The copy's outputs are the
    model's, bit for bit, while the ReLU touches a quarter of the values: measured here
    on 2 cores, the folded default network's predict_proba took 7 to 11 % less time,
    and the trust chapter's deletion, insertion and ROAD curves about 4 % less (their
    imputation is the same work). The activations in between are not the model's (a pool's
    output before its ReLU), so the copy is for scores, not for the maps of a layer.
    The copy shares the model's parameter arrays (see replica).
    """
    layers, rest = [], model.replica().layers
    while rest:
        if len(rest) > 1 and rest[0].kind == "relu" and rest[1].kind == "maxpool":
            layers += [rest[1], rest[0]]
            rest = rest[2:]
        else:
            layers.append(rest.pop(0))
    return Sequential(layers, model.input_shape)


def default_cnn(rng, num_classes=10):
    """The network the site trains and explains.

    Three 3x3 conv blocks (conv, batch norm, ReLU) with 16, 32 and 32 channels; a
    2x2 max pool after the first two takes 28x28 to 14x14 to 7x7, so the last conv
    layer -- the one Grad-CAM looks at -- keeps a 7x7 map. A small dense head
    turns its 32 x 7 x 7 features into ten class scores.
    """
    return Sequential([
        Conv2D(1, 16, 3, padding=1, rng=rng), BatchNorm2D(16), ReLU(), MaxPool2D(2),
        Conv2D(16, 32, 3, padding=1, rng=rng), BatchNorm2D(32), ReLU(), MaxPool2D(2),
        Conv2D(32, 32, 3, padding=1, rng=rng), BatchNorm2D(32), ReLU(),
        Flatten(),
        Dense(32 * 7 * 7, 64, rng=rng), ReLU(),
        Dense(64, num_classes, rng=rng, init="glorot"),
    ])
