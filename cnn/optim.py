"""Optimisers and learning-rate schedules.

An optimiser takes plain constructor arguments and updates a model in place with
``step(model)``, after ``model.backward`` has filled every layer's ``grads``. Its
state (velocities, moments) is keyed by (layer name, parameter name).

L2 weight decay adds ``weight_decay * w`` to the gradient of every parameter
named "weight" (conv kernels, dense matrices), not to biases or batch-norm
scales, which it would only pull towards zero for no gain.
"""

import math

import numpy as np


def _parameters(model):
    """(key, parameter, gradient) for every trainable array, key = (layer name, parameter name)."""
    for layer in model.layers:
        for name, p in layer.params.items():
            yield (layer.name, name), p, layer.grads[name]


class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum.

        v <- momentum * v + g
        w <- w - lr * v                       (classical momentum)
        w <- w - lr * (g + momentum * v)      (Nesterov, as in Sutskever et al. 2013)
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay
        self.velocity = {}

    def step(self, model):
        for key, p, g in _parameters(model):
            if self.weight_decay and key[1] == "weight":
                g = g + self.weight_decay * p
            if self.momentum:
                v = self.velocity.get(key)
                if v is None:
                    v = self.velocity[key] = np.zeros_like(p)
                v *= self.momentum
                v += g
                g = g + self.momentum * v if self.nesterov else v
            p -= self.lr * g


class Adam:
    """Adam (Kingma and Ba 2015, arXiv:1412.6980) with bias correction.

        m <- b1 m + (1 - b1) g,    v <- b2 v + (1 - b2) g^2
        w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.t = 0
        self.m, self.v = {}, {}

    def step(self, model):
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for key, p, g in _parameters(model):
            if self.weight_decay and key[1] == "weight":
                g = g + self.weight_decay * p
            if key not in self.m:
                self.m[key], self.v[key] = np.zeros_like(p), np.zeros_like(p)
            m, v = self.m[key], self.v[key]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            denom = np.sqrt(v / c2)
            denom += self.eps
            p -= (self.lr / c1) * m / denom


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


class ConstantLR:
    def __init__(self, lr):
        self.lr = lr

    def __call__(self, epoch):
        return self.lr


class StepLR:
    """lr * gamma ** (epoch // step_size), epochs counted from 0."""

    def __init__(self, lr, step_size, gamma=0.1):
        self.lr, self.step_size, self.gamma = lr, step_size, gamma

    def __call__(self, epoch):
        return self.lr * self.gamma ** (epoch // self.step_size)


class CosineLR:
    """Cosine annealing from lr at epoch 0 towards min_lr over `epochs` epochs (Loshchilov and Hutter 2017).

    lr_e = min_lr + (lr - min_lr) * (1 + cos(pi * e / epochs)) / 2, so the last epoch
    still trains with a small positive rate.
    """

    def __init__(self, lr, epochs, min_lr=0.0):
        self.lr, self.epochs, self.min_lr = lr, epochs, min_lr

    def __call__(self, epoch):
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * epoch / self.epochs)) / 2


SCHEDULES = {
    "constant": lambda lr, epochs: ConstantLR(lr),
    "step": lambda lr, epochs: StepLR(lr, step_size=max(1, epochs // 3), gamma=0.1),
    "cosine": lambda lr, epochs: CosineLR(lr, epochs),
}
