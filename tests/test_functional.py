"""The fast kernels against naive loop oracles, on random data and on real MNIST."""

import numpy as np
import pytest

from cnn import functional as F
from cnn.losses import softmax_cross_entropy
from cnn.layers import Conv2D, ReLU

from cnn import reference as oracles


@pytest.mark.parametrize("n,c,h,w,f,k,stride,pad", [
    (2, 3, 7, 7, 4, 3, 1, 1),
    (1, 1, 5, 6, 2, 3, 1, 0),    # pad 0, non-square, batch of one
    (2, 2, 9, 9, 3, 3, 2, 1),    # stride 2
    (2, 2, 8, 7, 3, 3, 2, 2),    # pad larger than the kernel overlap
    (3, 4, 6, 6, 5, 1, 1, 0),    # 1x1 kernel
    (1, 2, 11, 10, 2, 5, 2, 2),  # 5x5, odd sizes, stride 2
    (2, 3, 7, 7, 2, 2, 3, 0),    # stride 3 that leaves columns uncovered
])
def test_conv2d_forward_matches_loop_oracle(rng, n, c, h, w, f, k, stride, pad):
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((f, c, k, k))
    b = rng.standard_normal(f)
    out, _ = F.conv2d_forward(x, wt, b, stride, pad)
    np.testing.assert_allclose(out, oracles.conv2d(x, wt, b, stride, pad), rtol=1e-12, atol=1e-12)


def test_conv2d_keeps_float32(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out, cache = F.conv2d_forward(x, w, np.zeros(4, np.float32), 1, 1)
    dx, dw, db = F.conv2d_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.float32


@pytest.mark.parametrize("c,stride,pad", [(1, 1, 1), (1, 2, 0), (1, 3, 2), (2, 1, 1), (2, 2, 0)])
def test_conv2d_dx_is_the_adjoint_of_the_forward(rng, c, stride, pad):
    # a conv without bias is linear in x: <dout, conv(x)> == <dx, x> for any dout, whichever way
    # dx is computed (scattering for one input channel, im2col of dout otherwise)
    x, w = rng.standard_normal((2, c, 9, 8)), rng.standard_normal((3, c, 3, 3))
    out, cache = F.conv2d_forward(x, w, None, stride, pad)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = F.conv2d_backward(dout, cache, need_params=False)
    assert dx.shape == x.shape
    assert np.sum(dout * out) == pytest.approx(np.sum(dx * x), rel=1e-12)


def test_conv2d_backward_can_skip_dx(rng):
    x, w = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    out, cache = F.conv2d_forward(x, w, np.zeros(3), 1, 1)
    full = F.conv2d_backward(out, cache)
    dx, dw, db = F.conv2d_backward(out, cache, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, full[1])
    np.testing.assert_array_equal(db, full[2])


@pytest.mark.parametrize("shape,k,stride", [
    ((2, 3, 8, 8), 2, 2),    # the fast path
    ((1, 2, 7, 9), 2, 2),    # fast path with odd sizes (last row/column dropped)
    ((2, 2, 7, 7), 3, 2),    # overlapping windows
    ((2, 2, 9, 9), 3, 3),
    ((1, 1, 6, 6), 2, 1),
])
def test_pooling_matches_loop_oracle(rng, shape, k, stride):
    x = rng.standard_normal(shape)
    out, cache = F.maxpool2d_forward(x, k, stride)
    ref, argmax = oracles.maxpool2d(x, k, stride)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(F.maxpool2d_backward(dout, cache),
                               oracles.maxpool2d_backward(dout, argmax, shape), atol=1e-15)

    out, cache = F.avgpool2d_forward(x, k, stride)
    np.testing.assert_allclose(out, oracles.avgpool2d(x, k, stride), rtol=1e-12)
    # avg pool is linear: its backward is the adjoint, <dout, A x> == <A^T dout, x>
    dx = F.avgpool2d_backward(dout, cache)
    assert np.sum(dout * out) == pytest.approx(np.sum(dx * x), rel=1e-12)


def _first_layer_activations(mnist, n=64):
    """ReLU(conv(x)) of real digits through a random first layer with the positive biases
    training gives some channels: the flat background then maps to one positive value."""
    rng = np.random.default_rng(0)
    conv = Conv2D(1, 8, 3, padding=1, rng=rng)
    conv.params["bias"] = rng.uniform(0.0, 0.1, 8).astype(np.float32)
    return ReLU().forward(conv.forward(mnist.x_train[:n]))


@pytest.mark.parametrize("k,stride", [(2, 2), (3, 2)])
def test_maxpool_routes_ties_to_one_input_on_real_mnist(mnist, k, stride):
    act = _first_layer_activations(mnist)
    out, cache = F.maxpool2d_forward(act, k, stride)
    ref, argmax = oracles.maxpool2d(act, k, stride)
    np.testing.assert_array_equal(out, ref)

    # real activations are full of exact ties, positive ones included
    win = act[:, :, : 2 * (act.shape[2] // 2), : 2 * (act.shape[3] // 2)]
    blocks = win.reshape(win.shape[0], win.shape[1], win.shape[2] // 2, 2, -1, 2)
    n_max = (blocks == blocks.max(axis=(3, 5), keepdims=True)).sum(axis=(3, 5))
    positive = blocks.max(axis=(3, 5)) > 0
    assert (n_max[positive] > 1).mean() > 0.3

    dout = np.ones_like(out)
    dx = F.maxpool2d_backward(dout, cache)
    # the gradient leaving the layer is exactly what came in: one input per window
    assert dx.sum() == pytest.approx(dout.sum())
    np.testing.assert_array_equal(dx, oracles.maxpool2d_backward(dout, argmax, act.shape))


def test_softmax_cross_entropy_is_stable_and_has_the_closed_form_gradient():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    labels = np.array([0, 2])
    loss, d = softmax_cross_entropy(logits, labels)
    p = np.exp(logits[1] - logits[1].max())
    p /= p.sum()
    assert np.isfinite(loss)
    assert loss == pytest.approx((0.0 - np.log(p[2])) / 2)
    expected = np.array([[0.0, 0.0, 0.0], p - [0, 0, 1]]) / 2
    np.testing.assert_allclose(d, expected, atol=1e-15)


def test_pad_helper_crops_for_negative_amounts(rng):
    x = rng.standard_normal((1, 5, 6, 2))
    np.testing.assert_array_equal(F.pad_hw(x, -1, -2, 0, -3), x[:, 1:3, 0:3])
    padded = F.pad_hw(x, 2, 0, 1, 1)
    assert padded.shape == (1, 7, 8, 2)
    np.testing.assert_array_equal(padded[:, 2:, 1:7], x)
    assert padded.sum() == pytest.approx(x.sum())
