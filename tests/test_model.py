"""Sequential: checkpoints, summaries, and the passes explanations need."""

import json

import numpy as np
import pytest

from cnn.errors import UserError
from cnn.layers import AvgPool2D, BatchNorm1D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from cnn.model import Sequential, default_cnn, fold_batchnorm, pool_before_relu

from .conftest import train_default


@pytest.fixture
def trained_bits(mnist):
    """A default net after a few training steps, so that batch-norm statistics are not the defaults."""
    return train_default(mnist, 256, lr=1e-3)


def test_save_then_load_gives_identical_predictions(tmp_path, mnist, trained_bits):
    path = tmp_path / "model.npz"
    trained_bits.save(path)
    loaded = Sequential.load(path)
    x = mnist.x_test[:200]
    np.testing.assert_array_equal(loaded.predict_proba(x), trained_bits.predict_proba(x))
    assert loaded.summary() == trained_bits.summary()
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"


def test_checkpoint_holds_no_pickle_and_rebuilds_without_code(tmp_path, trained_bits):
    path = tmp_path / "model.npz"
    trained_bits.save(path)
    with np.load(path, allow_pickle=False) as npz:
        arch = json.loads(str(npz["__architecture__"]))
        assert all(npz[k].dtype != object for k in npz.files)
    assert [l["type"] for l in arch["layers"]][:3] == ["Conv2D", "BatchNorm2D", "ReLU"]
    assert "bn1.running_mean" in np.load(path).files


@pytest.mark.parametrize("damage", ["garbage", "truncated", "npy", "missing_key", "wrong_shape",
                                    "no_architecture", "bad_json", "unknown_layer"])
def test_a_checkpoint_that_does_not_fit_names_the_file(tmp_path, trained_bits, damage):
    good, path = tmp_path / "good.npz", tmp_path / "bad.npz"
    trained_bits.save(good)
    arrays = dict(np.load(good))
    if damage == "garbage":
        path.write_bytes(b"this is not a zip file at all" * 10)
    elif damage == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "npy":
        np.save(open(path, "wb"), np.zeros(3))
    else:
        if damage == "missing_key":
            del arrays["conv2.weight"]
        elif damage == "wrong_shape":
            arrays["dense1.weight"] = np.zeros((10, 10), np.float32)
        elif damage == "no_architecture":
            del arrays["__architecture__"]
        elif damage == "bad_json":
            arrays["__architecture__"] = np.array("{not json")
        elif damage == "unknown_layer":
            arch = json.loads(str(arrays["__architecture__"]))
            arch["layers"][0]["type"] = "Conv3D"
            arrays["__architecture__"] = np.array(json.dumps(arch))
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    with pytest.raises(UserError, match="bad.npz"):
        Sequential.load(path)


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="nothere.npz"):
        Sequential.load(tmp_path / "nothere.npz")


def test_summary_reads_like_keras(rng):
    text = default_cnn(rng).summary()
    lines = text.splitlines()
    assert lines[0].split() == ["Layer", "Type", "Output", "shape", "Params"]
    assert any(l.startswith("conv3") and "32x7x7" in l and "9,248" in l for l in lines)
    assert lines[-1] == f"Total params: {default_cnn(rng).num_params():,}"


def test_default_network_keeps_a_7x7_map_in_its_last_conv_layer(rng):
    model = default_cnn(rng)
    last_conv = [n for n, d, s, p in model.summary_rows() if n.startswith("conv")][-1]
    shape = dict((n, s) for n, d, s, p in model.summary_rows())[last_conv]
    assert shape[1:] == (7, 7)


def test_backward_all_gives_the_gradient_of_each_class_score(trained_bits):
    """Ten copies of one image, one-hot at each class: row c of the input gradient is d score_c / d x.

    The image is random noise: on a real digit the flat background makes exact ties in
    the max pools, where the score has no derivative for central differences to measure.
    """
    model = trained_bits
    x = np.repeat(np.random.default_rng(1).random((1, 1, 28, 28)), 10, axis=0)
    m64 = model.astype(np.float64)
    acts = m64.forward_all(x)
    grads = m64.backward_all(np.eye(10))
    assert len(acts) == len(grads) == len(model.layers) + 1
    assert all(a.shape == g.shape for a, g in zip(acts, grads))
    # central differences of the score of class 3 along a random direction of the input
    # (a small step: trained batch norm makes the ReLU kinks close together)
    c, direction = 3, np.random.default_rng(0).standard_normal(x.shape[1:])
    eps = 1e-7
    plus = m64.forward(x[:1] + eps * direction)[0, c]
    minus = m64.forward(x[:1] - eps * direction)[0, c]
    assert np.sum(grads[0][c] * direction) == pytest.approx((plus - minus) / (2 * eps), rel=1e-5)
    # the gradient at the logits is what was passed in
    np.testing.assert_array_equal(grads[-1], np.eye(10))


