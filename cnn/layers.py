"""Layers: thin classes around the kernels of functional.py.

The contract (see DESIGN.md): ``forward(x, training=False)`` returns the output
and keeps in ``self.cache`` only what ``backward`` needs; ``backward(dout)``
returns dx and sets ``self.grads[k]`` for every key of ``self.params``. The
cache is kept in evaluation mode too, so that an explanation can run a backward
pass through a trained network. ``backward(dout, need_dx=False)`` skips dx where
that saves work (the first layer during training).

``buffers`` hold state that is saved but not trained (batch-norm running
statistics). ``config()`` returns the constructor arguments, so that a model
can be rebuilt from JSON.
"""

import numpy as np

from . import functional as F
from .init import initialise


class Layer:
    kind = "layer"  # short name used to name layers in a model: conv1, relu2, ...
    uses_rng = False  # True if the constructor takes rng=

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.cache = None
        self.name = ""

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dout, need_dx=True, need_params=True):
        raise NotImplementedError

    def config(self):
        return {}

    def num_params(self):
        return sum(p.size for p in self.params.values())

    def describe(self):
        """What the layer does, in a few words, for summaries: 'Conv2D(1->16, 3x3, pad 1)'."""
        args = ", ".join(f"{k}={v}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __repr__(self):
        return self.describe()


class Conv2D(Layer):
    """A 2-D convolution (cross-correlation) with a bias per output channel, or none (bias=False):
    a batch norm right after a conv subtracts each channel's mean, so a bias there has no effect
    and its gradient is zero but for rounding, which an optimiser like Adam would amplify."""

    kind = "conv"
    uses_rng = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, rng, init="he", bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.init = kernel_size, stride, padding, init
        self.bias = bias
        fan_in, fan_out = in_channels * kernel_size**2, out_channels * kernel_size**2
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.params["weight"] = initialise(init, shape, fan_in, fan_out, rng)
        if bias:
            self.params["bias"] = np.zeros(out_channels, dtype=np.float32)

    def forward(self, x, training=False):
        out, self.cache = F.conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                           self.stride, self.padding)
        return out

    def backward(self, dout, need_dx=True, need_params=True):
        dx, dw, db = F.conv2d_backward(dout, self.cache, need_dx, need_params)
        self.grads = ({"weight": dw, "bias": db} if self.bias else {"weight": dw}) if need_params else {}
        return dx

    def config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    init=self.init, **({} if self.bias else {"bias": False}))

    def describe(self):
        k = self.kernel_size
        extra = "".join(f", {name} {v}" for name, v in (("stride", self.stride), ("pad", self.padding))
                        if v != (1 if name == "stride" else 0))
        return f"Conv2D({self.in_channels}->{self.out_channels}, {k}x{k}{extra}{'' if self.bias else ', no bias'})"


class _Pool(Layer):
    kernels = None  # (forward, backward) pair from functional.py

    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def forward(self, x, training=False):
        out, self.cache = self.kernels[0](x, self.kernel_size, self.stride)
        return out

    def backward(self, dout, need_dx=True, need_params=True):
        return self.kernels[1](dout, self.cache)

    def config(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride)

    def describe(self):
        k = self.kernel_size
        extra = f", stride {self.stride}" if self.stride != k else ""
        return f"{type(self).__name__}({k}x{k}{extra})"


class MaxPool2D(_Pool):
    kind = "maxpool"
    kernels = (F.maxpool2d_forward, F.maxpool2d_backward)


class AvgPool2D(_Pool):
    kind = "avgpool"
    kernels = (F.avgpool2d_forward, F.avgpool2d_backward)


class _Elementwise(Layer):
    """An activation without parameters: a (forward, backward) pair whose cache is the output."""

    kernels = None  # (forward, backward) pair from functional.py

    def forward(self, x, training=False):
        out, self.cache = self.kernels[0](x)
        return out

    def backward(self, dout, need_dx=True, need_params=True):
        return self.kernels[1](dout, self.cache)

    def describe(self):
        return type(self).__name__


class ReLU(_Elementwise):
    kind = "relu"
    kernels = (F.relu_forward, F.relu_backward)


class LeakyReLU(Layer):
    kind = "leakyrelu"

    def __init__(self, slope=0.01):
        super().__init__()
        if not 0 <= slope < 1:
            raise ValueError(f"LeakyReLU slope must be in [0, 1), got {slope}")
        self.slope = slope

    def forward(self, x, training=False):
        out, self.cache = F.leaky_relu_forward(x, self.slope)
        return out

    def backward(self, dout, need_dx=True, need_params=True):
        return F.leaky_relu_backward(dout, self.cache)

    def config(self):
        return dict(slope=self.slope)


class Sigmoid(_Elementwise):
    kind = "sigmoid"
    kernels = (F.sigmoid_forward, F.sigmoid_backward)


