"""python -m benchmarks.reference: real images in a generator's place, scored against the callback's own real set."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from benchmarks.reference import main, other_training_images
from gan_lightning.callbacks.image_metrics import real_reference
from gan_lightning.data.idx import write_idx
from gan_lightning.data.mnist import SPLITS


def write_bars(raw_dir: Path, split: str, n: int, seed: int) -> None:
    """Images a classifier tells apart at once: class c is a bright bar on rows 2c..2c+2, over faint noise."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.randint(0, 40, (n, 28, 28), generator=gen)
    for i, c in enumerate(labels.tolist()):
        images[i, 2 * c + 4 : 2 * c + 7, 4:24] = 255
    for name, tensor in zip(SPLITS[split], (images.to(torch.uint8), labels.to(torch.uint8))):
        write_idx(raw_dir / name, tensor)


def test_other_real_images_score_near_zero_and_noise_far_from_them(tmp_path, capsys):
    raw = tmp_path / "data" / "MNIST" / "raw"
    write_bars(raw, "train", 400, seed=0)
    write_bars(raw, "test", 120, seed=1)
    out = tmp_path / "reference.json"
    assert main(["--data-dir", str(tmp_path / "data"), "--num-samples", "100", "--draws", "2", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    rows = {row["compared"]: row["runs"] for row in record["rows"]}
    assert list(rows) == ["other training images", "held-out test images", "uniform noise"]
    assert [len(runs) for runs in rows.values()] == [2, 1, 1]
    real_fids = [run["metrics/fid"] for runs in list(rows.values())[:2] for run in runs]
    noise = rows["uniform noise"][0]
    assert max(real_fids) < 0.1 * noise["metrics/fid"], (real_fids, noise["metrics/fid"])
    assert all(run["metrics/modes"] == 10 for run in rows["other training images"])
    assert record["num_samples"] == 100 and record["classifier_held_out_accuracy"] > 0.9
    assert record["environment"]["command"].startswith("python -m benchmarks.reference --data-dir")
    assert "uniform noise: FID" in capsys.readouterr().out


def test_other_draws_never_reuse_the_callbacks_images():
    images = torch.arange(1000).view(1000, 1, 1, 1)
    used = real_reference(1000, 300, seed=0)
    draws = [other_training_images(images, used, 300, draw).flatten() for draw in range(2)]
    for drawn in draws:
        assert len(set(drawn.tolist())) == 300 and not set(drawn.tolist()) & set(used.tolist())
    assert not torch.equal(draws[0], draws[1])


def test_too_few_images_are_refused_in_one_line(tmp_path, capsys):
    raw = tmp_path / "data" / "MNIST" / "raw"
    write_bars(raw, "train", 150, seed=0)
    write_bars(raw, "test", 50, seed=1)
    assert main(["--data-dir", str(tmp_path / "data"), "--num-samples", "100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --num-samples=100") and err.count("\n") == 1


def test_missing_files_are_refused_in_one_line(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --data-dir={tmp_path}")
