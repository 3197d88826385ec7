"""Datasets: read IDX files, check them, download Fashion-MNIST, take subsets.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a 4-byte
magic number -- two zero bytes, a type code, the number of dimensions -- then
one big-endian uint32 per dimension, then the values in row-major order.

MNIST is bundled in data/mnist/. Fashion-MNIST (Xiao, Rasul and Vollgraf 2017,
arXiv:1708.07747) has the same format; it is read from a folder the caller
names, or downloaded once from its public mirror into a cache folder. Every file
is checked against the SHA-256 of its uncompressed content, so a copy that was
gzipped again by someone else still passes and a damaged one never does.

Every problem with a data file raises UserError naming the file and the fix.
"""

import gzip
import hashlib
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .errors import UserError

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"

# IDX type code -> big-endian NumPy dtype
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and how to check its four files."""

    name: str
    title: str
    class_names: tuple
    sha256: dict  # file name -> SHA-256 of the uncompressed IDX content
    mirror: str = ""  # base URL to download from; "" means bundled only
    credit: str = ""
    noun: str = "image"  # what one image shows, for sentences: "digit", "item of clothing"
    nouns: str = "images"
    drawn: bool = False  # True when a reader could draw one by hand (a digit; not a coat)


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST",
    class_names=tuple(str(d) for d in range(10)),
    sha256={
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    credit="MNIST by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, CC BY-SA 3.0",
    noun="digit", nouns="digits", drawn=True,
)

# The content hashes were measured on the files of Debian's dataset-fashion-mnist
# (0.0~git20200523, from the upstream repository); their class counts are the
# published 6,000 per class (train) and 1,000 per class (test).
FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    sha256={
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    credit="Fashion-MNIST by Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research), MIT licence",
    noun="item of clothing", nouns="items of clothing",
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


@dataclass(frozen=True)
class Dataset:
    """Images as float32 in [0, 1], shape (N, 1, 28, 28); labels int64, shape (N,)."""

    spec: DatasetSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checksum: str  # SHA-256 over the content hashes of the four files
    x_val: np.ndarray = None  # held out of the training images by split(); None before
    y_val: np.ndarray = None

    @property
    def class_names(self):
        return self.spec.class_names

    def split(self, validation, train_size, test_size, rng):
        """Hold out `validation` training images, then take stratified subsets.

        The validation images are a stratified random sample of the training
        split, drawn first, so that they do not depend on train_size; the
        training images are then drawn from the rest (None keeps all of the
        rest), the test images from the test split (None keeps it whole).
        """
        if not 0 < validation < len(self.y_train):
            raise ValueError(f"validation must be between 1 and {len(self.y_train) - 1} images, "
                             f"got {validation}")
        val = stratified_indices(self.y_train, validation, rng)
        rest = np.setdiff1d(np.arange(len(self.y_train)), val)
        tr = rest[stratified_indices(self.y_train[rest], train_size, rng)]
        te = stratified_indices(self.y_test, test_size, rng)
        return replace(self, x_train=self.x_train[tr], y_train=self.y_train[tr],
                       x_val=self.x_train[val], y_val=self.y_train[val],
                       x_test=self.x_test[te], y_test=self.y_test[te])


# ---------------------------------------------------------------- IDX reading

def _read_bytes(path, fix):
    """The file's bytes, gunzipped if they start with the gzip magic."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found. {fix}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror}). {fix}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path}: corrupt or truncated gzip data ({e}). {fix}") from None
    return raw


