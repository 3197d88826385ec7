"""Data parallelism computes what one thread computes, deterministically, and fails cleanly."""

import numpy as np
import pytest

from cnn.layers import Conv2D
from cnn.losses import softmax_cross_entropy
from cnn.model import default_cnn
from cnn.parallel import DataParallel


def _one_step(model, x, y, runner):
    logits = runner.forward(x, training=True)
    loss, d = softmax_cross_entropy(logits, y)
    dx = runner.backward(d)
    grads = {f"{l.name}.{k}": g.copy() for l in model.layers for k, g in l.grads.items()}
    return logits, dx, grads, {k: v.copy() for k, v in model.state().items()}


@pytest.mark.parametrize("workers", [2, 3])
def test_sharded_batch_gives_the_single_thread_result(mnist, workers):
    """Including batch norm, whose statistics are summed over the shards. In float64, so that
    only a wrong computation -- not the order of additions -- could tell the two apart."""
    x, y = mnist.x_train[:50].astype(np.float64), mnist.y_train[:50]
    single = default_cnn(np.random.default_rng(0)).astype(np.float64)
    sharded = default_cnn(np.random.default_rng(0)).astype(np.float64)
    ref = _one_step(single, x, y, single)
    with DataParallel(sharded, workers) as net:
        got = _one_step(sharded, x, y, net)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-8, atol=1e-14)
    for key in ref[2]:
        np.testing.assert_allclose(got[2][key], ref[2][key], rtol=1e-8, atol=1e-12, err_msg=key)
    for key in ref[3]:  # running statistics updated once per batch, not once per shard
        np.testing.assert_allclose(got[3][key], ref[3][key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_sharded_runs_are_bit_identical(mnist):
    x, y = mnist.x_train[:64], mnist.y_train[:64]
    results = []
    for _ in range(2):
        model = default_cnn(np.random.default_rng(3))
        with DataParallel(model, 2) as net:
            results.append(_one_step(model, x, y, net))
    for a, b in zip(results[0][2].values(), results[1][2].values()):
        np.testing.assert_array_equal(a, b)


def test_an_error_in_one_worker_is_raised_not_deadlocked(mnist):
    model = default_cnn(np.random.default_rng(0))
    model.layers[0] = Conv2D(3, 16, 3, padding=1, rng=np.random.default_rng(0))  # wrong input channels
    with DataParallel(model, 2) as net:
        with pytest.raises(ValueError, match="channels"):
            net.forward(mnist.x_train[:8], training=True)


def _train_steps(workers, batch, images=7):
    """Two SGD steps with batch norm and dropout on `images` images, batch by batch."""
    from cnn.layers import Dropout
    from cnn.optim import SGD
    from cnn.train import fit
    from cnn.data import load_dataset

    mnist = load_dataset("mnist")
    rng = np.random.default_rng(5)
    model = default_cnn(rng)
    model.layers.insert(-1, Dropout(0.3, rng=rng))
    fit(model, SGD(lr=0.05, momentum=0.9), mnist.x_train[:images], mnist.y_train[:images],
        mnist.x_test[:3], mnist.y_test[:3], epochs=1, batch_size=batch, rng=rng,
        workers=workers)
    return model.state()


@pytest.mark.parametrize("batch", [1, 2, 3])
@pytest.mark.parametrize("workers", [2, 3])
def test_training_gives_the_same_bits_with_any_number_of_workers(batch, workers):
    """Batches of 1, 2 and 3 images (a last batch of one included): the weights do not depend on threads."""
    one = _train_steps(1, batch)
    many = _train_steps(workers, batch)
    for key in one:
        np.testing.assert_array_equal(many[key], one[key], err_msg=key)


@pytest.mark.parametrize("n", [1, 2, 3, 129, 501])  # 129: one more than a whole inference batch
@pytest.mark.parametrize("workers", [2, 3])
def test_inference_of_any_count_gives_the_one_worker_result(mnist, n, workers):
    model = default_cnn(np.random.default_rng(0))
    x, y = mnist.x_test[:n], mnist.y_test[:n]
    one = model.predict_proba(x, workers=1)
    assert one.shape == (n, 10)
    np.testing.assert_array_equal(model.predict_proba(x, workers=workers), one)
    assert model.evaluate(x, y, workers=workers).loss == model.evaluate(x, y, workers=1).loss


def test_a_batch_of_one_never_reaches_a_layer_as_an_empty_shard():
    from cnn.parallel import shard_bounds

    assert all(hi > lo for n in range(1, 9) for lo, hi in shard_bounds(n))
    assert [hi - lo for lo, hi in shard_bounds(1)] == [1]
    assert sum(hi - lo for lo, hi in shard_bounds(65)) == 65
