"""Pure array kernels: each forward returns (out, cache), each backward takes (dout, cache).

Tensors are NCHW by shape. Inside the kernels images are handled channels-last
(N, H, W, C): im2col then copies whole runs of C contiguous values per kernel
offset, and a conv writes its result as (N*OH*OW, C_out) rows. The NCHW array a
kernel returns is a transposed view of that channels-last block, and the next
kernel's transpose back to channels-last is free. Elementwise NumPy operations
keep the memory order of their inputs, so the layout carries through ReLU and
batch norm without copies.

Output size of a convolution or pooling window along one axis:
    OH = (H + 2 * pad - KH) // stride + 1
"""

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided


def out_size(size, kernel, stride=1, pad=0):
    """Number of window positions along one axis."""
    return (size + 2 * pad - kernel) // stride + 1


# ---------------------------------------------------------------- helpers

def pad_hw(x, lo_h, hi_h, lo_w, hi_w):
    """Pad (or, for negative amounts, crop) the H and W axes of an (N, H, W, C) array.

    A fresh zero array gets the overlapping block copied in, so pad 0 and
    negative pads need no special case (unlike x[:, p:-p], which is empty at p=0).
    """
    n, h, w, c = x.shape
    out = np.zeros((n, h + lo_h + hi_h, w + lo_w + hi_w, c), dtype=x.dtype)
    src_h = slice(max(-lo_h, 0), h - max(-hi_h, 0))
    src_w = slice(max(-lo_w, 0), w - max(-hi_w, 0))
    dst_h = slice(max(lo_h, 0), max(lo_h, 0) + src_h.stop - src_h.start)
    dst_w = slice(max(lo_w, 0), max(lo_w, 0) + src_w.stop - src_w.start)
    out[:, dst_h, dst_w] = x[:, src_h, src_w]
    return out


def _windows(x, kh, kw, stride):
    """All kh x kw windows of an (N, H, W, C) array as a strided view.

    Returns shape (N, OH, OW, KH, KW, C): no copy until it is reshaped.
    """
    x = np.ascontiguousarray(x)
    n, h, w, c = x.shape
    oh, ow = out_size(h, kh, stride), out_size(w, kw, stride)
    sn, sh, sw, sc = x.strides
    return as_strided(x, shape=(n, oh, ow, kh, kw, c),
                      strides=(sn, sh * stride, sw * stride, sh, sw, sc), writeable=False)


