"""The 2-D mode-collapse benchmark: the ring and grid data, the coverage metrics on samples of known coverage, and
the presets through train()."""
from __future__ import annotations

import json
import math
import statistics
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from gan_lightning.data import MixtureDataModule, MixtureStream, mixture_centers
from gan_lightning.metrics import mode_coverage
from gan_lightning.train import train
from tests.conftest import TINY, compose_cfg, event_tags, run_cli


def test_ring_and_grid_centres():
    ring = mixture_centers("ring", 8, 2.0)
    assert ring.shape == (8, 2) and torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))
    angles = torch.atan2(ring[:, 1], ring[:, 0]).remainder(2 * math.pi).sort().values
    assert torch.allclose(angles, torch.arange(8) * (math.pi / 4), atol=1e-6)
    grid = mixture_centers("grid", 25, 2.0)
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(c) for c in grid.tolist()}) == 25


def test_mixture_stream_draws_every_mode_with_its_std():
    centers = mixture_centers("ring", 8, 2.0)
    stream = MixtureStream(centers, 0.02, batch_size=8000, batches_per_epoch=1, seed=0)
    (batch,) = list(stream)
    distance, nearest = torch.cdist(batch, centers).min(dim=1)
    counts = torch.bincount(nearest, minlength=8)
    assert counts.min() > 850 and counts.max() < 1150  # uniform over the modes: 1000 each
    offsets = batch - centers[nearest]
    assert offsets.std().item() == pytest.approx(0.02, rel=0.05)
    # within 3 std in 2-D: P(chi2_2 <= 9) = 1 - exp(-4.5) = 0.989
    expected = {"modes_covered": 8, "high_quality_share": pytest.approx(0.989, abs=0.005)}
    assert mode_coverage(batch, centers, 0.02) == expected


def test_mode_coverage_of_samples_with_known_coverage():
    centers = mixture_centers("ring", 8, 2.0)
    gen = torch.Generator().manual_seed(0)
    # 5 modes get 300 samples each, all within 1 std; a 6th gets 20 (below a fifth of the fair share: 2,500 / 8 / 5
    # = 62.5); 480 samples land between the modes (at radius 1: far from every centre).
    on_modes = torch.cat([centers[k] + 0.02 * torch.randn(300, 2, generator=gen).clamp(-1, 1) / 1.5
                          for k in range(5)])
    few = centers[5] + torch.zeros(20, 2)
    far = torch.randn(480, 2, generator=gen)
    far = far / far.norm(dim=1, keepdim=True)
    samples = torch.cat([on_modes, few, far])
    result = mode_coverage(samples, centers, std=0.02)
    assert result["modes_covered"] == 5
    assert result["high_quality_share"] == pytest.approx(1520 / 2000)
    # 60 more on the 6th mode: 80 samples, above a fifth of the fair share of 2,060 samples (51.5)
    more = torch.cat([samples, centers[5] + torch.zeros(60, 2)])
    assert mode_coverage(more, centers, std=0.02)["modes_covered"] == 6


def test_mode_coverage_of_a_collapsed_generator():
    centers = mixture_centers("grid", 25, 2.0)
    collapsed = centers[12] + 0.01 * torch.randn(2500, 2)
    assert mode_coverage(collapsed, centers, std=0.05) == {"modes_covered": 1, "high_quality_share": 1.0}


@pytest.mark.parametrize(("overrides", "modes"), [(["experiment=ring_gan"], 8), (["experiment=ring_sn_gan"], 8),
                                                   (["data=grid"], 25)])
def test_mixture_runs_log_the_scatter_and_the_coverage_metrics(tmp_path, overrides, modes):
    metrics = train(compose_cfg(tmp_path, [*overrides, "data.batches_per_epoch=3", "data.batch_size=64"]))
    assert 0 <= metrics["metrics/modes_covered"] <= modes
    assert 0 <= metrics["metrics/high_quality_share"] <= 1
    tags = event_tags(tmp_path)
    assert "samples/scatter" in tags["images"]
    assert {"metrics/modes_covered", "metrics/high_quality_share"} <= set(tags["scalars"])
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_mixture_datamodule_hands_its_modes_to_the_callbacks():
    dm = MixtureDataModule(layout="grid", num_modes=25, scale=2.0, std=0.05, batch_size=10, batches_per_epoch=3)
    dm.d_steps = 2  # as the execution plan sets it from model.d_steps
    assert dm.centers.shape == (25, 2) and dm.std == 0.05
    batches = list(dm.train_dataloader())
    assert len(batches) == 3 and batches[0].shape == (20, 2)


# The full ring_sn_gan run (5,000 iterations), one process per seed, two at a time, one thread each.
RING_SN_GAN = [*TINY, "experiment=ring_sn_gan", "trainer.max_epochs=10", "trainer.log_every_n_steps=50",
               "callbacks.samples.every_n_iterations=0", "torch_threads=1"]
RING_SEEDS = (0, 1, 2, 3)


def _ring_sn_gan_metrics(tmp_path, seed: int) -> dict:
    run_dir = tmp_path / f"seed{seed}"
    result = run_cli([*RING_SN_GAN, f"seed={seed}", f"hydra.run.dir={run_dir}"], tmp_path, timeout=900, threads=1)
    assert result.returncode == 0, f"seed {seed}:\n{result.stderr[-3000:]}"
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]


@pytest.mark.slow
def test_ring_sn_gan_covers_the_ring(tmp_path):
    """The preset's promise, over seeds 0-3 of the full run (5,000 iterations; two processes at a time, one thread
    each: about 100 s a seed, 3.5 minutes in all on 2 cores): it covers the ring where ring_gan collapses.

    A GAN amplifies float rounding, which differs between x86 CPUs, so one seed's result is no promise: seed 0
    covers all 8 modes on an AMD EPYC but 6 (high-quality share 0.31) on an Intel Xeon (the issue). Measured,
    modes / high-quality share per seed:

    - AMD EPYC, seeds 0-5: 8/0.47, 8/0.44, 8/0.51, 8/0.65, 8/0.54, 8/0.49
    - Intel Xeon, seeds 0-3: 6/0.31, 8/0.61, 8/0.56, 8/0.61
    - ring_gan (the collapse), AMD EPYC, seeds 0-1: 0/0.02, 2/0.08 (README: seed 2, 0/0.001)

    Asserted over seeds 0-3: every seed covers at least 5 modes and the mean is at least 7 (EPYC 8, Xeon 7.5;
    ring_gan at most 2 on any seed), and the median high-quality share is above 0.3 (EPYC 0.49, Xeon 0.58,
    ring_gan at most 0.08). A mode counts as covered with 2.5 % of the samples near it, so 8 modes alone imply a
    share of 0.2; the bound asks for samples concentrated on the modes beyond that. The mode counts, not the share,
    catch a tight one-mode collapse (its share is near 1: README, "Mode collapse in 2-D")."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(RING_SEEDS, pool.map(lambda seed: _ring_sn_gan_metrics(tmp_path, seed), RING_SEEDS)))
    summary = {seed: (m["metrics/modes_covered"], m["metrics/high_quality_share"]) for seed, m in runs.items()}
    modes, quality = zip(*summary.values())
    assert min(modes) >= 5 and statistics.mean(modes) >= 7, summary
    assert statistics.median(quality) > 0.3, summary
