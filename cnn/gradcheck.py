"""Numerical gradient checks: central differences in float64.

For a layer y = f(x; theta) and a fixed random dout, the scalar
L = sum(f(x) * dout) has dL/dx = backward(dout). Each entry of x and of every
parameter is moved by +-eps and (L(+eps) - L(-eps)) / (2 eps) is compared with
the analytic gradient through the relative error

    ||analytic - numeric|| / max(||analytic|| + ||numeric||, tiny)

which is about 1e-10 for a correct float64 gradient and near 1 for a wrong one.
"""

import copy

import numpy as np

_TINY = 1e-300


def relative_error(analytic, numeric):
    diff = np.linalg.norm(np.ravel(analytic) - np.ravel(numeric))
    return float(diff / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), _TINY))


def _as_float64(layer):
    layer = copy.deepcopy(layer)
    layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
    layer.buffers = {k: v.astype(np.float64) for k, v in layer.buffers.items()}
    return layer


def _entries(size, max_entries, rng):
    """Flat indices to check: all of them, or a seeded sample of max_entries."""
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, max_entries, replace=False))


def check_layer(layer, x, rng, training=True, eps=1e-6, max_entries=None):
    """Relative errors of a layer's gradients: {'input': e, <param>: e, ...}.

    The layer is copied and cast to float64; x is cast too. A layer that draws
    random numbers (dropout) gets the same stream before every forward pass, so
    each evaluation sees the same mask. For large tensors, max_entries checks a
    seeded sample of entries.
    """
    layer = _as_float64(layer)
    x = np.array(x, dtype=np.float64)
    seed = int(rng.integers(2**32))

    def forward(inp):
        if hasattr(layer, "rng"):
            layer.rng = np.random.default_rng(seed)
        return layer.forward(inp, training)

    dout = rng.standard_normal(forward(x).shape)
    dx = layer.backward(dout)
    analytic = {"input": dx, **{k: g.copy() for k, g in layer.grads.items()}}
    targets = {"input": x, **layer.params}
    errors = {}
    for name, arr in targets.items():
        flat = arr.reshape(-1)  # a view: writing into it moves the array itself
        idx = _entries(flat.size, max_entries, rng)
        numeric = np.empty(len(idx))
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + eps
            plus = np.sum(forward(x) * dout)
            flat[i] = old - eps
            minus = np.sum(forward(x) * dout)
            flat[i] = old
            numeric[j] = (plus - minus) / (2 * eps)
        errors[name] = relative_error(np.asarray(analytic[name]).reshape(-1)[idx], numeric)
    return errors


def check_model(model, rng, batch=2, max_entries=40):
    """Check every layer of a model with its trained parameters, on random inputs of its real shapes.

    Returns a list of {'layer', 'type', 'errors'} dicts. Inputs are random normal
    rather than real activations: real ones have exact ties (zero background, equal
    maxima), points where the function has no derivative for central differences
    to estimate.
    """
    shapes = [model.input_shape] + model.output_shapes()
    rows = []
    for layer, in_shape in zip(model.layers, shapes):
        x = rng.standard_normal((batch,) + tuple(in_shape))
        rows.append({"layer": layer.name, "type": layer.describe(),
                     "errors": check_layer(layer, x, rng, max_entries=max_entries)})
    return rows
