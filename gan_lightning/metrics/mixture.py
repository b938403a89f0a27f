"""How well 2-D samples cover a mixture of equal Gaussians: the mode-collapse metrics of VEEGAN (Srivastava et al.
2017) as PacGAN's code (Lin et al. 2018) computes them, and a reverse KL of the modes' histogram."""
from __future__ import annotations

import torch

from gan_lightning.metrics.histogram import kl_to_uniform


def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, std: float, within_std: float = 3.0,
                  min_samples: int = 1) -> dict[str, float]:
    """The published tables' numbers for ``samples`` (PacGAN scores 2,500) of a mixture with modes ``centers``.

    - high_quality_share: the share of samples within ``within_std`` standard deviations of their nearest mode
      centre (real samples score 1 - exp(-9/2) = 0.989: 2-D Gaussians reach past 3 std);
    - modes_covered: the modes that are the nearest mode of at least ``min_samples`` high-quality samples (one, as
      the papers count);
    - reverse_kl: KL(q || uniform) of q, the share of all samples whose nearest mode is each mode: 0 for an even
      spread over the modes, log(number of modes) for a collapse onto one.
    """
    samples = samples.detach().float().reshape(len(samples), -1).cpu()
    distance, nearest = torch.cdist(samples, centers.float().cpu()).min(dim=1)
    good = distance <= within_std * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    return {
        "modes_covered": int((counts >= min_samples).sum()),
        "high_quality_share": float(good.float().mean()),
        "reverse_kl": kl_to_uniform(torch.bincount(nearest, minlength=len(centers))),
    }
