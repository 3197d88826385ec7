"""Readable loop versions of the kernels: slow, obviously right.

Each function computes, one output value at a time, what its fast counterpart
in functional.py computes with im2col and matrix products. The tutorial shows
them side by side, and the tests use these as the oracle for the fast ones.
Never on the training path.
"""

import numpy as np


def conv2d(x, w, b, stride, pad):
    """x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) -> (N, F, OH, OW), one window at a time."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=x.dtype)
    xp[:, :, pad : pad + h, pad : pad + wd] = x
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, f, oh, ow), dtype=np.float64)
    for i in range(n):
        for o in range(f):
            for y in range(oh):
                for z in range(ow):
                    patch = xp[i, :, y * stride : y * stride + kh, z * stride : z * stride + kw]
                    out[i, o, y, z] = np.sum(patch * w[o]) + b[o]
    return out


def maxpool2d(x, k, stride):
    """Forward output and, for a given dout, the gradient sent to the first maximum of each window."""
    n, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    argmax = np.zeros((n, c, oh, ow, 2), dtype=int)
    for i in range(n):
        for ch in range(c):
            for y in range(oh):
                for z in range(ow):
                    win = x[i, ch, y * stride : y * stride + k, z * stride : z * stride + k]
                    a, b_ = np.unravel_index(np.argmax(win), win.shape)  # first maximum, row-major
                    out[i, ch, y, z] = win[a, b_]
                    argmax[i, ch, y, z] = (y * stride + a, z * stride + b_)
    return out, argmax


def maxpool2d_backward(dout, argmax, x_shape):
    """Each output's gradient, added to the input pixel that was its window's first maximum."""
    dx = np.zeros(x_shape, dtype=dout.dtype)
    n, c, oh, ow = dout.shape
    for i in range(n):
        for ch in range(c):
            for y in range(oh):
                for z in range(ow):
                    a, b_ = argmax[i, ch, y, z]
                    dx[i, ch, a, b_] += dout[i, ch, y, z]
    return dx


def avgpool2d(x, k, stride):
    """The mean of each k x k window, every image and channel at once."""
    n, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, c, oh, ow), dtype=np.float64)
    for y in range(oh):
        for z in range(ow):
            out[:, :, y, z] = x[:, :, y * stride : y * stride + k, z * stride : z * stride + k].mean(axis=(2, 3))
    return out
