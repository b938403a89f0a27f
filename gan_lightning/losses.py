"""GAN losses on discriminator logits (BCE-with-logits: safe under autocast, unlike sigmoid + BCELoss).

The GAN picks them by name (``model.g_loss``, ``model.d_loss_reduction``) from the tables below, which are also
the lists of allowed names.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """G minimises -log D(G(z)) (Goodfellow et al. 2014's practical choice)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """G minimises log(1 - D(G(z))), the game's value; log(1 - sigmoid(l)) = -softplus(l), computed stably."""
    return -F.softplus(fake_logits).mean()


G_LOSSES = {"non_saturating": non_saturating, "minimax": minimax}
# How D's real and fake BCE terms combine: averaged (PyTorch-GAN) or added (devnag, Udacity); it matters for SGD.
D_REDUCTIONS = {"mean": lambda real, fake: (real + fake) / 2, "sum": lambda real, fake: real + fake}


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """BCE(D(x), real_label) and BCE(D(G(z)), 0), combined by ``D_REDUCTIONS[reduction]``.

    ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016): fake targets stay at 0.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return D_REDUCTIONS[reduction](real, fake)


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    return G_LOSSES[kind](fake_logits)


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] over the real samples ``real`` (which must require grad): R1 of Mescheder et al. 2018,
    "Which training methods for GANs do actually converge?". Penalising D's slope on the data damps the rotation
    that keeps plain GAN training circling the equilibrium. Kept in the graph, so D's update descends it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
