"""Train the site's default network on all 60,000 MNIST training images; report test accuracy and time.

    python benchmarks/default_accuracy.py [--seeds 0 1 2] [--epochs N]

The figure the README quotes: accuracy on the 10,000 test images and the
seconds spent training (evaluation after each epoch excluded), per seed.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnn.data import load_dataset  # noqa: E402
from cnn.model import default_cnn  # noqa: E402
from cnn.train import TrainConfig, fit  # noqa: E402


def main():
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    for field in dataclasses.fields(TrainConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=field.type if field.type != "str" else str,
                            default=getattr(defaults, field.name))
    args = parser.parse_args()
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    data = load_dataset("mnist")
    print(config)
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        model = default_cnn(rng)
        history = fit(model, config.make_optimizer(), data.x_train, data.y_train, data.x_test, data.y_test,
                      epochs=config.epochs, batch_size=config.batch_size, rng=rng,
                      schedule=config.make_schedule())
        seconds = sum(e.seconds for e in history.epochs)
        print(f"seed {seed}: test accuracy {history.epochs[-1].val_accuracy:.2%} after {config.epochs} epochs, "
              f"{seconds:.1f} s of training", flush=True)


if __name__ == "__main__":
    main()
