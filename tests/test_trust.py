"""The trust chapter's measurements (report/trust.py): the same maps on any number of threads, the
randomised networks, and the plain reading drawn from the intervals."""

import numpy as np
import pytest

from cnn.model import fold_batchnorm
from report import trust

from .conftest import train_default


@pytest.fixture(scope="module")
def trained(mnist):
    return train_default(mnist, 512, lr=1e-3)


def test_every_method_gives_the_same_maps_on_one_thread_or_two(trained, mnist, monkeypatch):
    monkeypatch.setattr(trust, "CHUNK", 4)  # several chunks, so that two threads share the work
    monkeypatch.setattr(trust, "IG_STEPS", 4)
    monkeypatch.setattr(trust, "SMOOTHGRAD_SAMPLES", 3)
    fast = fold_batchnorm(trained)
    x = mnist.x_test[:10]
    c = fast.predict(x, workers=1)
    for name, fn in trust.methods("conv3").items():
        one = trust.maps_of(fn, fast, x, c, seed=7, workers=1)
        two = trust.maps_of(fn, fast, x, c, seed=7, workers=2)
        assert one.shape == (10, 28, 28), name
        np.testing.assert_array_equal(one, two, err_msg=name)
        assert np.isfinite(one).all() and one.max() > 0, name
    # the noise comes from the seed: another seed, other SmoothGrad and random maps
    sg = trust.methods("conv3")["SmoothGrad"]
    assert not np.array_equal(trust.maps_of(sg, fast, x, c, 7, 2), trust.maps_of(sg, fast, x, c, 8, 2))


def test_randomized_replaces_the_top_layers_only_and_leaves_the_model_alone(trained, rng):
    before = {k: v.copy() for k, v in trained.state().items()}
    top = trust.randomized(trained, rng, top=1)
    every = trust.randomized(trained, rng)
    with_params = [l.name for l in trained.layers if l.params]
    for layer in trained.layers:
        for key, value in {**layer.params, **layer.buffers}.items():
            name = f"{layer.name}.{key}"
            np.testing.assert_array_equal(value, before[name])  # the trained model is untouched
            same_top = np.array_equal(top.state()[name], value)
            assert same_top == (layer.name != with_params[-1]), name
            if key == "weight":
                assert not np.array_equal(every.state()[name], value), name


def _row(method, **metrics):
    return {"method": method, **{k: {"mean": m, "ci": [m - d, m + d], "undefined": 0} for k, (m, d) in metrics.items()}}


def test_the_reading_follows_the_intervals():
    faithful = dict(insertion=(0.9, 0.01), morf=(0.3, 0.01), lerf=(0.9, 0.01),
                    model_top=(0.1, 0.05), model_all=(0.1, 0.05), data=(0.1, 0.05))
    rows = [_row("A", deletion=(0.20, 0.01), **faithful),
            _row("B", deletion=(0.21, 0.02), **faithful),  # overlaps A: tied
            _row("C", deletion=(0.50, 0.01), **dict(faithful, model_all=(0.8, 0.05))),
            _row("D", deletion=(0.62, 0.05), **faithful),  # overlaps random: not better than it
            _row("random", deletion=(0.65, 0.01), insertion=(0.6, 0.01), morf=(0.7, 0.01), lerf=(0.7, 0.01),
                 model_top=(1, 0), model_all=(1, 0), data=(1, 0))]
    reading = trust.readings(rows)
    assert reading["deletion"]["best"] == "A"
    assert reading["deletion"]["tied"] == ["B"]
    assert reading["deletion"]["not_better_than_random"] == ["D"]
    assert reading["model_all"]["unchanged"] == ["C"]
    assert reading["model_all"]["changed"] == ["A", "B", "D"]
    assert "random" not in reading["data"]["unchanged"]
    assert reading["sane"] == {"methods": ["A", "B", "D"], "best_deletion": "A"}
