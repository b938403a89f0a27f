"""How far a histogram over modes or classes is from the uniform one: the KL the mode-collapse tables report."""
from __future__ import annotations

import torch


def kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(p || uniform) in nats of p = counts / counts.sum() over len(counts) bins: 0 for an even spread, log(bins)
    when everything falls in one bin. Empty bins add nothing (0 log 0 = 0)."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float((p * (p * len(counts)).log()).sum())
