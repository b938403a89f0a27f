"""GAN losses on D's raw outputs (logits for BCE: safe under autocast, unlike sigmoid + BCELoss), and D's penalties.

The GAN picks them by name (``model.g_loss``, ``model.d_loss``, ``model.d_loss_reduction``) from the tables below,
which are also the lists of allowed names.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------ G's losses
def non_saturating(fake_out: torch.Tensor) -> torch.Tensor:
    """G minimises -log D(G(z)) (Goodfellow et al. 2014's practical choice)."""
    return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))


def minimax(fake_out: torch.Tensor) -> torch.Tensor:
    """G minimises log(1 - D(G(z))), the game's value; log(1 - sigmoid(l)) = -softplus(l), computed stably."""
    return -F.softplus(fake_out).mean()


def critic_score(fake_out: torch.Tensor) -> torch.Tensor:
    """G maximises D's mean score of its samples: WGAN's generator loss, which hinge GANs use too (Miyato et al.)."""
    return -fake_out.mean()


def least_squares(fake_out: torch.Tensor) -> torch.Tensor:
    """G pulls D(G(z)) towards the real target 1 in squared error (LSGAN; PyTorch-GAN's cgan.py)."""
    return F.mse_loss(fake_out, torch.ones_like(fake_out))


G_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "non_saturating": non_saturating,
    "minimax": minimax,
    "hinge": critic_score,
    "wasserstein": critic_score,
    "least_squares": least_squares,
}


# ------------------------------------------------------------------------------------------------ D's losses
# Each returns its real and fake terms; D_REDUCTIONS combines the two terms of the two-target losses (bce,
# least_squares): averaged (PyTorch-GAN) or added (devnag, Udacity); it matters for SGD. hinge and wasserstein
# are added, as their papers write them (the gradient penalty's lambda is set against that sum).
def bce_terms(real_out, fake_out, real_label: float = 1.0):
    """BCE(D(x), real_label) and BCE(D(G(z)), 0); ``real_label`` < 1 is one-sided label smoothing (Salimans et
    al. 2016): fake targets stay at 0."""
    return (F.binary_cross_entropy_with_logits(real_out, torch.full_like(real_out, real_label)),
            F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))


def least_squares_terms(real_out, fake_out, real_label: float = 1.0):
    """(D(x) - real_label)^2 and D(G(z))^2 (LSGAN with targets 1 and 0, as PyTorch-GAN's cgan.py)."""
    return F.mse_loss(real_out, torch.full_like(real_out, real_label)), F.mse_loss(fake_out, torch.zeros_like(fake_out))


def hinge_terms(real_out, fake_out, real_label: float = 1.0):
    """E[relu(1 - D(x))] and E[relu(1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018 with spectral norm)."""
    return F.relu(1 - real_out).mean(), F.relu(1 + fake_out).mean()


def wasserstein_terms(real_out, fake_out, real_label: float = 1.0):
    """-E[D(x)] and E[D(G(z))]: the critic's estimate of W1, negated (Arjovsky et al. 2017); pair it with a
    Lipschitz constraint, the gradient penalty (``model.gp_lambda``) or spectral norm."""
    return -real_out.mean(), fake_out.mean()


D_LOSSES = {"bce": bce_terms, "least_squares": least_squares_terms, "hinge": hinge_terms,
            "wasserstein": wasserstein_terms}
TWO_TARGET_LOSSES = ("bce", "least_squares")  # the ones with a real target (real_label) and a reduction choice
D_REDUCTIONS = {"mean": lambda real, fake: (real + fake) / 2, "sum": lambda real, fake: real + fake}
# What train/d_real and train/d_fake report: D's probability for BCE, its raw score for the others.
def _raw(scores: torch.Tensor) -> torch.Tensor:
    return scores


D_READINGS = {"bce": torch.sigmoid, "least_squares": _raw, "hinge": _raw, "wasserstein": _raw}


def discriminator_loss(real_out: torch.Tensor, fake_out: torch.Tensor, real_label: float = 1.0,
                       reduction: str = "mean", kind: str = "bce") -> torch.Tensor:
    real, fake = D_LOSSES[kind](real_out, fake_out, real_label)
    return D_REDUCTIONS[reduction](real, fake) if kind in TWO_TARGET_LOSSES else real + fake


def generator_loss(fake_out: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    return G_LOSSES[kind](fake_out)


# ------------------------------------------------------------------------------------------- D's penalties
def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] over the real samples ``real`` (which must require grad): R1 of Mescheder et al. 2018,
    "Which training methods for GANs do actually converge?". Penalising D's slope on the data damps the rotation
    that keeps plain GAN training circling the equilibrium. Kept in the graph, so D's update descends it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z), eps ~ U(0, 1) per sample: the two-sided
    penalty of WGAN-GP (Gulrajani et al. 2017), which keeps the critic near 1-Lipschitz along the lines between
    real and fake samples. ``critic`` maps a batch to D's outputs; the penalty stays in the graph for D's update."""
    eps = torch.rand((len(real),) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype,
                     generator=generator)
    between = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
