"""GAN losses on D's raw outputs (logits for the BCE losses: safe under autocast, unlike sigmoid + BCELoss).

Each D loss takes D's outputs on a real and a fake batch; each G loss takes D's outputs on G's batch and, for the
relativistic losses, on a real batch (``real_out``; None for the others, which never look at it). ``LOSSES`` pairs
them by one name (``objective.loss``); ``objective.g_loss`` / ``objective.d_loss`` override one half.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------ G's losses
def non_saturating(fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
    """G minimises -log D(G(z)) (Goodfellow et al. 2014's practical choice)."""
    return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))


def minimax(fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
    """G minimises log(1 - D(G(z))), the game's value; log(1 - sigmoid(l)) = -softplus(l), computed stably."""
    return -F.softplus(fake_out).mean()


def critic_score(fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
    """G maximises D's mean score of its samples: WGAN's generator loss, which hinge GANs use too (Miyato et al.)."""
    return -fake_out.mean()


def least_squares(fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
    """G pulls D(G(z)) towards the real target 1 in squared error (LSGAN; PyTorch-GAN's cgan.py)."""
    return F.mse_loss(fake_out, torch.ones_like(fake_out))


def relativistic_average(fake_out: torch.Tensor, real_out: torch.Tensor) -> torch.Tensor:
    """RaGAN's G loss (Jolicoeur-Martineau 2018, eq. 8 with BCE): the fakes should look more real than the average
    real, and the reals less real than the average fake. Symmetric to D's: the real batch's gradient reaches G
    through the average of the fakes' scores."""
    return relativistic_average_terms(fake_out, real_out)


def relativistic_average_ls(fake_out: torch.Tensor, real_out: torch.Tensor) -> torch.Tensor:
    """RaLSGAN's G loss: (D(G(z)) - mean D(x) - 1)^2 + (D(x) - mean D(G(z)) + 1)^2, averaged."""
    return relativistic_average_ls_terms(fake_out, real_out)


G_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "non_saturating": non_saturating,
    "minimax": minimax,
    "hinge": critic_score,
    "wasserstein": critic_score,
    "least_squares": least_squares,
    "relativistic_average": relativistic_average,
    "relativistic_average_ls": relativistic_average_ls,
}
# The G losses that judge G's batch against a real batch: the G update then also runs D on real samples.
G_LOSSES_WITH_REAL = ("relativistic_average", "relativistic_average_ls")


# ------------------------------------------------------------------------------------------------ D's losses
# Each returns D's loss from its real and fake outputs. The two-target losses (bce, least_squares) take the real
# target and how to combine their two terms: averaged (PyTorch-GAN) or added (devnag, Udacity); it matters for SGD.
# hinge and wasserstein add theirs, as their papers write them (the gradient penalty's weight is set against that).
def bce(real_out, fake_out, real_label: float = 1.0, reduction: str = "mean"):
    """BCE(D(x), real_label) and BCE(D(G(z)), 0); ``real_label`` < 1 is one-sided label smoothing (Salimans et
    al. 2016): fake targets stay at 0."""
    real = F.binary_cross_entropy_with_logits(real_out, torch.full_like(real_out, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))
    return REDUCTIONS[reduction](real, fake)


def least_squares_d(real_out, fake_out, real_label: float = 1.0, reduction: str = "mean"):
    """(D(x) - real_label)^2 and D(G(z))^2 (LSGAN with targets 1 and 0, as PyTorch-GAN's cgan.py)."""
    real = F.mse_loss(real_out, torch.full_like(real_out, real_label))
    return REDUCTIONS[reduction](real, F.mse_loss(fake_out, torch.zeros_like(fake_out)))


def hinge(real_out, fake_out, real_label: float = 1.0, reduction: str = "mean"):
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018 with spectral norm)."""
    return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()


def wasserstein(real_out, fake_out, real_label: float = 1.0, reduction: str = "mean"):
    """E[D(G(z))] - E[D(x)]: the critic's estimate of W1, negated (Arjovsky et al. 2017); pair it with a Lipschitz
    constraint, the gradient penalty or spectral norm."""
    return -real_out.mean() + fake_out.mean()


def relativistic_average_terms(real_out, fake_out, real_label: float = 1.0, reduction: str = "mean"):
    """RaGAN's D loss (Jolicoeur-Martineau 2018): BCE(D(x) - mean D(G(z)), 1) + BCE(D(G(z)) - mean D(x), 0), i.e.
    how much more real a real sample looks than the average fake, and the reverse. (As a G loss the same function
    is called with the roles swapped: the fakes are then the ones to look real.)"""
    real = F.binary_cross_entropy_with_logits(real_out - fake_out.mean(), torch.ones_like(real_out))
    fake = F.binary_cross_entropy_with_logits(fake_out - real_out.mean(), torch.zeros_like(fake_out))
    return real + fake


def relativistic_average_ls_terms(real_out, fake_out, real_label: float = 1.0, reduction: str = "mean"):
    """RaLSGAN's D loss: E[(D(x) - mean D(G(z)) - 1)^2] + E[(D(G(z)) - mean D(x) + 1)^2]."""
    real = (real_out - fake_out.mean() - 1).pow(2).mean()
    return real + (fake_out - real_out.mean() + 1).pow(2).mean()


D_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "bce": bce,
    "least_squares": least_squares_d,
    "hinge": hinge,
    "wasserstein": wasserstein,
    "relativistic_average": relativistic_average_terms,
    "relativistic_average_ls": relativistic_average_ls_terms,
}
TWO_TARGET_LOSSES = ("bce", "least_squares")  # the ones with a real target (real_label) and a reduction choice
REDUCTIONS = {"mean": lambda real, fake: (real + fake) / 2, "sum": lambda real, fake: real + fake}


def _raw(scores: torch.Tensor) -> torch.Tensor:
    return scores


# What the statistics d_real and d_fake report: D's probability for BCE, its raw score for the others.
D_READINGS = {"bce": torch.sigmoid}


@dataclass(frozen=True)
class LossPair:
    """One GAN formulation: D's loss and G's loss by their names in the tables above."""

    d: str
    g: str


LOSSES = {
    "bce": LossPair("bce", "non_saturating"),           # Goodfellow et al. 2014 with G's practical loss
    "minimax": LossPair("bce", "minimax"),              # the game's value for both
    "least_squares": LossPair("least_squares", "least_squares"),  # LSGAN (Mao et al. 2017)
    "hinge": LossPair("hinge", "hinge"),                # Lim & Ye 2017; Miyato et al. 2018
    "wasserstein": LossPair("wasserstein", "wasserstein"),  # WGAN; with the gradient penalty, WGAN-GP
    "ragan": LossPair("relativistic_average", "relativistic_average"),          # RaGAN
    "ralsgan": LossPair("relativistic_average_ls", "relativistic_average_ls"),  # RaLSGAN
}


# Functions of both halves, for code that wants one call (tests, notebooks).
def discriminator_loss(real_out: torch.Tensor, fake_out: torch.Tensor, real_label: float = 1.0,
                       reduction: str = "mean", kind: str = "bce") -> torch.Tensor:
    return D_LOSSES[kind](real_out, fake_out, real_label, reduction)


def generator_loss(fake_out: torch.Tensor, kind: str = "non_saturating",
                   real_out: torch.Tensor | None = None) -> torch.Tensor:
    return G_LOSSES[kind](fake_out, real_out)
