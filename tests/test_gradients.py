"""Every layer's analytic gradients against central differences in float64."""

import numpy as np
import pytest

from cnn.gradcheck import check_layer, check_model, relative_error
from cnn.layers import (AvgPool2D, BatchNorm1D, BatchNorm2D, Conv2D, Dense, Dropout, Dropout2D, Flatten,
                        LeakyReLU, MaxPool2D, ReLU, Sigmoid, Tanh)
from cnn.losses import mean_squared_error
from cnn.model import Sequential, default_cnn

TOL = 1e-6


def assert_all_small(errors):
    assert set(errors) >= {"input"}
    bad = {k: e for k, e in errors.items() if not e < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


@pytest.mark.parametrize("n,c,h,w,f,k,stride,pad", [
    (1, 1, 5, 5, 2, 3, 1, 0),    # batch of one, pad 0
    (2, 3, 6, 6, 4, 3, 1, 1),
    (2, 2, 7, 5, 3, 3, 1, 2),    # odd, non-square, pad 2
    (2, 2, 7, 7, 3, 3, 2, 0),    # stride 2
    (1, 3, 8, 9, 2, 3, 2, 1),
    (2, 2, 9, 9, 2, 5, 2, 2),
    (2, 1, 6, 6, 3, 1, 1, 0),    # 1x1
    (1, 2, 7, 7, 2, 2, 2, 1),    # even kernel
    (2, 1, 8, 8, 4, 3, 1, 1),    # one input channel: dx by scattering (the first layer's case)
    (2, 1, 7, 6, 3, 3, 2, 0),    # ...with stride 2, pad 0, non-square
    (1, 1, 9, 9, 2, 3, 3, 2),    # ...with stride 3 that leaves pixels uncovered, pad 2
])
def test_conv2d_gradients(rng, n, c, h, w, f, k, stride, pad):
    layer = Conv2D(c, f, k, stride=stride, padding=pad, rng=rng)
    layer.params["bias"] = rng.standard_normal(f).astype(np.float32)
    errors = check_layer(layer, rng.standard_normal((n, c, h, w)), rng)
    assert set(errors) == {"input", "weight", "bias"}
    assert_all_small(errors)


def test_a_conv_without_bias_has_no_bias_to_learn_and_folds_into_its_batch_norm(rng, tmp_path):
    from cnn.model import fold_batchnorm

    layer = Conv2D(2, 3, 3, padding=1, rng=rng, bias=False)
    errors = check_layer(layer, rng.standard_normal((2, 2, 6, 6)), rng)
    assert set(errors) == {"input", "weight"}
    assert_all_small(errors)
    model = Sequential([Conv2D(1, 4, 3, padding=1, rng=rng, bias=False), BatchNorm2D(4), ReLU(), Flatten(),
                        Dense(4 * 8 * 8, 3, rng=rng)], input_shape=(1, 8, 8))
    assert "conv1.bias" not in model.state() and "no bias" in model.summary()
    for _ in range(3):  # running statistics away from their defaults
        model.forward(rng.standard_normal((8, 1, 8, 8)).astype(np.float32) + 1, training=True)
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(fold_batchnorm(model).forward(x), model.forward(x), atol=1e-5)
    model.save(tmp_path / "m.npz")
    again = Sequential.load(tmp_path / "m.npz")
    assert not again.layers[0].bias
    np.testing.assert_array_equal(again.forward(x), model.forward(x))


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("shape,k,stride", [
    ((1, 1, 4, 4), 2, 2), ((2, 3, 7, 7), 2, 2), ((2, 2, 6, 5), 2, 2),
    ((2, 2, 7, 7), 3, 2), ((1, 2, 5, 5), 2, 1), ((2, 1, 9, 9), 3, 3),
])
def test_pooling_gradients(rng, pool, shape, k, stride):
    assert_all_small(check_layer(pool(k, stride), rng.standard_normal(shape), rng))


@pytest.mark.parametrize("shape", [(1, 7), (3, 4, 5, 5), (2, 3, 3)])
@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.1), Sigmoid(), Tanh()],
                         ids=["relu", "leakyrelu", "sigmoid", "tanh"])
def test_activation_gradients(rng, layer, shape):
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink, where there is no derivative
    assert_all_small(check_layer(layer, x, rng))


@pytest.mark.parametrize("n,d,m", [(1, 5, 3), (4, 7, 2), (3, 1, 6)])
def test_dense_gradients(rng, n, d, m):
    layer = Dense(d, m, rng=rng)
    layer.params["bias"] = rng.standard_normal(m).astype(np.float32)
    errors = check_layer(layer, rng.standard_normal((n, d)), rng)
    assert set(errors) == {"input", "weight", "bias"}
    assert_all_small(errors)


def test_flatten_gradients(rng):
    assert_all_small(check_layer(Flatten(), rng.standard_normal((2, 3, 4, 5)), rng))


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 2, 5, 3), (4, 1, 3, 3)])
@pytest.mark.parametrize("training", [True, False], ids=["batch-stats", "running-stats"])
def test_batchnorm2d_gradients(rng, shape, training):
    layer = BatchNorm2D(shape[1])
    layer.params["gamma"] = rng.uniform(0.5, 1.5, shape[1]).astype(np.float32)
    layer.params["beta"] = rng.standard_normal(shape[1]).astype(np.float32)
    layer.buffers["running_mean"] = rng.standard_normal(shape[1]).astype(np.float32)
    layer.buffers["running_var"] = rng.uniform(0.5, 2, shape[1]).astype(np.float32)
    errors = check_layer(layer, rng.standard_normal(shape) * 2 + 1, rng, training=training)
    assert set(errors) == {"input", "gamma", "beta"}
    assert_all_small(errors)


