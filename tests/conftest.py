import numpy as np
import pytest

from cnn.data import load_dataset


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