def parse_idx(raw, path, fix=""):
    """Parse IDX bytes into an array, checking magic, dimensions and size."""
    if len(raw) < 4:
        raise UserError(f"{path}: truncated: {len(raw)} bytes, too short for an IDX header. {fix}")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UserError(f"{path}: not an IDX file (magic bytes {raw[:4].hex()}, "
                        f"expected 0000 then a type code and a dimension count). {fix}")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise UserError(f"{path}: truncated IDX header ({ndim} dimensions announced, "
                        f"{len(raw)} bytes in the file). {fix}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        raise UserError(f"{path}: truncated: the header announces shape {shape} "
                        f"({expected} bytes of data) but the file holds {got}. {fix}")
    if got > expected:
        raise UserError(f"{path}: {got - expected} unexpected bytes after the data of "
                        f"shape {shape}. {fix}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path, fix=""):
    """Read an IDX file (gzip or raw) into a native-endian array."""
    return parse_idx(_read_bytes(path, fix), path, fix)


# ---------------------------------------------------------------- loading

def _fix_for(spec, folder, bundled, downloaded):
    if bundled:
        return f"Restore the bundled copy with `git checkout -- {folder.name}` in {folder.parent}."
    if downloaded:
        return f"It was removed from the cache; run again to download it anew from {spec.mirror}."
    return f"Replace it with a good copy of {spec.title}, or read the dataset from another folder."


def _load_split(spec, folder, split, fix, remove_bad=False):
    """Images as float32 (N, 1, H, W) in [0, 1], labels int64, and the two content digests.

    Checks, in order: each file's IDX structure, that images and labels agree,
    then each file's SHA-256. With remove_bad (the download cache), the file
    that fails is deleted, so that the next run fetches it again.
    """
    paths = [folder / name for name in _SPLIT_FILES[split]]

    def fail(bad, message):
        if remove_bad:
            for p in bad:
                p.unlink(missing_ok=True)
        raise UserError(f"{message} {fix}")

    arrays, digests = [], []
    for p in paths:
        try:
            raw = _read_bytes(p, fix)
            arrays.append(parse_idx(raw, p, fix))
        except UserError:
            if remove_bad:
                p.unlink(missing_ok=True)
            raise
        digests.append(hashlib.sha256(raw).hexdigest())
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1:
        fail(paths, f"{paths[0]}: expected images (N, H, W) and labels (N,), "
                    f"got {images.shape} and {labels.shape}.")
    if len(images) != len(labels):
        fail(paths, f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels.")
    for p, digest in zip(paths, digests):
        if digest != spec.sha256[p.name]:
            fail([p], f"{p}: SHA-256 of its content is {digest}, expected {spec.sha256[p.name]} "
                      f"for {spec.title}.")
    x = images.astype(np.float32)
    x /= np.float32(255.0)  # in place: one float copy of the images at a time, not two
    x = x[:, None, :, :]  # (N, 1, H, W)
    return x, labels.astype(np.int64), digests


def load_dataset(name="mnist", data_dir=None, cache_dir=None, base_url=None, progress=None):
    """Load a dataset by name.

    MNIST comes from data_dir or else the bundled data/mnist/. Fashion-MNIST comes
    from data_dir if given, else from cache_dir, downloading what is missing from
    base_url (default: the public mirror).
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    spec = DATASETS[name]
    bundled = downloaded = False
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder; the data folder must be one "
                            f"holding the four {spec.title} IDX files.")
    elif not spec.mirror:
        folder, bundled = BUNDLED_DIR, True
    else:
        if cache_dir is None:
            raise UserError(f"{spec.title} is not bundled: pass a data_dir that holds "
                            "its files or a cache_dir to download them into.")
        folder, downloaded = Path(cache_dir) / spec.name, True
        download_missing(spec, folder, base_url or spec.mirror, progress)
    fix = _fix_for(spec, folder, bundled, downloaded)
    x_train, y_train, d1 = _load_split(spec, folder, "train", fix, remove_bad=downloaded)
    x_test, y_test, d2 = _load_split(spec, folder, "test", fix, remove_bad=downloaded)
    checksum = hashlib.sha256("\n".join(d1 + d2).encode()).hexdigest()
    return Dataset(spec, x_train, y_train, x_test, y_test, checksum)


# ---------------------------------------------------------------- download

def download_missing(spec, folder, base_url, progress=None):
    """Download each of the spec's files that is not yet in folder.

    A file is fetched to a temporary name, checked against its SHA-256, then renamed
    into place: an interrupted download leaves nothing, a bad one is removed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, sha in spec.sha256.items():
        dest = folder / name
        if dest.exists():
            continue
        url = base_url.rstrip("/") + "/" + name
        if progress:
            progress(f"downloading {url}")
        fetch_verified(url, dest, sha)


def fetch_verified(url, dest, sha256, timeout=60):
    """Fetch url into dest if its (uncompressed) content has the given SHA-256."""
    by_hand = f"put the file in {dest.parent} by hand, or read the dataset from a folder that holds it"
    with atomic_file(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
                promised = int(response.headers.get("Content-Length") or -1)
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                received = f.tell()
        except urllib.error.HTTPError as e:
            raise UserError(f"{url}: download failed (HTTP {e.code} {e.reason}). The mirror may "
                            f"have moved: {by_hand}.") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise UserError(f"{url}: download failed ({reason}). Check the network, or {by_hand}.") from None
        if promised >= 0 and received != promised:
            raise UserError(f"{url}: download failed (connection closed after {received} of "
                            f"{promised} bytes). Run again, or {by_hand}.")
        raw = _read_bytes(tmp, f"The download from {url} is damaged; run again.")
        digest = hashlib.sha256(raw).hexdigest()
        if digest != sha256:
            raise UserError(f"{url}: the downloaded file failed its SHA-256 check (content "
                            f"{digest}, expected {sha256}) and was removed; nothing was saved "
                            f"to {dest}. Run again later, or read the dataset from a folder with a verified copy.")


# ---------------------------------------------------------------- subsets

def stratified_indices(labels, n, rng):
    """Sorted indices of n samples with the class proportions of labels.

    Each class gets floor(n * share); the few left over go to the classes with
    the largest remainders. None, or n >= len(labels), keeps everything.
    """
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n - take.sum()]] += 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
             for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picks))
