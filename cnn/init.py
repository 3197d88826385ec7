"""Weight initialisers.

He (Kaiming) normal, for layers followed by a ReLU: std = sqrt(2 / fan_in)
(He et al. 2015, arXiv:1502.01852). Glorot (Xavier) uniform, for layers without
one: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio 2010).
"""

import numpy as np


def he_normal(shape, fan_in, fan_out, rng, dtype=np.float32):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def glorot_uniform(shape, fan_in, fan_out, rng, dtype=np.float32):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


INITIALISERS = {"he": he_normal, "glorot": glorot_uniform}


def initialise(name, shape, fan_in, fan_out, rng):
    if name not in INITIALISERS:
        raise ValueError(f"unknown initialiser {name!r}; choose one of {', '.join(INITIALISERS)}")
    return INITIALISERS[name](shape, fan_in, fan_out, rng)
