"""Sanity of the 1-D quality metrics: the target itself scores ~0, a shifted or wider Gaussian scores what it should."""
from __future__ import annotations

import pytest
import torch

from gan_lightning.metrics import gaussian_distances


def test_samples_from_the_target_are_close_to_zero():
    samples = torch.randn(10_000, 1, generator=torch.Generator().manual_seed(0)) * 1.25 + 4
    d = gaussian_distances(samples, 4.0, 1.25)
    assert d["w1"] < 0.05 and d["ks"] < 0.02
    assert abs(d["mean_error"]) < 0.05 and abs(d["std_error"]) < 0.05


def test_shifted_and_wider_distributions():
    z = torch.randn(10_000, generator=torch.Generator().manual_seed(1))
    shifted = gaussian_distances(z * 1.25 + 4.5, 4.0, 1.25)
    assert shifted["w1"] == pytest.approx(0.5, abs=0.03) and shifted["mean_error"] == pytest.approx(0.5, abs=0.03)
    # N(4, 2.5) vs N(4, 1.25): W1 = (2.5 - 1.25) * E|Z| = 1.25 * sqrt(2 / pi).
    wider = gaussian_distances(z * 2.5 + 4, 4.0, 1.25)
    assert wider["w1"] == pytest.approx(1.25 * (2 / torch.pi) ** 0.5, rel=0.05)
    assert wider["std_error"] == pytest.approx(1.25, abs=0.05)
    # KS of a point mass at the mean: the CDF jumps from 0 to 1 where Phi = 0.5.
    assert gaussian_distances(torch.full((1000,), 4.0), 4.0, 1.25)["ks"] == pytest.approx(0.5)
