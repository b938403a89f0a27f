"""How well 2-D samples cover a mixture of Gaussians: the standard mode-collapse metrics of Metz et al. 2017
(unrolled GANs), VEEGAN and PacGAN."""
from __future__ import annotations

import torch


def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, std: float, min_fair_share: float = 0.2,
                  within_std: float = 3.0) -> dict[str, float]:
    """A sample is high quality when it lies within ``within_std`` standard deviations of its nearest mode centre.

    high_quality_share: the share of samples that are high quality. modes_covered: the modes whose high-quality
    samples make up at least ``min_fair_share`` of a fair share (1 / number of modes) of all samples; with the
    defaults and 25 modes that is PacGAN's rule, 20 of 2,500 samples; for the ring of 8 it is 2.5 % of the samples.
    """
    samples = samples.detach().float().reshape(len(samples), -1).cpu()
    distance, nearest = torch.cdist(samples, centers.float().cpu()).min(dim=1)
    good = distance <= within_std * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    needed = min_fair_share * len(samples) / len(centers)
    return {"modes_covered": int((counts >= needed).sum()), "high_quality_share": float(good.float().mean())}
