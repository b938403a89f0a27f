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
    result = mode_coverage(batch, centers, 0.02)
    assert result["modes_covered"] == 8
    assert result["high_quality_share"] == pytest.approx(0.989, abs=0.005)
    assert result["reverse_kl"] == pytest.approx(0.0, abs=0.005)  # 1,000 each, give or take sampling


def _at_distance(center: torch.Tensor, radius: float, n: int) -> torch.Tensor:
    """``n`` points at exactly ``radius`` from ``center``, spread around it."""
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return (center.double() + radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def test_mode_coverage_counts_a_mode_from_one_high_quality_sample_at_the_3_std_boundary():
    """VEEGAN's rule as PacGAN's code applies it: high quality within 3 std of the nearest centre; a mode is
    covered by one high-quality sample; samples just outside 3 std count for neither."""
    centers, std = mixture_centers("ring", 8, 2.0), 0.02
    inside = torch.cat([_at_distance(centers[k], 2.99 * std, 100) for k in range(4)])  # modes 0-3: 100 each
    one = _at_distance(centers[4], 2.99 * std, 1)  # mode 4: a single sample
    outside = torch.cat([_at_distance(centers[k], 3.01 * std, 50) for k in (5, 6)])  # modes 5, 6: none inside
    result = mode_coverage(torch.cat([inside, one, outside]), centers, std)
    assert result["modes_covered"] == 5
    assert result["high_quality_share"] == pytest.approx(401 / 501)
    # every sample's nearest mode, in or out: q = (100, 100, 100, 100, 1, 50, 50, 0) / 501
    q = torch.tensor([100, 100, 100, 100, 1, 50, 50], dtype=torch.float64) / 501
    assert result["reverse_kl"] == pytest.approx(float((q * (q * 8).log()).sum()), rel=1e-6)
    # a stricter rule asks for more samples per mode: only the four modes with 100 remain
    assert mode_coverage(torch.cat([inside, one, outside]), centers, std, min_samples=2)["modes_covered"] == 4


def test_mode_coverage_of_samples_between_the_modes():
    centers = mixture_centers("ring", 8, 2.0)
    gen = torch.Generator().manual_seed(0)
    on_modes = torch.cat([centers[k] + 0.02 * torch.randn(300, 2, generator=gen).clamp(-1, 1) / 1.5
                          for k in range(5)])
    far = torch.randn(500, 2, generator=gen)
    far = far / far.norm(dim=1, keepdim=True)  # on the circle of radius 1: 1 from the ring, 50 std from any mode
    result = mode_coverage(torch.cat([on_modes, far]), centers, std=0.02)
    assert result["modes_covered"] == 5
    assert result["high_quality_share"] == pytest.approx(1500 / 2000)


def test_mode_coverage_of_a_collapsed_generator():
    centers = mixture_centers("grid", 25, 2.0)
    collapsed = centers[12] + 0.01 * torch.randn(2500, 2)
    result = mode_coverage(collapsed, centers, std=0.05)
    assert result["modes_covered"] == 1 and result["high_quality_share"] == 1.0
    assert result["reverse_kl"] == pytest.approx(math.log(25))


@pytest.mark.parametrize(("overrides", "modes"), [(["experiment=ring_gan"], 8), (["experiment=ring_sn_gan"], 8),
                                                   (["data=grid"], 25), (["experiment=grid_gan"], 25),
                                                   (["experiment=ring_pacgan"], 8)])
def test_mixture_runs_log_the_scatter_and_the_coverage_metrics(tmp_path, overrides, modes):
    metrics = train(compose_cfg(tmp_path, [*overrides, "data.batches_per_epoch=3", "data.batch_size=64"]))
    assert 0 <= metrics["metrics/modes_covered"] <= modes
    assert 0 <= metrics["metrics/high_quality_share"] <= 1
    tags = event_tags(tmp_path)
    assert "samples/scatter" in tags["images"]
    assert {"metrics/modes_covered", "metrics/high_quality_share", "metrics/reverse_kl"} <= set(tags["scalars"])
    assert 0 <= metrics["metrics/reverse_kl"] <= math.log(modes) + 1e-6
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
    ring_gan at most 0.08). Those counts were measured with a stricter rule than today's (a mode needed 2.5 % of the
    samples; now one high-quality sample), so they are lower bounds. The mode counts, not the share, catch a tight
    one-mode collapse (its share is near 1)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(RING_SEEDS, pool.map(lambda seed: _ring_sn_gan_metrics(tmp_path, seed), RING_SEEDS)))
    summary = {seed: (m["metrics/modes_covered"], m["metrics/high_quality_share"]) for seed, m in runs.items()}
    modes, quality = zip(*summary.values())
    assert min(modes) >= 5 and statistics.mean(modes) >= 7, summary
    assert statistics.median(quality) > 0.3, summary
