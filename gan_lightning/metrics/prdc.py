"""Precision, recall, density and coverage of generated samples against real ones, from k-nearest-neighbour balls
in a feature space (Kynkäänniemi et al. 2019; Naeem et al. 2020)."""
from __future__ import annotations

import torch


@torch.no_grad()
def prdc(real: torch.Tensor, fake: torch.Tensor, precision_recall_k: int = 3, density_coverage_k: int = 5,
         chunk_size: int = 1024) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` features, each (N, D).

    Every point has a ball around it whose radius is the distance to its k-th nearest neighbour in its own set
    (itself excluded). With B_k(x) that ball and ``<`` strict, as in the papers' reference code (the ``prdc``
    package, which takes one k for all four):

    - precision (Kynkäänniemi et al. 2019, k = ``precision_recall_k``, 3): the share of fake points inside at least
      one real ball, how much of G's output looks real;
    - recall (same paper and k): the share of real points inside at least one fake ball, how much of the data G
      produces;
    - density (Naeem et al. 2020, k = ``density_coverage_k``, 5): the number of real balls a fake point is in,
      divided by k and averaged over the fake points; about 1 when the two sets come from one distribution,
      above 1 when fake points crowd where the real ones are densest;
    - coverage (same paper and k): the share of real points whose ball holds at least one fake point.

    Identical sets score precision, recall and coverage 1 and density 1 (each real ball holds its centre and
    k - 1 neighbours; ties at a ball's edge are outside it). Distances are float64 Euclidean (``torch.cdist``), at
    most ``chunk_size`` rows of a distance matrix at a time (``chunk_size`` x N values), on the features' device.
    """
    for name, k in (("precision_recall_k", precision_recall_k), ("density_coverage_k", density_coverage_k)):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"{name}={k!r}: must be an integer >= 1")
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r}: must be >= 1")
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must be (N, D) features of one D, got {list(real.shape)} and "
                         f"{list(fake.shape)}")
    largest_k = max(precision_recall_k, density_coverage_k)
    for name, points in (("real", real), ("fake", fake)):
        if len(points) <= largest_k:
            raise ValueError(f"{len(points)} {name} points: {largest_k}-nearest-neighbour balls need at least "
                             f"{largest_k + 1}")
    real, fake = real.double(), fake.to(real.device, torch.float64)
    real_radii = _neighbour_radii(real, (precision_recall_k, density_coverage_k), chunk_size)
    fake_radii = _neighbour_radii(fake, (precision_recall_k,), chunk_size)[precision_recall_k]

    fake_in_a_real_ball = torch.zeros(len(fake), dtype=torch.bool, device=real.device)
    real_balls_per_fake = torch.zeros(len(fake), dtype=torch.long, device=real.device)
    real_in_a_fake_ball = torch.empty(len(real), dtype=torch.bool, device=real.device)
    real_ball_holds_a_fake = torch.empty(len(real), dtype=torch.bool, device=real.device)
    # Rows are real points, as in _neighbour_radii: for identical sets both see bit-identical distances, so a
    # ball's edge point is outside it in both.
    for start in range(0, len(real), chunk_size):
        rows = slice(start, start + chunk_size)
        distances = torch.cdist(real[rows], fake)
        fake_in_a_real_ball |= (distances < real_radii[precision_recall_k][rows, None]).any(0)
        inside = distances < real_radii[density_coverage_k][rows, None]
        real_balls_per_fake += inside.sum(0)
        real_ball_holds_a_fake[rows] = inside.any(1)
        real_in_a_fake_ball[rows] = (distances < fake_radii[None, :]).any(1)
    return {
        "precision": float(fake_in_a_real_ball.double().mean()),
        "recall": float(real_in_a_fake_ball.double().mean()),
        "density": float(real_balls_per_fake.double().mean() / density_coverage_k),
        "coverage": float(real_ball_holds_a_fake.double().mean()),
    }


def _neighbour_radii(points: torch.Tensor, ks: tuple[int, ...], chunk_size: int) -> dict[int, torch.Tensor]:
    """For each k, every point's distance to its k-th nearest other point: the (k + 1)-th smallest distance in its
    row, whose smallest is its distance to itself (a duplicate point may take that place, at the same distance 0)."""
    largest_k = max(ks)
    smallest = torch.empty(len(points), largest_k + 1, dtype=points.dtype, device=points.device)
    for start in range(0, len(points), chunk_size):
        rows = slice(start, start + chunk_size)
        smallest[rows] = torch.cdist(points[rows], points).topk(largest_k + 1, dim=1, largest=False).values
    # topk's values are sorted: column k is the (k + 1)-th smallest.
    return {k: smallest[:, k] for k in ks}


__all__ = ["prdc"]