def im2col(x, kh, kw, stride):
    """(N, H, W, C) -> (N*OH*OW, KH*KW*C): one row per output position, channels innermost."""
    win = _windows(x, kh, kw, stride)  # (N, OH, OW, KH, KW, C)
    n, oh, ow, _, _, c = win.shape
    if c > 1:
        return win.reshape(n * oh * ow, kh * kw * c)  # copies
    # One channel: each window value would be a run of one. Copying one shifted
    # image per kernel offset into the rows of the transposed matrix writes long
    # contiguous runs instead, about three times faster; matmul takes the
    # transposed (Fortran-ordered) result as it is.
    cols_t = np.empty((kh * kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols_t[i * kw + j] = win[:, :, :, i, j, 0]
    return cols_t.reshape(kh * kw, n * oh * ow).T  # (N*OH*OW, KH*KW), a transposed view


def to_nhwc(x):
    """NCHW -> NHWC view; free when x is a view of channels-last memory."""
    return x.transpose(0, 2, 3, 1)


def to_nchw(x):
    """NHWC -> NCHW view."""
    return x.transpose(0, 3, 1, 2)


def per_channel(op, x, vec, out=None):
    """op(x, vec) for x: (M, C) and vec: (C,), i.e. vec broadcast over the rows of x.

    NumPy runs its inner loop once per row, and a row of a channels-last block
    holds only C values (8, 16, 32): the per-call overhead then dominates. Viewing
    x as (M/r, r*C) with vec tiled r times gives the same result with rows of a few
    hundred values, about five times faster.
    """
    m, c = x.shape
    if out is not None and not out.flags.c_contiguous:
        raise ValueError("per_channel writes through a reshaped view: out must be C-contiguous")
    r = math.gcd(m, 1 << max(0, (512 // c).bit_length() - 1))  # a power of two dividing m
    wide = np.ascontiguousarray(x).reshape(m // r, r * c)
    if out is not None:
        op(wide, np.tile(vec, r), out=out.reshape(m // r, r * c))
        return out
    return op(wide, np.tile(vec, r)).reshape(m, c)


# ---------------------------------------------------------------- convolution

def conv2d_forward(x, w, b, stride=1, pad=0):
    """2-D cross-correlation, as im2col and one matrix product.

    x: (N, C, H, W)   w: (F, C, KH, KW)   b: (F,) or None   ->   out: (N, F, OH, OW)
    """
    n, c, h, wd = x.shape
    f, c_w, kh, kw = w.shape
    if c != c_w:
        raise ValueError(f"conv2d: input has {c} channels, weights expect {c_w}")
    xh = pad_hw(to_nhwc(x), pad, pad, pad, pad)  # (N, H+2p, W+2p, C)
    cols = im2col(xh, kh, kw, stride)  # (N*OH*OW, KH*KW*C)
    wmat = w.transpose(2, 3, 1, 0).reshape(kh * kw * c, f)  # (KH*KW*C, F)
    out = cols @ wmat  # (N*OH*OW, F)
    if b is not None:
        per_channel(np.add, out, b, out=out)
    oh, ow = out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad)
    out = to_nchw(out.reshape(n, oh, ow, f))  # (N, F, OH, OW), channels-last memory
    return out, (cols, x.shape, w, stride, pad)


def conv2d_backward(dout, cache, need_dx=True, need_params=True):
    """Gradients of conv2d_forward: returns (dx, dw, db); dx is None if not need_dx, dw and db
    None if not need_params (an explanation needs only dx: a third less work).

    dw = cols^T @ dout and db = sum of dout over positions. dx is the "full"
    correlation of dout with the kernel rotated by 180 degrees and its in/out
    channels swapped: for stride s, dout is first dilated with s-1 zeros between
    entries; it is then padded by KH-1-pad (cropped where that is negative) and
    goes through the same im2col + one matrix product as the forward pass. For an
    input of one channel, scattering is cheaper (_conv2d_dx_one_channel).
    """
    cols, (n, c, h, wd), w, stride, pad = cache
    f, _, kh, kw = w.shape
    dh = to_nhwc(dout)  # (N, OH, OW, F)
    _, oh, ow, _ = dh.shape
    dmat = dh.reshape(n * oh * ow, f)  # (N*OH*OW, F)
    dw = db = None
    if need_params:
        dw = np.ascontiguousarray((cols.T @ dmat).reshape(kh, kw, c, f).transpose(3, 2, 0, 1))  # (F, C, KH, KW)
        # the column sums of a tall matrix as a product with a row of ones: one BLAS call,
        # several times faster here than dmat.sum(axis=0), and the same sum
        db = np.ones(len(dmat), dtype=dmat.dtype) @ dmat  # (F,)
    if not need_dx:
        return None, dw, db
    if c == 1:
        return _conv2d_dx_one_channel(dmat, (n, c, h, wd), w, stride, pad, (oh, ow)), dw, db
    if stride > 1:
        dil = np.zeros((n, (oh - 1) * stride + 1, (ow - 1) * stride + 1, f), dtype=dout.dtype)
        dil[:, ::stride, ::stride] = dh
        dh = dil
    lo_h, lo_w = kh - 1 - pad, kw - 1 - pad
    hi_h = h + kh - 1 - dh.shape[1] - lo_h  # makes the padded height H + KH - 1
    hi_w = wd + kw - 1 - dh.shape[2] - lo_w
    dpad = pad_hw(dh, lo_h, hi_h, lo_w, hi_w)  # (N, H+KH-1, W+KW-1, F)
    dcols = im2col(dpad, kh, kw, 1)  # (N*H*W, KH*KW*F)
    wrot = w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(kh * kw * f, c)  # (KH*KW*F, C)
    dx = to_nchw((dcols @ wrot).reshape(n, h, wd, c))  # (N, C, H, W)
    return dx, dw, db


def _conv2d_dx_one_channel(dmat, shape, w, stride, pad, out_hw):
    """dx of a convolution whose input has one channel (the first layer), by scattering.

    im2col of the (F-channel) output gradient would copy KH*KW*F values per pixel to make
    one. Instead one product turns each output position's F gradients into the KH*KW
    values it sends back, z[n, y, x, (u, v)] = sum_f dout[n, y, x, f] * w[f, 0, u, v],
    and each kernel offset adds its plane of z into the (padded) input at its shift:
    dx[n, y*s + u - pad, x*s + v - pad] += z[n, y, x, (u, v)]. Four times faster for
    the first layer of the default network, where saliency and every other
    input-gradient method need this dx."""
    n, _, h, wd = shape
    f, _, kh, kw = w.shape
    oh, ow = out_hw
    z = dmat @ w.reshape(f, kh * kw)  # (N*OH*OW, KH*KW)
    planes = np.ascontiguousarray(z.T).reshape(kh * kw, n, oh, ow)  # one contiguous plane per offset
    padded = np.zeros((n, max(h + 2 * pad, (oh - 1) * stride + kh), max(wd + 2 * pad, (ow - 1) * stride + kw)),
                      dtype=dmat.dtype)
    for u in range(kh):
        for v in range(kw):
            padded[:, u : u + stride * (oh - 1) + 1 : stride, v : v + stride * (ow - 1) + 1 : stride] += planes[u * kw + v]
    return np.ascontiguousarray(padded[:, pad : pad + h, pad : pad + wd])[:, None]  # (N, 1, H, W)


# ---------------------------------------------------------------- pooling
#
# A pooling window has k*k offsets (i, j). For one offset, the inputs it covers
# in every window form one strided view of the input, of the output's shape. So
# both poolings loop over the k*k offsets -- four steps for the common 2x2 --
# and do whole-array work in each: no copy of the windows, no per-window loop.
# When windows do not overlap (stride >= k, as in 2x2 stride 2) each input
# belongs to at most one window and backward writes the views directly instead
# of accumulating into them: that is the fast path.

def _offsets(k, stride, oh, ow):
    """For each kernel offset (i, j), the index of its view: x[:, i + stride*y, j + stride*x] for all (y, x)."""
    return [(slice(None), slice(i, i + stride * (oh - 1) + 1, stride), slice(j, j + stride * (ow - 1) + 1, stride))
            for i in range(k) for j in range(k)]


def maxpool2d_forward(x, k=2, stride=2):
    """Max over k x k windows. x: (N, C, H, W) -> out: (N, C, OH, OW)."""
    xh = to_nhwc(x)  # (N, H, W, C)
    first, *rest = _offsets(k, stride, out_size(xh.shape[1], k, stride), out_size(xh.shape[2], k, stride))
    out = xh[first].copy()  # (N, OH, OW, C)
    for view in rest:
        np.maximum(out, xh[view], out=out)
    return to_nchw(out), (x, out, k, stride)


def maxpool2d_backward(dout, cache):
    """Route each window's gradient to exactly one input: its first maximum in row-major order.

    On real images many windows hold several equal maxima (flat background,
    saturated pixels); the gradient goes to the first, as in the reference
    frameworks, never to all of them. The masks are recomputed from the input and
    the output rather than stored.
    """
    x, out, k, stride = cache
    xh, dh = to_nhwc(x), to_nhwc(dout)  # (N, H, W, C), (N, OH, OW, C)
    oh, ow = out.shape[1:3]
    tiled = stride == k and xh.shape[1] == oh * k and xh.shape[2] == ow * k  # each input in exactly one window
    dx = (np.empty if tiled else np.zeros)(xh.shape, dtype=dout.dtype)
    is_max = np.empty(out.shape, dtype=bool)
    views = _offsets(k, stride, oh, ow)
    for i, view in enumerate(views):
        np.equal(xh[view], out, out=is_max)
        if i == 0:
            free = ~is_max  # windows whose maximum is not yet claimed
        else:
            is_max &= free
            if i < len(views) - 1:
                free ^= is_max
        if stride >= k:  # windows do not overlap: write, no need to accumulate
            np.multiply(dh, is_max, out=dx[view])
        else:
            dx[view] += dh * is_max
    return to_nchw(dx)


def avgpool2d_forward(x, k=2, stride=2):
    """Mean over k x k windows. x: (N, C, H, W) -> out: (N, C, OH, OW)."""
    xh = to_nhwc(x)  # (N, H, W, C)
    first, *rest = _offsets(k, stride, out_size(xh.shape[1], k, stride), out_size(xh.shape[2], k, stride))
    out = xh[first].copy()  # (N, OH, OW, C)
    for view in rest:
        out += xh[view]
    out *= out.dtype.type(1 / (k * k))
    return to_nchw(out), (x.shape, k, stride)


def avgpool2d_backward(dout, cache):
    """Spread each window's gradient evenly over its k*k inputs."""
    (n, c, h, w), k, stride = cache
    share = to_nhwc(dout) * dout.dtype.type(1 / (k * k))  # (N, OH, OW, C)
    dx = np.zeros((n, h, w, c), dtype=dout.dtype)
    for view in _offsets(k, stride, *share.shape[1:3]):
        if stride >= k:  # windows do not overlap
            dx[view] = share
        else:
            dx[view] += share
    return to_nchw(dx)


# ---------------------------------------------------------------- activations

def relu_forward(x):
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout, out):
    """dx = dout where the output was positive (the input at 0 gets gradient 0)."""
    return dout * (out > 0)


def leaky_relu_forward(x, slope=0.01):
    """max(x, slope * x) for 0 <= slope < 1."""
    return np.maximum(x, x * x.dtype.type(slope)), (x > 0, slope)


def leaky_relu_backward(dout, cache):
    """dx = dout where x > 0, slope * dout elsewhere."""
    positive, slope = cache
    return dout * (positive * dout.dtype.type(1 - slope) + dout.dtype.type(slope))


def sigmoid_forward(x):
    """1 / (1 + exp(-x)), written as (1 + tanh(x / 2)) / 2 so that no exp overflows."""
    half = x.dtype.type(0.5)
    out = half * (1 + np.tanh(half * x))
    return out, out


def sigmoid_backward(dout, out):
    """dx = dout * s * (1 - s), with s the forward output."""
    return dout * out * (1 - out)


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, out):
    """dx = dout * (1 - tanh(x)^2), from the forward output."""
    return dout * (1 - out * out)


def dropout2d_mask(rng, shape, p, dtype):
    """(N, C, 1, 1) inverted-dropout scales: 0 for a dropped channel, 1 / (1 - p) for a kept one."""
    n, c = shape[:2]
    keep = rng.random((n, c, 1, 1), dtype=np.float32) >= p
    return keep * dtype.type(1 / (1 - p))


# ---------------------------------------------------------------- dense

def dense_forward(x, w, b):
    """x: (N, D)   w: (D, M)   b: (M,)   ->   out: (N, M)."""
    out = x @ w
    out += b
    return out, (x, w)


def dense_backward(dout, cache, need_dx=True, need_params=True):
    """dx, dw, db of out = x @ w + b; dx is None without need_dx, dw and db None without need_params."""
    x, w = cache
    dw = x.T @ dout if need_params else None  # (D, M)
    db = np.ones(len(dout), dtype=dout.dtype) @ dout if need_params else None  # (M,) column sums, as in conv2d_backward
    dx = dout @ w.T if need_dx else None  # (N, D)
    return dx, dw, db


# ---------------------------------------------------------------- batch norm
#
# When a batch is split across worker threads (cnn/parallel.py), each worker
# holds a shard of the rows. The batch statistics must still be those of the
# whole batch, so every sum over rows goes through allsum(a), which adds a up
# over the shards (and is the identity for a single worker).

def _local(a):
    return a


def batchnorm_forward(x, gamma, beta, eps, mean=None, var=None, allsum=_local):
    """Normalise each column of x: (M, C). Without mean and var, use the batch's (training).

        xhat = (x - mean) / sqrt(var + eps),   out = gamma * xhat + beta

    Returns (out, cache, (mean, var)); var is the biased batch variance. xhat is
    never stored: the cache keeps x - mean and 1/std, and backward folds them in.
    """
    batch = mean is None
    ones = np.ones(len(x), dtype=x.dtype)  # ones @ a: the column sums of a, as one BLAS call
    m = len(x)
    if batch:
        m = int(allsum(np.array(len(x))))  # rows in the whole batch
        mean = allsum(ones @ x) / m  # (C,)
    xc = per_channel(np.subtract, x, mean.astype(x.dtype, copy=False))
    if batch:
        var = allsum(ones @ (xc * xc)) / m
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    out = per_channel(np.multiply, xc, gamma * rstd)
    per_channel(np.add, out, beta, out=out)
    return out, (xc, rstd, gamma, batch, m, allsum), (mean, var)


def batchnorm_backward(dout, cache):
    """dx, dgamma, dbeta for (M, C) batch norm, with xhat = xc * rstd.

    In training the mean and variance depend on x, and
        dx = gamma * rstd * (dout - mean(dout) - xhat * mean(dout * xhat));
    in evaluation they are constants and dx = gamma * rstd * dout.
    dgamma and dbeta are this shard's share (workers add theirs up like any
    other gradient); the means in dx are over the whole batch.
    """
    xc, rstd, gamma, batch, m, allsum = cache
    ones = np.ones(len(dout), dtype=dout.dtype)
    dbeta = ones @ dout  # (C,)
    dgamma = (ones @ (dout * xc)) * rstd  # sum(dout * xhat)
    scale = gamma * rstd
    dx = per_channel(np.multiply, dout, scale)
    if batch:
        dx -= per_channel(np.multiply, xc, scale * rstd * allsum(dgamma) / m)
        per_channel(np.subtract, dx, scale * allsum(dbeta) / m, out=dx)
    return dx, dgamma, dbeta
