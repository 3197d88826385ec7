"""Build the site: train the network (or reuse the cached run), explain it, draw it, render the tutorial.

    python build.py            # the full build into site/
    python build.py --quick    # a small, fast preview

Every flag is listed by --help. A problem with the input (a flag, a data file,
a chapter, the output folder) prints "error: ..." and exits with status 2;
Ctrl-C prints one line and exits with 130. The existing site is left untouched
by any build that does not finish.
"""

import argparse
import ctypes
import signal
import sys

from cnn.errors import UserError
from cnn.train import DEFAULT_LR, TrainConfig
from report.config import QUICK, Config


def whole_number(least):
    """An argparse type: a whole number no smaller than `least`."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} must be at least {least}" if least else
                                             f"{value} must be 0 or more")
        return value
    return parse


positive_int, natural_int = whole_number(1), whole_number(0)


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def parse_args(argv=None):
    t, c = TrainConfig(), Config()
    p = argparse.ArgumentParser(
        prog="build.py", description="Train a CNN in NumPy and write the tutorial site about it.",
        epilog=f"Without flags: {c.validation:,} of MNIST's 60,000 training images held out for validation, "
               f"the rest trained on for {t.epochs} epochs; about two minutes on two cores.")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, help=f"passes over the training images (default {t.epochs})")
    g.add_argument("--batch-size", type=positive_int, help=f"images per gradient step (default {t.batch_size})")
    g.add_argument("--lr", type=positive_float, help="initial learning rate (default "
                   + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")")
    g.add_argument("--optimizer", choices=["adam", "sgd"], help=f"adam, or sgd with Nesterov momentum "
                   f"(default {t.optimizer})")
    g.add_argument("--seed", type=natural_int, default=c.seed,
                   help=f"the one seed of every random choice, 0 or more (default {c.seed})")
    g.add_argument("--publish-failed", action="store_true",
                   help="write the site even if the network did not learn (near-chance validation "
                        "accuracy, or a loss no lower than at the start; the site then says so), or if "
                        "the pages' JavaScript disagreed with NumPy in headless Chromium (run.json says so)")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default=c.dataset,
                   help="mnist (bundled) or fashion-mnist (downloaded once, or read from --data-dir)")
    g.add_argument("--data-dir", help="a folder holding the dataset's four IDX files (gzip or raw)")
    g.add_argument("--validation", type=positive_int,
                   help=f"training images held out, stratified, to measure the network during training "
                        f"(default {c.validation:,}); the test images are used once, at the end")
    g.add_argument("--train-size", type=positive_int,
                   help="train on a stratified random subset of this many of the other training images "
                        "(default: all of them)")
    g.add_argument("--test-size", type=positive_int,
                   help="evaluate on a stratified random subset of this many test images (default: all)")
    g = p.add_argument_group("explanations")
    g.add_argument("--gallery", type=positive_int,
                   help=f"test images in the Grad-CAM gallery, each with its own page (default {c.gallery})")
    g.add_argument("--faithfulness", type=positive_int,
                   help=f"test images for the deletion and insertion metrics (default {c.faithfulness:,}; "
                        "a fifth of them for the randomisation check)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=c.out,
                   help=f"the folder to write the site into (default {c.out}); it must be new, empty, or "
                        "a site that build.py wrote")
    g.add_argument("--content", default=c.content, metavar="DIR",
                   help="the folder of chapters, one Markdown file each (default content/)")
    g.add_argument("--cache-dir", default=c.cache_dir, metavar="DIR",
                   help="where trained runs and drawn figures are kept between builds (default .cache/)")
    g.add_argument("--retrain", action="store_true", help="train again even if a cached run fits")
    g.add_argument("--quick", action="store_true",
                   help=f"a small build for previews and tests: {QUICK['train_size']:,} training, "
                        f"{QUICK['validation']:,} validation and {QUICK['test_size']:,} test images, "
                        f"{QUICK['epochs']} epochs, a gallery of {QUICK['gallery']}, "
                        f"{QUICK['faithfulness']} images for the faithfulness metrics (other flags still apply)")
    g.add_argument("--jobs", type=positive_int, default=c.jobs,
                   help=f"threads and processes to use (default {c.jobs}); changes the speed, never the site")
    return p.parse_args(argv)


def make_config(args, argv=()):
    quick = QUICK if args.quick else {}
    pick = lambda name, default: getattr(args, name) if getattr(args, name) is not None else quick.get(name, default)
    t = TrainConfig()
    optimizer = args.optimizer or t.optimizer
    train = TrainConfig(epochs=pick("epochs", t.epochs), batch_size=pick("batch_size", t.batch_size),
                        optimizer=optimizer, lr=pick("lr", DEFAULT_LR[optimizer]))
    return Config(dataset=args.dataset, data_dir=args.data_dir, train_size=pick("train_size", None),
                  validation=pick("validation", Config.validation), test_size=pick("test_size", None),
                  seed=args.seed, train=train, out=args.out, content=args.content,
                  gallery=pick("gallery", Config.gallery), faithfulness=pick("faithfulness", Config.faithfulness),
                  retrain=args.retrain, publish_failed=args.publish_failed, quick=args.quick, jobs=args.jobs,
                  cache_dir=args.cache_dir, flags=tuple(argv))


def return_freed_memory_to_the_system(mmap_mb=4, trim_mb=256, arenas=1):
    """Ask glibc's malloc to map every block of mmap_mb or more on its own, so that freeing it gives it back,
    and to keep every thread's small blocks in `arenas` heaps.

    By default glibc raises that threshold as large arrays are freed, after which freed NumPy arrays stay
    in each thread's heap: a build's resident memory then only grows (2.0 GB instead of about 1). A fixed
    threshold keeps the big arrays of evaluation and explanation out of the heaps; the small arrays of a
    training batch stay below it, and a high trim threshold keeps the heaps from shrinking and growing at
    every batch (measured here: about 5 % of training speed). By default glibc also gives each new thread
    a heap of its own (up to 8 per core): the worker threads of training and explanation left about 240 MB
    in theirs that malloc_trim could not give back (measured here: the builder held 398 MB after drawing
    the figures, 163 MB with one heap, at the same speed). Nothing changes where libc is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX: before any thread has made a heap of its own
        libc.mallopt(-3, mmap_mb << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, trim_mb << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    config = make_config(args, argv)
    signal.signal(signal.SIGTERM, _interrupted)  # a kill is handled like Ctrl-C: nothing half-written stays
    return_freed_memory_to_the_system()
    try:
        from report.site import build  # after parsing, so that --help is instant

        build(config)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the message
        print("interrupted: nothing was published; the previous site is unchanged.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
