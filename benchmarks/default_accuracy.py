"""Train the site's default network as the default build does; report validation and test accuracy.

    python benchmarks/default_accuracy.py [--seeds 0 1 2] [--validation N] [--epochs N]

Like the default build: a stratified validation split (5,000 by default) is
held out of MNIST's 60,000 training images, the network trains on the rest and
is measured on the validation split after every epoch; the 10,000 test images
are evaluated once, at the end. The figures the README quotes: validation and
test accuracy and the seconds spent training (evaluation excluded), per seed.
"""

import argparse
import dataclasses
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnn.data import load_dataset  # noqa: E402
from cnn.model import default_cnn  # noqa: E402
from cnn.train import TrainConfig, fit  # noqa: E402
from report.config import Config  # noqa: E402


def main():
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--validation", type=int, default=Config.validation)
    for field in dataclasses.fields(TrainConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=field.type if field.type != "str" else str,
                            default=getattr(defaults, field.name))
    args = parser.parse_args()
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    mnist = load_dataset("mnist")
    print(config)
    for seed in args.seeds:
        rngs = Config(seed=seed, validation=args.validation).rngs()  # the build's own streams
        data = mnist.split(args.validation, None, None, rngs["data"])
        model = default_cnn(rngs["training"])
        history = fit(model, config.make_optimizer(), data.x_train, data.y_train, data.x_val, data.y_val,
                      epochs=config.epochs, batch_size=config.batch_size, rng=rngs["training"],
                      schedule=config.make_schedule())
        seconds = sum(e.seconds for e in history.epochs)
        test = model.evaluate(data.x_test, data.y_test)
        print(f"seed {seed}: validation accuracy {history.epochs[-1].val_accuracy:.2%}, test accuracy "
              f"{test.accuracy:.2%} after {config.epochs} epochs on {len(data.x_train):,} images, "
              f"{seconds:.1f} s of training", flush=True)


if __name__ == "__main__":
    main()
