"""Precision, recall, density and coverage: equal to the authors' reference code (the prdc package) and right at the
extremes (identical sets, disjoint sets, a collapsed G), and reported by image_quality()."""
from __future__ import annotations

import contextlib
import io

import pytest
import torch

from gan_lightning.callbacks.image_metrics import ImageMetrics
from gan_lightning.errors import ConfigError
from gan_lightning.metrics.classifier import DigitClassifier
from gan_lightning.metrics.image_quality import image_quality
from gan_lightning.metrics.prdc import prdc


def features(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) * scale + shift


def reference(real: torch.Tensor, fake: torch.Tensor, nearest_k: int) -> dict[str, float]:
    compute_prdc = pytest.importorskip("prdc").compute_prdc  # the reference, in the test extra
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes
        scores = compute_prdc(real.numpy(), fake.numpy(), nearest_k)
    return {name: float(value) for name, value in scores.items()}


@pytest.mark.parametrize("n_real, n_fake, dim, k, chunk_size", [
    (300, 200, 16, 3, 64),    # chunks that do not divide the sets
    (250, 400, 8, 5, 1024),   # one chunk
    (200, 200, 64, 1, 1),     # a row at a time
    (301, 299, 2, 10, 100),
])
def test_one_k_for_all_four_equals_the_reference(n_real, n_fake, dim, k, chunk_size):
    real = features(n_real, dim, seed=k)
    fake = features(n_fake, dim, seed=100 + k, shift=0.3, scale=1.2)  # overlapping but not the same distribution
    ours = prdc(real, fake, precision_recall_k=k, density_coverage_k=k, chunk_size=chunk_size)
    expected = reference(real, fake, k)
    assert ours == pytest.approx(expected, rel=1e-9)
    assert 0 < ours["precision"] < 1 and 0 < ours["coverage"] < 1  # the comparison is not between trivial values


def test_default_ks_are_the_papers_3_for_precision_recall_and_5_for_density_coverage():
    real, fake = features(300, 32, seed=0), features(300, 32, seed=1, shift=0.2)
    ours = prdc(real, fake)
    three, five = reference(real, fake, 3), reference(real, fake, 5)
    assert (ours["precision"], ours["recall"]) == pytest.approx((three["precision"], three["recall"]), rel=1e-9)
    assert (ours["density"], ours["coverage"]) == pytest.approx((five["density"], five["coverage"]), rel=1e-9)
    assert (three["precision"], three["density"]) != (five["precision"], five["density"])  # the k's matter here


@pytest.mark.parametrize("k", [1, 3, 5])
def test_identical_sets_score_one(k):
    """Each point lies in its own ball: a radius taken without excluding the point itself would make it 0 at k = 1
    and a ball's edge point counted inside would push density above 1."""
    real = features(400, 128, seed=k)
    scores = prdc(real, real.clone(), precision_recall_k=k, density_coverage_k=k, chunk_size=128)
    assert scores == pytest.approx({"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}, abs=1e-12)


def test_disjoint_sets_score_zero():
    scores = prdc(features(200, 16, seed=0), features(200, 16, seed=1, shift=100.0))
    assert scores == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_collapsed_generator_is_precise_but_recalls_and_covers_nothing_else():
    """200 copies of one real point: every copy lies in real balls (precision 1), but the copies' balls have radius
    0 (recall 0) and only the real balls that hold that one point are covered."""
    real = features(300, 16, seed=0)
    scores = prdc(real, real[:1].expand(200, -1))
    assert scores["precision"] == 1.0 and scores["recall"] == 0.0
    assert 1 / 300 <= scores["coverage"] < 0.1


def test_too_few_points_for_the_balls_are_refused():
    with pytest.raises(ValueError, match="5 fake points: 5-nearest-neighbour balls need at least 6"):
        prdc(features(100, 8, seed=0), features(5, 8, seed=1))
    with pytest.raises(ValueError, match="precision_recall_k=0: must be an integer >= 1"):
        prdc(features(100, 8, seed=0), features(100, 8, seed=1), precision_recall_k=0)
    with pytest.raises(ConfigError, match=r"callbacks.image_metrics.num_samples=5: must be an integer >= 6"):
        ImageMetrics(num_samples=5)


def test_image_quality_reports_them_on_the_classifiers_features():
    torch.manual_seed(0)
    classifier = DigitClassifier().eval()  # untrained: any feature map will do
    real = torch.rand(120, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    fake = torch.rand(90, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 1.6 - 0.6
    scores = image_quality(classifier, real, fake, batch_size=50)
    with torch.no_grad():
        expected = prdc(classifier.features(real), classifier.features(fake))
    assert {name: scores[name] for name in expected} == pytest.approx(expected, rel=1e-9)
    same = image_quality(classifier, real, real, batch_size=50)
    assert [same[name] for name in ("precision", "recall", "density", "coverage")] == pytest.approx([1, 1, 1, 1])
