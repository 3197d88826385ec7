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
