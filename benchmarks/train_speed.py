"""Training and inference speed of the NumPy CNN, and peak memory of a full epoch.

    python benchmarks/train_speed.py [--repeats 5] [--batches 40] [--no-memory]

Times three networks at batch 64 in float32 on real MNIST images: net A (small),
net B (conv-heavy) and the site's default network. Each figure is the median of
several timed runs, since the machine is shared. When PyTorch happens to be
importable, the same networks are timed in PyTorch too and the NumPy/PyTorch
ratio is printed; PyTorch is never a requirement of the project.

Peak resident memory is measured in a child process that trains the default
network for one full epoch on all 60,000 training images.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnn.data import load_dataset  # noqa: E402
from cnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU  # noqa: E402
from cnn.losses import softmax_cross_entropy  # noqa: E402
from cnn.model import Sequential, default_cnn  # noqa: E402
from cnn.optim import SGD  # noqa: E402
from cnn.parallel import DataParallel, DEFAULT_WORKERS  # noqa: E402

BATCH = 64


def net_a(rng):
    return Sequential([Conv2D(1, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
                       Conv2D(8, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
                       Flatten(), Dense(784, 128, rng=rng), ReLU(), Dense(128, 10, rng=rng)])


def net_b(rng):
    return Sequential([Conv2D(1, 32, 3, padding=1, rng=rng), ReLU(),
                       Conv2D(32, 32, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
                       Conv2D(32, 64, 3, padding=1, rng=rng), ReLU(),
                       Conv2D(64, 64, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
                       Flatten(), Dense(3136, 128, rng=rng), ReLU(), Dense(128, 10, rng=rng)])


NETS = {"net A": net_a, "net B": net_b, "default": default_cnn}


def time_numpy(make, x, y, batches, repeats, workers):
    """(train img/s, inference img/s): medians over repeats of `batches` batches each."""
    model = make(np.random.default_rng(0))
    opt = SGD(lr=0.01, momentum=0.9)
    with DataParallel(model, workers) as net:

        def train_round():
            start = time.perf_counter()
            for b in range(batches):
                xb, yb = x[b * BATCH : (b + 1) * BATCH], y[b * BATCH : (b + 1) * BATCH]
                loss, d = softmax_cross_entropy(net.forward(xb, training=True), yb)
                net.backward(d, need_input_grad=False)
                opt.step(model)
            return batches * BATCH / (time.perf_counter() - start)

        def infer_round():
            start = time.perf_counter()
            for b in range(batches):
                net.forward(x[b * BATCH : (b + 1) * BATCH])
            return batches * BATCH / (time.perf_counter() - start)

        train_round(), infer_round()  # warm-up
        return (statistics.median(train_round() for _ in range(repeats)),
                statistics.median(infer_round() for _ in range(repeats)))


def torch_twin(model):
    """The same architecture in PyTorch (None if a layer has no twin here)."""
    import torch.nn as nn

    twins = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            twins.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                   layer.stride, layer.padding))
        elif kind == "Dense":
            twins.append(nn.Linear(layer.in_features, layer.out_features))
        elif kind == "BatchNorm2D":
            twins.append(nn.BatchNorm2d(layer.num_features))
        elif kind == "MaxPool2D":
            twins.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif kind in ("ReLU", "Flatten"):
            twins.append(getattr(nn, kind)())
        else:
            return None
    return nn.Sequential(*twins)


def time_torch(make, x, y, batches, repeats):
    import torch

    torch.manual_seed(0)
    net = torch_twin(make(np.random.default_rng(0)))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def train_round():
        net.train()
        start = time.perf_counter()
        for b in range(batches):
            opt.zero_grad()
            loss_fn(net(xt[b * BATCH : (b + 1) * BATCH]), yt[b * BATCH : (b + 1) * BATCH]).backward()
            opt.step()
        return batches * BATCH / (time.perf_counter() - start)

    def infer_round():
        net.eval()
        start = time.perf_counter()
        with torch.no_grad():
            for b in range(batches):
                net(xt[b * BATCH : (b + 1) * BATCH])
        return batches * BATCH / (time.perf_counter() - start)

    train_round(), infer_round()
    return (statistics.median(train_round() for _ in range(repeats)),
            statistics.median(infer_round() for _ in range(repeats)))


def peak_memory_of_full_epoch():
    """Peak RSS (MiB) of a child process that loads MNIST and trains the default net for one epoch."""
    code = (
        "import resource, numpy as np\n"
        "from cnn.data import load_dataset\nfrom cnn.model import default_cnn\n"
        "from cnn.optim import Adam\nfrom cnn.train import fit\n"
        "d = load_dataset('mnist'); rng = np.random.default_rng(0)\n"
        "m = default_cnn(rng)\n"
        "fit(m, Adam(lr=1e-3), d.x_train, d.y_train, d.x_test, d.y_test, epochs=1, batch_size=64,"
        " rng=rng)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--batches", type=int, default=40, help="batches of 64 per timed run")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help="threads running the fixed shards of each batch (cnn/parallel.py)")
    parser.add_argument("--no-memory", action="store_true", help="skip the full-epoch memory run")
    args = parser.parse_args()

    data = load_dataset("mnist")
    n = args.batches * BATCH
    x, y = np.ascontiguousarray(data.x_train[:n]), data.y_train[:n]
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None

    print(f"NumPy {np.__version__}; batch {BATCH}, float32, {args.workers} worker thread(s), "
          f"median of {args.repeats} runs of "
          f"{args.batches} batches" + (f"; PyTorch {torch_version} (CPU)" if torch_version else
                                       "; PyTorch not installed, NumPy only"))
    header = f"{'network':10s} {'params':>9s} {'train img/s':>12s} {'infer img/s':>12s}"
    if torch_version:
        header += f" {'torch train':>12s} {'torch infer':>12s} {'ratio train':>12s} {'ratio infer':>12s}"
    print(header)
    for name, make in NETS.items():
        params = make(np.random.default_rng(0)).num_params()
        train, infer = time_numpy(make, x, y, args.batches, args.repeats, args.workers)
        line = f"{name:10s} {params:9,d} {train:12,.0f} {infer:12,.0f}"
        if torch_version:
            t_train, t_infer = time_torch(make, x, y, args.batches, args.repeats)
            line += f" {t_train:12,.0f} {t_infer:12,.0f} {train / t_train:12.2f} {infer / t_infer:12.2f}"
        print(line, flush=True)
    if not args.no_memory:
        print(f"peak resident memory, one full 60,000-image epoch of the default net: "
              f"{peak_memory_of_full_epoch():,.0f} MiB")


if __name__ == "__main__":
    main()