class Tanh(_Elementwise):
    kind = "tanh"
    kernels = (F.tanh_forward, F.tanh_backward)


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C, H, W order."""

    kind = "flatten"

    def forward(self, x, training=False):
        self.cache = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout, need_dx=True, need_params=True):
        return dout.reshape(self.cache)

    def describe(self):
        return "Flatten"


class Dense(Layer):
    """out = x @ weight + bias, with weight of shape (in_features, out_features)."""

    kind = "dense"
    uses_rng = True

    def __init__(self, in_features, out_features, *, rng, init="he"):
        super().__init__()
        self.in_features, self.out_features, self.init = in_features, out_features, init
        self.params["weight"] = initialise(init, (in_features, out_features),
                                           in_features, out_features, rng)
        self.params["bias"] = np.zeros(out_features, dtype=np.float32)

    def forward(self, x, training=False):
        out, self.cache = F.dense_forward(x, self.params["weight"], self.params["bias"])
        return out

    def backward(self, dout, need_dx=True, need_params=True):
        dx, dw, db = F.dense_backward(dout, self.cache, need_dx, need_params)
        self.grads = {"weight": dw, "bias": db} if need_params else {}
        return dx

    def config(self):
        return dict(in_features=self.in_features, out_features=self.out_features, init=self.init)

    def describe(self):
        return f"Dense({self.in_features}->{self.out_features})"


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability p and scale the rest by 1/(1-p)."""

    kind = "dropout"
    uses_rng = True

    def __init__(self, p=0.5, *, rng):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.rng = p, rng

    def forward(self, x, training=False):
        if not training or self.p == 0:
            self.cache = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        self.cache = keep * x.dtype.type(1 / (1 - self.p))
        return x * self.cache

    def backward(self, dout, need_dx=True, need_params=True):
        return dout if self.cache is None else dout * self.cache

    def config(self):
        return dict(p=self.p)

    def describe(self):
        return f"Dropout(p={self.p})"


class Dropout2D(Dropout):
    """Spatial dropout (Tompson et al. 2015, arXiv:1411.4280): in training, drop whole channels of
    (N, C, H, W) maps with probability p and scale the kept ones by 1/(1-p). Neighbouring pixels of a
    map are strongly correlated, so dropping single pixels would hardly remove any information."""

    kind = "dropout2d"

    def forward(self, x, training=False):
        if not training or self.p == 0:
            self.cache = None
            return x
        self.cache = F.dropout2d_mask(self.rng, x.shape, self.p, x.dtype)  # (N, C, 1, 1)
        return x * self.cache

    def describe(self):
        return f"Dropout2D(p={self.p})"


class BatchNorm1D(Layer):
    """Batch normalisation (Ioffe and Szegedy 2015, arXiv:1502.03167) of (N, C) features.

    Training uses the batch statistics and updates the running ones:
    running = (1 - momentum) * running + momentum * batch (unbiased variance);
    evaluation uses the running statistics.
    """

    kind = "bn"

    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        self.params["gamma"] = np.ones(num_features, dtype=np.float32)
        self.params["beta"] = np.zeros(num_features, dtype=np.float32)
        self.buffers["running_mean"] = np.zeros(num_features, dtype=np.float32)
        self.buffers["running_var"] = np.ones(num_features, dtype=np.float32)
        self.shards = None  # set on the replicas of a data-parallel run (cnn/parallel.py)

    def _forward_2d(self, x, training):
        """x: (M, C) -> (M, C)."""
        p = self.params
        if not training:
            out, self.cache, _ = F.batchnorm_forward(x, p["gamma"], p["beta"], self.eps,
                                                     self.buffers["running_mean"], self.buffers["running_var"])
            return out
        sync = {"allsum": self.shards.allsum} if self.shards else {}
        out, self.cache, (mean, var) = F.batchnorm_forward(x, p["gamma"], p["beta"], self.eps, **sync)
        if self.shards is None or self.shards.rank == 0:  # one update per batch, not per shard
            m, mom = self.cache[4], self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            self.buffers["running_mean"] = ((1 - mom) * rm + mom * mean).astype(rm.dtype)
            self.buffers["running_var"] = ((1 - mom) * rv + mom * var * (m / max(m - 1, 1))).astype(rv.dtype)
        return out

    def _backward_2d(self, dout):
        dx, self.grads["gamma"], self.grads["beta"] = F.batchnorm_backward(dout, self.cache)
        return dx

    def forward(self, x, training=False):
        return self._forward_2d(x, training)

    def backward(self, dout, need_dx=True, need_params=True):
        return self._backward_2d(dout)

    def config(self):
        return dict(num_features=self.num_features, momentum=self.momentum, eps=self.eps)

    def describe(self):
        return f"{type(self).__name__}({self.num_features})"


class BatchNorm2D(BatchNorm1D):
    """Batch normalisation of (N, C, H, W) maps: one mean and variance per channel over N, H, W."""

    def forward(self, x, training=False):
        n, c, h, w = x.shape
        out = self._forward_2d(F.to_nhwc(x).reshape(n * h * w, c), training)  # (N*H*W, C)
        return F.to_nchw(out.reshape(n, h, w, c))

    def backward(self, dout, need_dx=True, need_params=True):
        n, c, h, w = dout.shape
        dx = self._backward_2d(F.to_nhwc(dout).reshape(n * h * w, c))  # (N*H*W, C)
        return F.to_nchw(dx.reshape(n, h, w, c))


LAYER_TYPES = {cls.__name__: cls for cls in (Conv2D, MaxPool2D, AvgPool2D, ReLU, LeakyReLU, Sigmoid, Tanh,
                                              Flatten, Dense, Dropout, Dropout2D, BatchNorm1D, BatchNorm2D)}
