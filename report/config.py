"""The build's configuration: one frozen dataclass made from the command line."""

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnn.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache"

# --quick: a small run for previews and tests; flags given explicitly still win.
QUICK = {"train_size": 5000, "test_size": 1000, "epochs": 2, "gallery": 12, "faithfulness": 100}


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"
    data_dir: str = None  # None: bundled MNIST, or the download cache for Fashion-MNIST
    train_size: int = None  # None: the whole training set
    test_size: int = None  # None: the whole test set
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    gallery: int = 30
    faithfulness: int = 1000  # test images for the deletion/insertion metrics (a fifth of them for randomisation)
    out: str = "site"
    retrain: bool = False
    quick: bool = False
    jobs: int = 2
    cache_dir: str = str(CACHE_DIR)

    def rngs(self):
        """Independent Generators for the data subset, the training, and the explanations, from the one seed."""
        return np.random.default_rng(self.seed).spawn(3)

    def training_record(self):
        """What determines the trained network, besides the data and the code."""
        return {"dataset": self.dataset, "train_size": self.train_size, "test_size": self.test_size,
                "seed": self.seed, "train": dataclasses.asdict(self.train)}

    def public(self):
        """The configuration as recorded in run.json (no machine-specific paths)."""
        d = self.training_record()
        d.update(gallery=self.gallery, faithfulness=self.faithfulness, quick=self.quick)
        return d


def source_hash(folder, names=None):
    """SHA-256 over the Python sources of a project folder (or the named files in it).

    Part of every cache key, so that a change to the code that made a cached
    result makes it stale."""
    h = hashlib.sha256()
    paths = sorted((ROOT / folder).glob("*.py")) if names is None else [ROOT / folder / n for n in names]
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def digest(*parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