def test_evaluate_reports_loss_accuracy_and_confusion(mnist, trained_bits):
    ev = trained_bits.evaluate(mnist.x_test[:300], mnist.y_test[:300])
    pred = trained_bits.predict(mnist.x_test[:300])
    assert ev.accuracy == pytest.approx((pred == mnist.y_test[:300]).mean())
    assert ev.confusion.sum() == 300
    assert np.trace(ev.confusion) == (pred == mnist.y_test[:300]).sum()
    np.testing.assert_array_equal(ev.confusion.sum(axis=1), np.bincount(mnist.y_test[:300], minlength=10))
    assert 0 < ev.loss < 5


def test_dropout_model_round_trips_and_is_identity_in_evaluation(tmp_path, rng):
    model = Sequential([Dense(6, 8, rng=rng), BatchNorm1D(8), ReLU(), Dropout(0.5, rng=rng),
                        Dense(8, 3, rng=rng)], input_shape=(6,))
    x = rng.standard_normal((5, 6)).astype(np.float32)
    model.forward(x, training=True)
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert not np.array_equal(model.forward(x, training=True), model.forward(x))


def test_the_seed_layers_are_saved_loaded_and_summarised(tmp_path, rng, mnist):
    from cnn.layers import Dropout2D, Sigmoid, Tanh

    model = Sequential([Conv2D(1, 4, 3, padding=1, rng=rng), Tanh(), Dropout2D(0.25, rng=rng), MaxPool2D(2),
                        Flatten(), Dense(4 * 14 * 14, 10, rng=rng), Sigmoid()])
    summary = model.summary()
    for name in ("Tanh", "Dropout2D(p=0.25)", "Sigmoid"):
        assert name in summary
    model.save(tmp_path / "m.npz")
    again = Sequential.load(tmp_path / "m.npz")
    assert [l.describe() for l in again.layers] == [l.describe() for l in model.layers]
    np.testing.assert_array_equal(again.predict_proba(mnist.x_test[:5]), model.predict_proba(mnist.x_test[:5]))


def test_folding_batch_norm_keeps_the_predictions_and_leaves_the_model_alone(mnist, trained_bits, rng):
    before = {k: v.copy() for k, v in trained_bits.state().items()}
    folded = fold_batchnorm(trained_bits)
    assert [l.kind for l in folded.layers] == [l.kind for l in trained_bits.layers if l.kind != "bn"]
    x = mnist.x_test[:300]
    np.testing.assert_allclose(folded.predict_proba(x), trained_bits.predict_proba(x), atol=1e-5)
    for key, value in trained_bits.state().items():
        np.testing.assert_array_equal(value, before[key])

    dense = Sequential([Dense(6, 8, rng=rng), BatchNorm1D(8), ReLU(), Dense(8, 3, rng=rng)], input_shape=(6,))
    for _ in range(3):  # running statistics away from their defaults
        dense.forward(rng.standard_normal((16, 6)).astype(np.float32) * 3 + 1, training=True)
    v = rng.standard_normal((20, 6)).astype(np.float32)
    np.testing.assert_allclose(fold_batchnorm(dense).forward(v), dense.forward(v), atol=1e-5)


def test_pooling_before_the_relu_gives_the_same_scores_bit_for_bit(mnist, trained_bits, rng):
    x = mnist.x_test[:300]
    for model in (trained_bits, fold_batchnorm(trained_bits)):
        kinds = [l.kind for l in model.layers]
        swapped = pool_before_relu(model)
        moved = list(kinds)
        for i in [i for i in range(len(kinds) - 1) if kinds[i : i + 2] == ["relu", "maxpool"]]:
            moved[i], moved[i + 1] = "maxpool", "relu"
        assert [l.kind for l in swapped.layers] == moved != kinds
        assert [l.kind for l in model.layers] == kinds  # the model keeps its order
        np.testing.assert_array_equal(swapped.predict_proba(x), model.predict_proba(x))
    # an average does not commute with a ReLU: such a pool stays where it is
    avg = Sequential([Conv2D(1, 4, 3, padding=1, rng=rng), ReLU(), AvgPool2D(2), Flatten(), Dense(4 * 14 * 14, 3, rng=rng)])
    assert [l.kind for l in pool_before_relu(avg).layers] == [l.kind for l in avg.layers]


def test_an_explanation_backward_pass_skips_the_weight_gradients_and_nothing_else(trained_bits, mnist):
    x = mnist.x_test[:16]
    onehot = np.eye(10, dtype=np.float32)[trained_bits.predict(x)]
    trained_bits.forward_all(x)
    full = trained_bits.backward_all(onehot)
    assert trained_bits.layer("conv1").grads["weight"] is not None
    trained_bits.forward_all(x)
    lean = trained_bits.backward_all(onehot, need_params=False)
    trained_bits.clear_cache()
    for a, b in zip(full, lean):
        np.testing.assert_array_equal(a, b)
    assert all(not l.grads for l in trained_bits.layers if l.kind in ("conv", "dense"))
