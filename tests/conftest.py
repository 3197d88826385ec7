import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnn.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent


def build(*args, timeout=600):
    """Run build.py as a reader would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def train_default(mnist, images, lr):
    """The default network after one epoch on the first `images` training images."""
    from cnn.model import default_cnn
    from cnn.optim import Adam
    from cnn.train import fit

    rng = np.random.default_rng(0)
    model = default_cnn(rng)
    fit(model, Adam(lr=lr), mnist.x_train[:images], mnist.y_train[:images], mnist.x_test[:64], mnist.y_test[:64],
        epochs=1, batch_size=64, rng=rng)
    return model


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def mnist():
    """The bundled real MNIST, loaded once per test session."""
    return load_dataset("mnist")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (skips without it, fails without it under CI)."""
    from .browser import browser_or_skip

    driver, tmp = browser_or_skip()
    yield driver
    driver.quit()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def quick_site(tmp_path_factory, cache_dir):
    """One --quick build for the whole session."""
    out = tmp_path_factory.mktemp("built") / "site"
    result = build("--quick", "--out", out, "--cache-dir", cache_dir)
    assert result.returncode == 0, result.stderr
    return out
