"""The README's example of the network library runs as written, on a slice of MNIST to be quick."""

import dataclasses
import re
from pathlib import Path

import numpy as np

import cnn.data

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readmes_example_of_the_library_runs_as_written(mnist, monkeypatch, tmp_path, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1
    # 6,000 training images (5,000 of them held out by the example) and 500 test images
    small = dataclasses.replace(mnist, x_train=mnist.x_train[:6000], y_train=mnist.y_train[:6000],
                                x_test=mnist.x_test[:500], y_test=mnist.y_test[:500])
    monkeypatch.setattr(cnn.data, "load_dataset", lambda name="mnist", **options: small)
    monkeypatch.chdir(tmp_path)  # it saves model.npz where it runs
    names = {}
    exec(compile(blocks[0], str(README), "exec"), names)
    printed = capsys.readouterr().out.splitlines()
    assert 0.8 < float(printed[0]) <= 1  # the test accuracy after 4 epochs of 1,000 images
    assert any("conv1" in line for line in printed[1:])  # the summary
    x = small.x_test[:20]
    assert np.array_equal(names["same"].predict_proba(x), names["model"].predict_proba(x))