@pytest.mark.parametrize("shape", [(5, 3), (2, 7), (8, 1)])
@pytest.mark.parametrize("training", [True, False], ids=["batch-stats", "running-stats"])
def test_batchnorm1d_gradients(rng, shape, training):
    layer = BatchNorm1D(shape[1])
    layer.params["gamma"] = rng.uniform(0.5, 1.5, shape[1]).astype(np.float32)
    assert_all_small(check_layer(layer, rng.standard_normal(shape), rng, training=training))


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5, 5), (1, 10)])
def test_dropout_gradients(rng, shape):
    assert_all_small(check_layer(Dropout(0.4, rng=rng), rng.standard_normal(shape), rng))


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (1, 2, 3, 3), (2, 1, 1, 1), (3, 6, 4, 2)])
def test_dropout2d_gradients(rng, shape):
    assert_all_small(check_layer(Dropout2D(0.4, rng=rng), rng.standard_normal(shape), rng))


def test_dropout2d_drops_whole_channels_and_keeps_the_mean(rng):
    layer = Dropout2D(0.3, rng=np.random.default_rng(0))
    x = np.ones((400, 8, 5, 5), dtype=np.float32)
    out = layer.forward(x, training=True)
    per_channel = out.reshape(400, 8, -1)
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # a channel is kept or dropped whole
    assert set(np.unique(out)) == {0, np.float32(1 / 0.7)}
    assert abs((out == 0).reshape(400, 8, -1)[:, :, 0].mean() - 0.3) < 0.03
    assert abs(out.mean() - 1) < 0.05
    assert layer.forward(x) is x  # evaluation: the identity


def test_sigmoid_does_not_overflow_and_matches_its_definition():
    x = np.array([-1000.0, -3.0, 0.0, 2.0, 1000.0])
    out = Sigmoid().forward(x)
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("shape", [(1, 3), (4, 10), (2, 3, 2)])
def test_mean_squared_error_gradient(rng, shape):
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    loss, grad = mean_squared_error(pred, target)
    assert loss == pytest.approx(((pred - target) ** 2).mean())
    eps, numeric = 1e-6, np.empty(pred.size)
    for i in range(pred.size):
        plus, minus = pred.copy().reshape(-1), pred.copy().reshape(-1)
        plus[i] += eps
        minus[i] -= eps
        numeric[i] = (mean_squared_error(plus.reshape(shape), target)[0]
                      - mean_squared_error(minus.reshape(shape), target)[0]) / (2 * eps)
    assert relative_error(grad, numeric) < TOL


def test_check_layer_catches_a_wrong_gradient(rng):
    """The checker itself can fail: a conv whose weight gradient is off by 1 % is caught."""

    class SkewedConv(Conv2D):
        def backward(self, dout, need_dx=True):
            dx = super().backward(dout, need_dx)
            self.grads["weight"] = self.grads["weight"] * 1.01
            return dx

    layer = SkewedConv(2, 3, 3, padding=1, rng=rng)
    errors = check_layer(layer, rng.standard_normal((2, 2, 5, 5)), rng)
    assert errors["input"] < TOL and errors["bias"] < TOL
    assert errors["weight"] > 1e-3


def test_relative_error_is_scale_free():
    a = np.array([1.0, 2.0, 3.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a * 1e6, a * 1e6 * (1 + 1e-9)) == pytest.approx(relative_error(a, a * (1 + 1e-9)))


def test_check_model_covers_every_layer_of_the_default_network(rng):
    model = default_cnn(rng)
    rows = check_model(model, rng, batch=2, max_entries=10)
    assert [r["layer"] for r in rows] == [l.name for l in model.layers]
    for row in rows:
        assert_all_small(row["errors"])
        assert set(row["errors"]) == {"input", *model.layer(row["layer"]).params}


def test_whole_small_model_input_gradient(rng):
    """Backward through a whole stack of layers equals central differences at the input."""
    model = Sequential([Conv2D(1, 3, 3, padding=1, rng=rng), BatchNorm2D(3), ReLU(), MaxPool2D(2),
                        Conv2D(3, 4, 3, stride=2, padding=1, rng=rng), LeakyReLU(0.1),
                        AvgPool2D(2), Flatten(), Dense(4, 3, rng=rng)], input_shape=(1, 8, 8))
    model = model.astype(np.float64)
    x = rng.standard_normal((2, 1, 8, 8))
    dout = rng.standard_normal((2, 3))
    model.forward(x, training=True)
    dx = model.backward(dout)
    eps, numeric = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = np.sum(model.forward(x, training=True) * dout)
        x[i] = old - eps
        minus = np.sum(model.forward(x, training=True) * dout)
        x[i] = old
        numeric[i] = (plus - minus) / (2 * eps)
    assert relative_error(dx, numeric) < TOL
