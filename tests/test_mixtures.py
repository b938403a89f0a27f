"""The 2-D mode-collapse benchmark: the ring and grid data, the coverage metrics on samples of known coverage, and
the presets through train()."""
from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.data import MixtureDataModule, MixtureStream, mixture_centers
from gan_lightning.metrics import mode_coverage
from gan_lightning.train import train
from tests.conftest import compose_cfg, event_tags


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
    dm = MixtureDataModule(layout="grid", num_modes=25, scale=2.0, std=0.05, batch_size=10, d_steps=2,
                           batches_per_epoch=3)
    assert dm.centers.shape == (25, 2) and dm.std == 0.05
    batches = list(dm.train_dataloader())
    assert len(batches) == 3 and batches[0].shape == (20, 2)


@pytest.mark.slow
def test_ring_sn_gan_covers_the_ring(tmp_path):
    """The preset's promise, in full (5,000 iterations, about 100 s on one thread), seed 0: all 8 modes, where
    ring_gan covers 0 (README, "Mode collapse in 2-D"; its brief run is tested above)."""
    metrics = train(compose_cfg(tmp_path, ["experiment=ring_sn_gan", "seed=0", "trainer.max_epochs=10",
                                           "trainer.log_every_n_steps=50", "callbacks.samples.every_n_iterations=0"]))
    assert metrics["metrics/modes_covered"] == 8 and metrics["metrics/high_quality_share"] > 0.3, metrics
