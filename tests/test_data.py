"""Reading, checking and downloading the data, from real files and real bad copies of them."""

import functools
import gzip
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from cnn.data import (BUNDLED_DIR, FASHION_MNIST, load_dataset, read_idx, stratified_indices)
from cnn.errors import UserError

FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def needs_fashion():
    if not FASHION_DEBIAN.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{FASHION_DEBIAN} missing: .ci/run installs dataset-fashion-mnist")
        pytest.skip("apt-get install dataset-fashion-mnist for the Fashion-MNIST tests")


def test_bundled_mnist_has_the_published_shapes_and_class_counts(mnist):
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_train.dtype == np.float32
    assert mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.y_train.dtype == np.int64
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    assert list(np.bincount(mnist.y_test)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert list(np.bincount(mnist.y_train)) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_raw_and_gzip_idx_read_the_same(tmp_path):
    gz = BUNDLED_DIR / "t10k-labels-idx1-ubyte.gz"
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(gz.read_bytes()))
    np.testing.assert_array_equal(read_idx(gz), read_idx(raw))


@pytest.fixture
def mnist_copy(tmp_path):
    """A writable copy of the bundled files, uncompressed, to damage."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in BUNDLED_DIR.glob("*.gz"):
        (folder / f.name).write_bytes(gzip.decompress(f.read_bytes()))
    return folder


def test_a_good_copy_in_a_data_dir_loads(mnist_copy, mnist):
    d = load_dataset("mnist", data_dir=mnist_copy)
    assert d.checksum == mnist.checksum


def test_missing_file_is_named(mnist_copy):
    (mnist_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz: file not found"):
        load_dataset("mnist", data_dir=mnist_copy)


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(UserError, match="nowhere: no such folder"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_wrong_magic_is_named(mnist_copy):
    f = mnist_copy / "train-labels-idx1-ubyte.gz"
    f.write_bytes(b"\x12\x34" + f.read_bytes()[2:])
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz: not an IDX file"):
        load_dataset("mnist", data_dir=mnist_copy)


def test_truncated_raw_file_is_named(mnist_copy):
    f = mnist_copy / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:100_000])
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte.gz: truncated.*holds 99984"):
        load_dataset("mnist", data_dir=mnist_copy)


def test_truncated_gzip_file_is_named(tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(BUNDLED_DIR, folder)
    f = folder / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:50_000])
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_dataset("mnist", data_dir=folder)


def test_image_and_label_counts_that_disagree_are_named(mnist_copy):
    f = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    raw = f.read_bytes()
    f.write_bytes(raw[:4] + (9999).to_bytes(4, "big") + raw[8:-1])  # a valid file of 9,999 labels
    with pytest.raises(UserError, match="holds 10000 images but .*t10k-labels-idx1-ubyte.gz holds 9999"):
        load_dataset("mnist", data_dir=mnist_copy)


def test_checksum_mismatch_is_named(mnist_copy):
    f = mnist_copy / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(f.read_bytes())
    raw[5000] ^= 0xFF  # one pixel changed: structurally a perfect IDX file
    f.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.gz: SHA-256 of its content"):
        load_dataset("mnist", data_dir=mnist_copy)


def test_unknown_dataset_is_a_user_error():
    with pytest.raises(UserError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_stratified_subset_keeps_class_shares_and_is_seeded(mnist):
    a = stratified_indices(mnist.y_train, 2000, np.random.default_rng(5))
    b = stratified_indices(mnist.y_train, 2000, np.random.default_rng(5))
    c = stratified_indices(mnist.y_train, 2000, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(a) == 2000 and len(np.unique(a)) == 2000
    expected = np.bincount(mnist.y_train) / 60000 * 2000
    assert np.abs(np.bincount(mnist.y_train[a]) - expected).max() < 1
    assert len(stratified_indices(mnist.y_train, None, np.random.default_rng(0))) == 60000


# ------------------------------------------------------------------ download

class _Server:
    """An http.server on 127.0.0.1 serving a folder, in a thread."""

    def __init__(self, folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    needs_fashion()
    folder = tmp_path / "mirror"
    shutil.copytree(FASHION_DEBIAN, folder)
    server = _Server(folder)
    yield folder, server.url
    server.close()


def test_fashion_mnist_downloads_verifies_and_caches(tmp_path, served):
    folder, url = served
    cache = tmp_path / "cache"
    d = load_dataset("fashion-mnist", cache_dir=cache, base_url=url)
    assert d.x_train.shape == (60000, 1, 28, 28)
    assert list(np.bincount(d.y_test)) == [1000] * 10
    assert d.class_names[9] == "Ankle boot"
    assert sorted(p.name for p in (cache / "fashion-mnist").iterdir()) == sorted(FASHION_MNIST.sha256)
    # a second load reads the cache: the mirror can be gone
    shutil.rmtree(folder)
    assert load_dataset("fashion-mnist", cache_dir=cache, base_url=url).checksum == d.checksum


def test_a_download_that_fails_its_checksum_is_removed_and_reported(tmp_path, served):
    folder, url = served
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(bad.read_bytes())[:-1] + b"\x00"))
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz: the downloaded file failed its SHA-256"):
        load_dataset("fashion-mnist", cache_dir=cache, base_url=url)
    left = sorted(p.name for p in (cache / "fashion-mnist").iterdir())
    assert "t10k-labels-idx1-ubyte.gz" not in left
    assert not [n for n in left if ".tmp-" in n]


def test_a_missing_file_on_the_mirror_is_reported(tmp_path, served):
    folder, url = served
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz: download failed .HTTP 404"):
        load_dataset("fashion-mnist", cache_dir=tmp_path / "cache", base_url=url)


def test_no_network_is_a_user_error(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="download failed.*Check the network"):
        load_dataset("fashion-mnist", cache_dir=tmp_path / "cache", base_url=f"http://127.0.0.1:{port}/")
    assert not list((tmp_path / "cache" / "fashion-mnist").iterdir())


def test_a_download_cut_short_leaves_nothing(tmp_path):
    """The server promises more bytes than it sends and closes the connection."""

    class Truncating(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"\x00" * 1000)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Truncating)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(UserError, match="download failed"):
            load_dataset("fashion-mnist", cache_dir=tmp_path / "cache",
                         base_url=f"http://127.0.0.1:{httpd.server_address[1]}/")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not list((tmp_path / "cache" / "fashion-mnist").iterdir())


def test_a_corrupt_file_in_the_cache_is_removed_and_reported(tmp_path, served):
    folder, url = served
    cache = tmp_path / "cache"
    load_dataset("fashion-mnist", cache_dir=cache, base_url=url)
    victim = cache / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz.*removed from the cache"):
        load_dataset("fashion-mnist", cache_dir=cache, base_url=url)
    assert not victim.exists()
    assert load_dataset("fashion-mnist", cache_dir=cache, base_url=url).x_train.shape[0] == 60000


def test_fashion_mnist_from_a_data_dir(served):
    folder, _ = served
    assert load_dataset("fashion-mnist", data_dir=folder).x_test.shape == (10000, 1, 28, 28)


def test_the_validation_split_is_stratified_seeded_and_apart_from_the_training_images(mnist):
    a = mnist.split(5000, 20000, 1000, np.random.default_rng(7))
    b = mnist.split(5000, 20000, 1000, np.random.default_rng(7))
    np.testing.assert_array_equal(a.y_val, b.y_val)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert len(a.x_val) == 5000 and len(a.x_train) == 20000 and len(a.x_test) == 1000
    share = np.bincount(a.y_val, minlength=10) / 5000
    np.testing.assert_allclose(share, np.bincount(mnist.y_train, minlength=10) / 60000, atol=2e-4)
    val = {v.tobytes() for v in a.x_val}
    assert not any(x.tobytes() in val for x in a.x_train[:2000])  # no validation image is trained on
    whole = mnist.split(5000, None, None, np.random.default_rng(7))
    assert len(whole.x_train) == 55000 and len(whole.x_test) == 10000
    np.testing.assert_array_equal(whole.y_val, a.y_val)  # the held-out images do not depend on --train-size
