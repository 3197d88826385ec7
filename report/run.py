"""A training run, cached on disk so that editing the tutorial does not mean training again.

A Run is the trained model, its History, and the weights of every conv layer
after every epoch (and before the first). It is stored under
.cache/runs/<key>/ where the key covers the configuration that decides the
training, the checksum of the data and the source of cnn/. An entry is written
into a temporary folder and renamed into place, so it is whole or absent; one
that fails to load is reported, deleted and trained again, never trusted.
"""

import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cnn.atomic import atomic_folder
from cnn.errors import UserError
from cnn.model import Sequential, default_cnn
from cnn.train import History, fit

from .config import CACHE_MARKER, digest, source_hash

FORMAT = 3  # 2: a validation split held out of the training images; History.initial; 3: whole snapshots
# The code a trained run depends on; editing the explanation code (gradcam.py,
# attribution.py, gradcheck.py) redraws the figures but does not retrain.
TRAINING_SOURCES = ("atomic.py", "data.py", "errors.py", "functional.py", "init.py", "layers.py", "losses.py", "model.py",
                    "optim.py", "parallel.py", "train.py")


@dataclass
class Run:
    model: Sequential
    history: History
    snapshots: dict  # epoch (0 = before training) -> the model's state() then: every parameter and buffer
    key: str
    reused: bool

    def model_at(self, epoch):
        """The network as it was after `epoch` epochs (0: at initialisation)."""
        model = Sequential.from_architecture(self.model.architecture(), np.random.default_rng(0))
        model.set_state(self.snapshots[epoch], source=f"the snapshot of epoch {epoch}")
        return model


def run_key(config, data_checksum):
    return digest("run", FORMAT, config.training_record(), data_checksum,
                  source_hash("cnn", names=TRAINING_SOURCES))[:20]


class Progress:
    """The command line's view of training: a tqdm bar on a terminal, and one line per epoch.

    Pass progress.batch as fit's on_batch and progress.epoch as one of its callbacks.
    """

    def __init__(self, epochs):
        self.epochs, self.bar, self._done = epochs, None, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def batch(self, epoch, done, total, loss):
        if self.bar is None:
            self.bar = tqdm(total=total, desc=f"epoch {epoch}/{self.epochs}", unit="img", leave=False,
                            file=sys.stderr, disable=not sys.stderr.isatty())
            self._done = 0  # images of this epoch already shown
        self.bar.update(done - self._done)
        self._done = done
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if done == total:
            self._close()

    def epoch(self, model, r):
        tqdm.write(f"epoch {r.epoch}/{self.epochs}  lr {r.lr:.2g}  train loss {r.train_loss:.4f} "
                   f"acc {r.train_accuracy:.2%}  val loss {r.val_loss:.4f} acc {r.val_accuracy:.2%}  "
                   f"{r.seconds:.1f} s  {r.images_per_second:,.0f} img/s", file=sys.stderr)


def conv_layer_names():
    """The names of the conv layers of the network train() builds, known without any data."""
    return [l.name for l in default_cnn(np.random.default_rng(0)).layers if l.kind == "conv"]


def train(config, data, rng, log):
    """Train the default network on data with the configuration's recipe, measured on the validation split."""
    t = config.train
    model = default_cnn(rng, num_classes=len(data.class_names))
    snapshots = {0: {k: v.copy() for k, v in model.state().items()}}

    def snapshot(model, record):
        snapshots[record.epoch] = {k: v.copy() for k, v in model.state().items()}

    log(f"training: {len(data.x_train):,} images ({len(data.x_val):,} more held out for validation), "
        f"{t.epochs} epochs, batch {t.batch_size}, {t.optimizer} lr {t.lr:g}")
    with Progress(t.epochs) as progress:
        history = fit(model, t.make_optimizer(), data.x_train, data.y_train, data.x_val, data.y_val,
                      epochs=t.epochs, batch_size=t.batch_size, rng=rng, schedule=t.make_schedule(),
                      callbacks=[snapshot, progress.epoch], on_batch=progress.batch, workers=config.jobs)
    return model, history, snapshots


def obtain_run(config, data, rng, log=print):
    """The cached Run for this configuration and data, or a freshly trained (and cached) one."""
    key = run_key(config, data.checksum)
    entry = Path(config.cache_dir) / "runs" / key
    if entry.exists() and not config.retrain:
        try:
            model, history, snapshots = _load(entry, key)
            log(f"training: reusing the cached run {entry} (--retrain to train again)")
            return Run(model, history, snapshots, key, reused=True)
        except UserError as e:
            log(f"warning: the cached run is unusable and will be trained again: {e}")
    model, history, snapshots = train(config, data, rng, log)
    _store(entry, key, model, history, snapshots)
    return Run(model, history, snapshots, key, reused=False)


def _store(entry, key, model, history, snapshots):
    with atomic_folder(entry, CACHE_MARKER) as tmp:
        model.save(tmp / "model.npz")
        (tmp / "history.json").write_text(json.dumps(history.to_dict()))
        arrays = {f"{epoch}/{name}": w for epoch, ws in snapshots.items() for name, w in ws.items()}
        with open(tmp / "snapshots.npz", "wb") as f:
            np.savez(f, **arrays)
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "key": key}))


def _load(entry, key):
    """(model, history, snapshots) of a cache entry; UserError naming what is wrong with it."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta != {"format": FORMAT, "key": key}:
            raise UserError(f"{entry / 'meta.json'}: written for another run ({meta})")
        model = Sequential.load(entry / "model.npz")
        history = History.from_dict(json.loads((entry / "history.json").read_text()))
        with np.load(entry / "snapshots.npz", allow_pickle=False) as npz:
            snapshots = {}
            for k in npz.files:
                epoch, name = k.split("/")  # "3/conv1.weight"
                snapshots.setdefault(int(epoch), {})[name] = npz[k]
        if sorted(snapshots) != list(range(len(history.epochs) + 1)):
            raise UserError(f"{entry / 'snapshots.npz'}: snapshots of epochs {sorted(snapshots)} "
                            f"for a history of {len(history.epochs)} epochs")
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{entry}: {type(e).__name__}: {e}") from None
    return model, history, snapshots


def log_stderr(message):
    print(message, file=sys.stderr, flush=True)
