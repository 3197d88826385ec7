"""Training on real MNIST, the optimisers' update rules, schedules and failure modes."""

import numpy as np
import pytest

from cnn.errors import UserError
from cnn.layers import Dense
from cnn.model import Sequential, default_cnn
from cnn.optim import SGD, Adam, CosineLR, StepLR
from cnn.train import History, TrainingDiverged, fit


def test_default_net_learns_mnist_in_one_epoch_of_2000_images(mnist):
    rng = np.random.default_rng(0)
    small = mnist.split(1000, 2000, 10, rng)
    model = default_cnn(rng)
    snapshots = []
    history = fit(model, Adam(lr=2e-3), small.x_train, small.y_train, small.x_val, small.y_val,
                  epochs=1, batch_size=32, rng=rng, log_every=10,
                  callbacks=[lambda m, rec: snapshots.append((rec.epoch, m.layer("conv1").params["weight"].copy()))])
    record = history.epochs[0]
    assert record.val_accuracy > 0.90
    assert model.evaluate(small.x_val, small.y_val).accuracy == record.val_accuracy
    assert np.array(record.confusion).sum() == 1000
    assert record.images_per_second > 0 and record.seconds > 0
    assert len(history.steps) == 63 // 10  # 63 batches of 32, a point every 10
    assert history.steps[0][0] == 10
    assert [e for e, _ in snapshots] == [1]
    np.testing.assert_array_equal(snapshots[0][1], model.layer("conv1").params["weight"])


def test_training_is_reproducible_from_the_seed(mnist):
    def run():
        rng = np.random.default_rng(7)
        model = default_cnn(rng)
        fit(model, SGD(lr=0.05, momentum=0.9), mnist.x_train[:512], mnist.y_train[:512],
            mnist.x_test[:100], mnist.y_test[:100], epochs=1, batch_size=64, rng=rng)
        return model.state()

    a, b = run(), run()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_history_round_trips_through_json(mnist):
    import json
    rng = np.random.default_rng(0)
    model = default_cnn(rng)
    h = fit(model, Adam(), mnist.x_train[:128], mnist.y_train[:128], mnist.x_test[:64], mnist.y_test[:64],
            epochs=2, batch_size=64, rng=rng, log_every=1)
    again = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again == h
    assert [e.epoch for e in h.epochs] == [1, 2]


def test_a_diverging_loss_stops_with_the_facts(mnist):
    rng = np.random.default_rng(0)
    model = default_cnn(rng)
    with pytest.raises(TrainingDiverged, match=r"loss became .* epoch 1, batch \d+ of 8, at learning rate 1e\+30") as err:
        fit(model, SGD(lr=1e30), mnist.x_train[:512], mnist.y_train[:512], mnist.x_test[:10],
            mnist.y_test[:10], epochs=1, batch_size=64, rng=rng)
    assert isinstance(err.value, UserError)
    assert "--" not in str(err.value)  # cnn/ states the fact; the command line adds the advice


def test_fit_reports_each_batch_and_prints_nothing(mnist, capsys):
    rng = np.random.default_rng(0)
    seen = []
    history = fit(default_cnn(rng), Adam(), mnist.x_train[:130], mnist.y_train[:130], mnist.x_test[:32],
                  mnist.y_test[:32], epochs=2, batch_size=64, rng=rng,
                  on_batch=lambda epoch, done, total, loss: seen.append((epoch, done, total)))
    assert seen == [(1, 64, 130), (1, 128, 130), (1, 130, 130), (2, 64, 130), (2, 128, 130), (2, 130, 130)]
    assert capsys.readouterr().err == ""
    assert set(history.initial) == {"val_loss", "val_accuracy"}
    assert history.initial["val_loss"] > history.epochs[-1].val_loss


def test_the_command_line_progress_is_one_plain_line_per_epoch_when_not_a_terminal(mnist, capsys):
    from report.run import Progress

    rng = np.random.default_rng(0)
    with Progress(epochs=2) as progress:
        fit(default_cnn(rng), Adam(), mnist.x_train[:128], mnist.y_train[:128], mnist.x_test[:32],
            mnist.y_test[:32], epochs=2, batch_size=64, rng=rng, on_batch=progress.batch,
            callbacks=[progress.epoch])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2") and "img/s" in lines[0]


def _one_param_model(w0, g):
    """A model with a single 1x1 dense weight whose gradient is set to g."""
    model = Sequential([Dense(1, 1, rng=np.random.default_rng(0))], input_shape=(1,))
    layer = model.layers[0]
    layer.params = {"weight": np.array([[w0]]), "bias": np.array([0.0])}
    layer.grads = {"weight": np.array([[g]]), "bias": np.array([0.0])}
    return model, layer


def test_sgd_momentum_and_nesterov_follow_their_update_rules():
    model, layer = _one_param_model(1.0, 0.5)
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step(model)  # v = 0.5, w = 1 - 0.05
    opt.step(model)  # v = 0.9*0.5 + 0.5 = 0.95, w = 0.95 - 0.095
    assert layer.params["weight"][0, 0] == pytest.approx(0.855)
    model, layer = _one_param_model(1.0, 0.5)
    opt = SGD(lr=0.1, momentum=0.9, nesterov=True)
    opt.step(model)  # v = 0.5, w = 1 - 0.1 * (0.5 + 0.45)
    assert layer.params["weight"][0, 0] == pytest.approx(0.905)
    model, layer = _one_param_model(2.0, 0.0)
    SGD(lr=0.1, weight_decay=0.5).step(model)  # g = 0 + 0.5 * 2
    assert layer.params["weight"][0, 0] == pytest.approx(1.9)


def test_adam_first_step_moves_by_lr_thanks_to_bias_correction():
    model, layer = _one_param_model(1.0, 0.003)
    Adam(lr=0.01).step(model)
    assert layer.params["weight"][0, 0] == pytest.approx(0.99, abs=1e-7)


def test_adam_state_is_keyed_per_layer_and_parameter(rng):
    model = Sequential([Dense(2, 3, rng=rng), Dense(3, 1, rng=rng)], input_shape=(2,))
    model.forward(rng.standard_normal((4, 2)))
    model.backward(np.ones((4, 1)))
    opt = Adam()
    opt.step(model)
    assert set(opt.m) == {("dense1", "weight"), ("dense1", "bias"), ("dense2", "weight"), ("dense2", "bias")}


def test_schedules():
    cos = CosineLR(0.1, epochs=10)
    assert cos(0) == pytest.approx(0.1)
    assert cos(5) == pytest.approx(0.05)
    assert 0 < cos(9) < 0.01
    step = StepLR(0.1, step_size=3, gamma=0.5)
    assert [step(e) for e in range(7)] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])
