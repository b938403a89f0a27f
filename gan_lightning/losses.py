"""GAN losses on discriminator logits (BCE-with-logits: safe under autocast, unlike sigmoid + BCELoss)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

G_LOSSES = ("non_saturating", "minimax")
D_REDUCTIONS = ("mean", "sum")


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """BCE(D(x), real_label) and BCE(D(G(z)), 0), averaged ("mean", PyTorch-GAN) or added ("sum", devnag, Udacity).

    ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016): fake targets stay at 0.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    if reduction == "mean":
        return (real + fake) / 2
    if reduction == "sum":
        return real + fake
    raise ValueError(f"unknown d_loss_reduction {reduction!r}; expected one of {D_REDUCTIONS}")


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """non_saturating: minimise -log D(G(z)); minimax: minimise log(1 - D(G(z))) as in Goodfellow et al. 2014."""
    if kind == "non_saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "minimax":
        # log(1 - sigmoid(l)) = -softplus(l), computed stably.
        return -F.softplus(fake_logits).mean()
    raise ValueError(f"unknown g_loss {kind!r}; expected one of {G_LOSSES}")


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] over the real samples ``real`` (which must require grad): R1 of Mescheder et al. 2018,
    "Which training methods for GANs do actually converge?". Penalising D's slope on the data damps the rotation
    that keeps plain GAN training circling the equilibrium. Kept in the graph, so D's update descends it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
