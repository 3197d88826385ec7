"""Training: mini-batch gradient descent with a record of how it went.

``fit`` shuffles the training set with the caller's Generator every epoch,
runs forward, loss, backward and an optimiser step per mini-batch, evaluates
on the validation set after each epoch, and returns a History. Callbacks get
the model and the epoch's record after every epoch (the site snapshots the
kernels that way). Nothing is chosen on the validation set: no early stopping,
no best-epoch checkpoint.
"""

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from .errors import UserError
from .losses import softmax_cross_entropy
from .optim import OPTIMIZERS, SCHEDULES
from .parallel import DataParallel, DEFAULT_WORKERS


# A good starting learning rate for each optimiser on this network.
DEFAULT_LR = {"adam": 2e-3, "sgd": 0.05}


@dataclass(frozen=True)
class TrainConfig:
    """How the site's network is trained. The defaults reach 99 % on MNIST's test set."""

    epochs: int = 4
    batch_size: int = 64
    optimizer: str = "adam"  # adam | sgd (with Nesterov momentum)
    lr: float = DEFAULT_LR["adam"]
    schedule: str = "cosine"  # cosine | step | constant, applied per epoch
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only

    def make_optimizer(self):
        if self.optimizer == "sgd":
            return OPTIMIZERS["sgd"](lr=self.lr, momentum=self.momentum, nesterov=True,
                                     weight_decay=self.weight_decay)
        return OPTIMIZERS[self.optimizer](lr=self.lr, weight_decay=self.weight_decay)

    def make_schedule(self):
        return SCHEDULES[self.schedule](self.lr, self.epochs)


class TrainingDiverged(UserError):
    """The loss stopped being a finite number."""


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    lr: float
    train_loss: float  # mean over the epoch's batches, in training mode
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float  # training time of the epoch, evaluation excluded
    images_per_second: float
    confusion: list  # (K, K) on the validation set: row = true class, column = predicted


@dataclass
class History:
    epochs: list = field(default_factory=list)  # EpochRecord per epoch
    steps: list = field(default_factory=list)  # (step, epoch progress, mean loss of the last log_every batches)
    log_every: int = 50
    initial: dict = field(default_factory=dict)  # val_loss and val_accuracy before the first step

    def to_dict(self):
        return {"epochs": [asdict(e) for e in self.epochs], "initial": self.initial,
                "steps": [list(s) for s in self.steps], "log_every": self.log_every}

    @classmethod
    def from_dict(cls, d):
        return cls([EpochRecord(**e) for e in d["epochs"]], [tuple(s) for s in d["steps"]],
                   d["log_every"], d["initial"])


def fit(model, optimizer, x_train, y_train, x_val, y_val, *, epochs, batch_size, rng,
        schedule=None, callbacks=(), on_batch=None, log_every=50, workers=DEFAULT_WORKERS):
    """Train model in place and return its History.

    schedule(epoch) -> learning rate for that epoch (0-based); without one the
    optimiser's lr stays as it is. After every epoch each callback gets
    (model, EpochRecord); after every batch on_batch gets (epoch, images done
    in the epoch, images in the epoch, batch loss) -- the command line draws
    its progress bar from these. workers threads run the fixed shards of each
    batch (cnn/parallel.py): they change the speed, not the result.
    """
    history = History(log_every=log_every)
    start = model.evaluate(x_val, y_val, workers=workers)
    history.initial = {"val_loss": start.loss, "val_accuracy": start.accuracy}
    with DataParallel(model, workers) as net:
        for epoch in range(1, epochs + 1):
            if schedule is not None:
                optimizer.lr = schedule(epoch - 1)
            start = time.perf_counter()
            train_loss, train_accuracy = _train_epoch(net, model, optimizer, x_train, y_train, batch_size,
                                                      rng, history, epoch, on_batch)
            seconds = time.perf_counter() - start
            val = model.evaluate(x_val, y_val, workers=workers)
            record = EpochRecord(epoch, float(optimizer.lr), train_loss, train_accuracy, val.loss,
                                 val.accuracy, seconds, len(x_train) / seconds, val.confusion.tolist())
            history.epochs.append(record)
            for callback in callbacks:
                callback(model, record)
    model.clear_cache()
    return history


def _train_epoch(net, model, optimizer, x, y, batch_size, rng, history, epoch, on_batch):
    """One pass over (x, y) in a fresh random order; returns (mean loss, accuracy) in training mode."""
    n = len(x)
    batches = math.ceil(n / batch_size)
    epoch_start = len(history.epochs)
    order = rng.permutation(n)
    loss_sum, correct, window = 0.0, 0, []
    # Overflow is reported once, as TrainingDiverged, not as a stream of NumPy warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        for b in range(batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            logits = net.forward(xb, training=True)
            loss, dlogits = softmax_cross_entropy(logits, yb)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"training diverged: the loss became {loss} in epoch {epoch}, batch {b + 1} of "
                    f"{batches}, at learning rate {optimizer.lr:g}.")
            net.backward(dlogits, need_input_grad=False)
            optimizer.step(model)
            loss_sum += loss * len(idx)
            correct += int((logits.argmax(axis=1) == yb).sum())
            window.append(loss)
            if len(window) == history.log_every:
                step = epoch_start * batches + b + 1
                history.steps.append((step, round(epoch_start + (b + 1) / batches, 4), float(np.mean(window))))
                window.clear()
            if on_batch is not None:
                on_batch(epoch, min((b + 1) * batch_size, n), n, loss)
    return loss_sum / n, correct / n
