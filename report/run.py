"""A training run, cached on disk so that editing the tutorial does not mean training again.

A Run is the trained model, its History, and the weights of every conv layer
after every epoch (and before the first). It is stored under
.cache/runs/<key>/ where the key covers the configuration that decides the
training, the checksum of the data and the source of cnn/. An entry is written
into a temporary folder and renamed into place, so it is whole or absent; one
that fails to load is reported, deleted and trained again, never trusted.
"""

import json
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn.errors import UserError
from cnn.model import Sequential, default_cnn
from cnn.train import History, fit

from .config import digest, source_hash

FORMAT = 1
# The code a trained run depends on; editing the explanation code (gradcam.py,
# attribution.py, gradcheck.py) redraws the figures but does not retrain.
TRAINING_SOURCES = ("data.py", "errors.py", "functional.py", "init.py", "layers.py", "losses.py", "model.py",
                    "optim.py", "parallel.py", "train.py")


@dataclass
class Run:
    model: Sequential
    history: History
    snapshots: dict  # epoch (0 = before training) -> {layer name: conv weights}
    key: str
    reused: bool


def run_key(config, data_checksum):
    return digest("run", FORMAT, config.training_record(), data_checksum,
                  source_hash("cnn", names=TRAINING_SOURCES))[:20]


def train(config, data, rng, log):
    """Train the default network on data with the configuration's recipe."""
    t = config.train
    model = default_cnn(rng, num_classes=len(data.class_names))
    conv_names = [l.name for l in model.layers if l.kind == "conv"]
    snapshots = {0: {n: model.layer(n).params["weight"].copy() for n in conv_names}}

    def snapshot(model, record):
        snapshots[record.epoch] = {n: model.layer(n).params["weight"].copy() for n in conv_names}

    log(f"training: {len(data.x_train):,} images, {t.epochs} epochs, batch {t.batch_size}, "
        f"{t.optimizer} lr {t.lr:g}")
    history = fit(model, t.make_optimizer(), data.x_train, data.y_train, data.x_test, data.y_test,
                  epochs=t.epochs, batch_size=t.batch_size, rng=rng, schedule=t.make_schedule(),
                  callbacks=[snapshot], progress=True, workers=config.jobs)
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
            shutil.rmtree(entry, ignore_errors=True)
    model, history, snapshots = train(config, data, rng, log)
    _store(entry, key, model, history, snapshots)
    return Run(model, history, snapshots, key, reused=False)


def _store(entry, key, model, history, snapshots):
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.parent / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        model.save(tmp / "model.npz")
        (tmp / "history.json").write_text(json.dumps(history.to_dict()))
        arrays = {f"{epoch}/{name}": w for epoch, ws in snapshots.items() for name, w in ws.items()}
        with open(tmp / "snapshots.npz", "wb") as f:
            np.savez(f, **arrays)
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "key": key}))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
                epoch, name = k.split("/")
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
