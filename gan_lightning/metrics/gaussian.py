"""Distances between 1-D samples and a target N(mean, std), computed against the exact target CDF/quantiles."""
from __future__ import annotations

import torch


def gaussian_distances(samples: torch.Tensor, mean: float, std: float) -> dict[str, float]:
    """W1, Kolmogorov-Smirnov statistic, and the errors of the sample mean and std, for 1-D ``samples``.

    W1 integrates |empirical quantile - target quantile| over u in (0, 1), taking the target quantile at the
    midpoint of each of the n steps of the empirical quantile function (error O(std / n) for n samples).
    KS is the exact sup |F_n(x) - Phi((x - mean) / std)| of the empirical CDF.
    """
    x = samples.detach().flatten().double().sort().values
    n = len(x)
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=x.device)
    target_quantiles = mean + std * torch.special.ndtri((ranks - 0.5) / n)
    w1 = (x - target_quantiles).abs().mean()
    cdf = torch.special.ndtr((x - mean) / std)
    ks = torch.maximum(ranks / n - cdf, cdf - (ranks - 1) / n).max()
    return {
        "w1": w1.item(),
        "ks": ks.item(),
        "mean_error": (x.mean() - mean).item(),
        "std_error": (x.std() - std).item(),
    }
