"""The build's configuration: one frozen dataclass made from the command line."""

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnn.parallel import DEFAULT_WORKERS
from cnn.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache"
CONTENT_DIR = ROOT / "content"
TEMPLATES_DIR = ROOT / "templates"
# A file in every folder the build writes (the site, each cache entry): the build
# replaces or removes a folder only when it holds this file.
SITE_MARKER = ".built-by-build-py"
CACHE_MARKER = ".cache-entry-of-build-py"

# --quick: a small run for previews and tests; flags given explicitly still win.
QUICK = {"train_size": 5000, "validation": 1000, "test_size": 1000, "epochs": 2, "gallery": 12,
         "faithfulness": 100}

# The consumers of randomness, each with its own Generator spawned from the one seed,
# so that changing how much one of them draws never changes what another draws.
RNG_STREAMS = ("data", "training", "gradcheck", "gallery", "faithfulness", "randomization", "explorer", "lab")


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"
    data_dir: str = None  # None: bundled MNIST, or the download cache for Fashion-MNIST
    train_size: int = None  # None: every training image not held out for validation
    validation: int = 5000  # training images held out to measure the network during training
    test_size: int = None  # None: the whole test set
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    gallery: int = 30
    faithfulness: int = 1000  # test images for the trust chapter's metrics (a tenth of them for the sanity checks)
    out: str = "site"
    content: str = str(CONTENT_DIR)
    retrain: bool = False
    publish_failed: bool = False  # write the site even when training failed
    quick: bool = False
    jobs: int = DEFAULT_WORKERS
    cache_dir: str = str(CACHE_DIR)
    flags: tuple = ()  # the command line as given, for run.json

    def rngs(self):
        """{consumer: Generator}: independent streams from the one seed (see RNG_STREAMS)."""
        return dict(zip(RNG_STREAMS, np.random.default_rng(self.seed).spawn(len(RNG_STREAMS))))

    def training_record(self):
        """What determines the trained network, besides the data and the code."""
        return {"dataset": self.dataset, "train_size": self.train_size, "validation": self.validation,
                "test_size": self.test_size, "seed": self.seed, "train": dataclasses.asdict(self.train)}

    def public(self):
        """The configuration as used, for run.json (no machine-specific paths)."""
        d = self.training_record()
        d.update(gallery=self.gallery, faithfulness=self.faithfulness, quick=self.quick,
                 publish_failed=self.publish_failed)
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
