"""What is computed: each net's loss and the statistics reported by name, given D, a real batch and a fake batch.

The LightningModule (``gan.py``) decides when each loss is computed (the schedule) and the execution plan how it
runs; the objective holds the maths. Phases, as StyleGAN2's ``loss.py`` names them: D's main loss with its
regularisers that are due (``discriminator_loss``), then G's (``generator_loss``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from gan_lightning.errors import is_number, require
from gan_lightning.objective.losses import (
    D_LOSSES,
    D_READINGS,
    G_LOSSES,
    G_LOSSES_WITH_REAL,
    LOSSES,
    REDUCTIONS,
    TWO_TARGET_LOSSES,
    _raw,
)
from gan_lightning.objective.regularisers import Regulariser

Critic = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]  # D(x, labels)
Stats = dict[str, torch.Tensor]
KEY = "model.objective"


class Objective:
    """A paired loss by name (``loss``: bce, minimax, least_squares, hinge, wasserstein, ragan, ralsgan), either
    half overridable (``g_loss``, ``d_loss``), and D's ``regularisers`` (name -> Regulariser).

    ``real_label`` < 1 is one-sided label smoothing and ``reduction`` (mean | sum) combines the real and fake terms;
    both only for the losses with targets (bce, least_squares).
    """

    def __init__(self, loss: str = "bce", g_loss: str | None = None, d_loss: str | None = None,
                 real_label: float = 1.0, reduction: str = "mean",
                 regularisers: Mapping[str, Regulariser] | None = None) -> None:
        require(loss in LOSSES, f"{KEY}.loss", loss, f"expected one of {', '.join(LOSSES)}")
        self.g_name = g_loss if g_loss is not None else LOSSES[loss].g
        self.d_name = d_loss if d_loss is not None else LOSSES[loss].d
        require(self.g_name in G_LOSSES, f"{KEY}.g_loss", g_loss, f"expected one of {', '.join(G_LOSSES)}")
        require(self.d_name in D_LOSSES, f"{KEY}.d_loss", d_loss, f"expected one of {', '.join(D_LOSSES)}")
        require(reduction in REDUCTIONS, f"{KEY}.reduction", reduction, f"expected one of {', '.join(REDUCTIONS)}")
        require(is_number(real_label) and 0 < real_label <= 1, f"{KEY}.real_label", real_label,
                "the target for real samples must be in (0, 1] (0.9 is one-sided label smoothing)")
        require(real_label == 1 or self.d_name in TWO_TARGET_LOSSES, f"{KEY}.real_label", real_label,
                f"label smoothing needs a D loss with targets ({', '.join(TWO_TARGET_LOSSES)}), not {self.d_name}")
        regularisers = dict(regularisers or {})
        for name, reg in regularisers.items():
            require(isinstance(reg, Regulariser), f"{KEY}.regularisers.{name}", type(reg).__name__,
                    "is not a gan_lightning.objective.Regulariser")
        self.real_label, self.reduction = real_label, reduction
        self.regularisers = regularisers
        self.d_loss_fn, self.g_loss_fn = D_LOSSES[self.d_name], G_LOSSES[self.g_name]
        self.reading = D_READINGS.get(self.d_name, _raw)
        self.g_needs_real = self.g_name in G_LOSSES_WITH_REAL

    def due(self, d_update: int) -> tuple[str, ...]:
        """The names of the regularisers applied in D update number ``d_update`` (lazy ones every ``interval``)."""
        return tuple(name for name, reg in self.regularisers.items() if reg.due(d_update))

    # ---------------------------------------------------------------------------------------------- D's phase
    def discriminator_loss(self, critic: Critic, real: torch.Tensor, real_labels: torch.Tensor | None,
                           fake: torch.Tensor, fake_labels: torch.Tensor | None,
                           due: tuple[str, ...] = ()) -> tuple[torch.Tensor, Stats]:
        """D's loss on ``real`` and ``fake`` (detached here: D's update does not reach G), with the regularisers
        named in ``due``; and its statistics: d_loss (the total), d_real and d_fake (D's mean reading of each batch:
        its probability for BCE, its score otherwise), and each applied regulariser's value."""
        applied = [(name, self.regularisers[name]) for name in due]
        needs = {reg.needs_grad for _, reg in applied}
        real = real.detach().requires_grad_(True) if "real" in needs else real
        fake = fake.detach().requires_grad_("fake" in needs)
        real_out = critic(real, real_labels)
        fake_out = critic(fake, fake_labels)
        loss = self.d_loss_fn(real_out, fake_out, self.real_label, self.reduction)
        stats: Stats = {}
        for name, reg in applied:
            value = reg.penalty(lambda x: critic(x, real_labels), real, real_out, fake, fake_out)
            loss = loss + reg.weight * value
            stats[name] = value.detach()
        # In float32: under bf16/16-mixed the outputs can be half precision.
        stats = {"d_loss": loss.detach(), "d_real": self.reading(real_out.detach().float()).mean(),
                 "d_fake": self.reading(fake_out.detach().float()).mean(), **stats}
        return loss, stats

    # ---------------------------------------------------------------------------------------------- G's phase
    def generator_loss(self, critic: Critic, fake: torch.Tensor, fake_labels: torch.Tensor | None,
                       real: torch.Tensor | None = None,
                       real_labels: torch.Tensor | None = None) -> tuple[torch.Tensor, Stats]:
        """G's loss on ``fake`` (which carries G's graph); the relativistic losses also judge ``real``."""
        real_out = critic(real, real_labels) if self.g_needs_real else None
        loss = self.g_loss_fn(critic(fake, fake_labels), real_out)
        return loss, {"g_loss": loss.detach()}
