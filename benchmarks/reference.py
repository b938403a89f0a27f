"""``python -m benchmarks.reference``: the floor and the ceiling of the image metrics, to read a run's FID by.

The callback compares a generator's images with a fixed set of real training images (``callbacks.image_metrics``:
its ``seed`` and ``num_samples``). This puts other images in the generator's place, with the same classifier
(the cached one a run uses) and the same functions:

- other training images, several draws that share no image with the callback's set: what a generator that
  reproduces the training images would score;
- the held-out test images, which neither the classifier nor a generator trained on: what a generator that
  generalises as well as the data itself would score, the floor to compare a good run with;
- uniform noise: the ceiling.

    python -m benchmarks.reference --data-dir data --out docs/results/reference_mnist.json
    python -m benchmarks.reference --data fashion_mnist --data-dir /usr/share/datasets/fashion-mnist \\
        --out docs/results/reference_fashion_mnist.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from benchmarks.environment import environment
from gan_lightning.callbacks.image_metrics import real_reference
from gan_lightning.data import FashionMNISTDataModule, MNISTDataModule, to_model_range
from gan_lightning.errors import ConfigError
from gan_lightning.metrics.classifier import load_or_train
from gan_lightning.metrics.image_quality import image_quality, uniform_noise_like

DATA = {"mnist": MNISTDataModule, "fashion_mnist": FashionMNISTDataModule}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=sorted(DATA), default="mnist", help="the data set (default: mnist)")
    parser.add_argument("--data-dir", default="data", help="as data.data_dir of a run (default: data)")
    parser.add_argument("--num-samples", type=int, default=10_000,
                        help="images per set, as callbacks.image_metrics.num_samples (default: 10000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="the callback's real set, as callbacks.image_metrics.seed (default: 0)")
    parser.add_argument("--draws", type=int, default=5, help="draws of other training images (default: 5)")
    parser.add_argument("--out", help="also write the figures and their environment to this JSON file")
    args = parser.parse_args(argv)
    if args.num_samples < 1 or args.draws < 1:
        parser.error("--num-samples and --draws must be at least 1")
    return args


def other_training_images(images: torch.Tensor, used: torch.Tensor, count: int, draw: int) -> torch.Tensor:
    """``count`` training images outside ``used`` (the callback's set), a different choice for each ``draw``."""
    rest = torch.ones(len(images), dtype=torch.bool)
    rest[used] = False
    rest = rest.nonzero().squeeze(1)
    pick = torch.randperm(len(rest), generator=torch.Generator().manual_seed(1_000 + draw))[:count]
    return images[rest[pick]]


def measure(args: argparse.Namespace) -> list[dict]:
    datamodule = DATA[args.data](data_dir=args.data_dir, download=False)
    train, test = datamodule.read_split("train"), datamodule.read_split("test")
    if train is None or test is None:
        raise ConfigError(f"--data-dir={args.data_dir}: no {datamodule.data_name} training and test files there")
    (images, labels), (test_images, _) = train, test
    used = real_reference(len(images), args.num_samples, args.seed)
    count = len(used)
    if len(images) - count < count or len(test_images) < count:
        raise ConfigError(f"--num-samples={args.num_samples}: needs twice as many training images and as many test "
                          f"images (the data has {len(images):,} and {len(test_images):,})")
    classifier, info = load_or_train(images, labels, *test)
    real = to_model_range(images[used])
    compared = [("other training images", [other_training_images(images, used, count, d) for d in range(args.draws)]),
                ("held-out test images", [test_images[:count]])]
    rows = []
    for name, sets in compared:
        runs = [image_quality(classifier, real, to_model_range(s)) for s in sets]
        rows.append({"compared": name, "runs": runs})
        fids = ", ".join(f"{run['fid']:.2f}" for run in runs)
        print(f"{name}: FID {fids}", flush=True)
    noise = image_quality(classifier, real, uniform_noise_like(real))
    rows.append({"compared": "uniform noise", "runs": [noise]})
    print(f"uniform noise: FID {noise['fid']:.1f}", flush=True)
    for row in rows:  # the names the training logs use, so that the docs show them as they show a run's
        row["runs"] = [{f"metrics/{key}": value for key, value in run.items()} for run in row["runs"]]
    return [{"classifier_held_out_accuracy": info["held_out_accuracy"], "num_samples": count}, *rows]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        setup, *rows = measure(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        record = {"environment": environment(["python", "-m", "benchmarks.reference",
                                              *(argv if argv is not None else sys.argv[1:])]),
                  "data": args.data, "threads_per_run": torch.get_num_threads(), **setup, "rows": rows}
        Path(args.out).write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
