"""D's regularisers: penalties added to D's loss, each a small object that says what it needs.

A regulariser declares the input gradients it needs (``needs_grad``: the real batch, the fake batch, or neither: the
objective then judges that batch with ``requires_grad`` on), how often it is applied (``interval``: every that many
D updates, its weight scaled by the interval so that its strength over time is unchanged: StyleGAN2's lazy
regularisation) and whether it is safe under fp16 loss scaling (``fp16_safe``; an input gradient is not scaled and
can overflow). ``penalty`` returns the value that is reported by ``name`` and added to D's loss times ``weight``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from gan_lightning.errors import is_number, require, require_int

Critic = Callable[[torch.Tensor], torch.Tensor]


KEY = "model.objective.regularisers"


class Regulariser:
    name = "regulariser"  # the statistic's name, and the usual key under model.objective.regularisers
    needs_grad: str | None = None  # "real", "fake" or None: which judged batch must carry its input gradient
    fp16_safe = False

    def __init__(self, weight: float, interval: int = 1) -> None:
        """``weight``: the factor of the penalty in D's loss when applied (already scaled by ``interval``)."""
        require(is_number(weight) and weight >= 0, f"{KEY}.{self.name}.weight", weight, "must be a number >= 0")
        require_int(f"{KEY}.{self.name}.interval", interval)
        self.interval = interval
        self.weight = weight

    def due(self, d_update: int) -> bool:
        """Whether it applies in D update number ``d_update`` (counted from 0 over the whole run)."""
        return d_update % self.interval == 0

    def penalty(self, critic: Critic, real: torch.Tensor, real_out: torch.Tensor, fake: torch.Tensor,
                fake_out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def input_gradient_norm2(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] over D's outputs on the batch ``x`` (which must require grad), kept in the graph so that
    D's update descends it. One gradient per output: per sample, or per pack for a packed D (``nets/packed.py``)."""
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.pow(2).reshape(len(out), -1).sum(1).mean()


class InputGradientPenalty(Regulariser):
    """gamma / 2 * E[||grad_x D(x)||^2] on the batch named by ``needs_grad`` (Mescheder et al. 2018)."""

    def __init__(self, gamma: float, interval: int = 1) -> None:
        require_int(f"{KEY}.{self.name}.interval", interval)
        require(is_number(gamma) and gamma >= 0, f"{KEY}.{self.name}.gamma", gamma, "must be a number >= 0")
        super().__init__(gamma / 2 * interval, interval)
        self.gamma = gamma

    def penalty(self, critic, real, real_out, fake, fake_out):
        out, x = (real_out, real) if self.needs_grad == "real" else (fake_out, fake)
        return input_gradient_norm2(out, x)


class R1(InputGradientPenalty):
    """R1 of Mescheder et al. 2018 ("Which training methods for GANs do actually converge?"): the penalty on real x.
    Penalising D's slope on the data damps the rotation that keeps plain GAN training circling the equilibrium.
    With ``interval`` N > 1 it is StyleGAN2's lazy R1: applied every N D updates with gamma * N."""

    name = "r1"
    needs_grad = "real"


class R2(InputGradientPenalty):
    """R2 (Mescheder et al. 2018): the penalty on the fake batch D judges, R1's counterpart on G's samples."""

    name = "r2"
    needs_grad = "fake"


class GradientPenalty(Regulariser):
    """WGAN-GP's two-sided penalty (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)||_2 - 1)^2] at x_hat =
    eps x + (1 - eps) G(z), eps ~ U(0, 1) per sample, which keeps the critic near 1-Lipschitz along the lines
    between real and fake samples. The interpolates are judged with the real batch's labels (conditional GANs)."""

    name = "gp"

    def __init__(self, weight: float, interval: int = 1) -> None:
        require_int(f"{KEY}.{self.name}.interval", interval)
        require(is_number(weight) and weight >= 0, f"{KEY}.{self.name}.weight", weight, "must be a number >= 0")
        super().__init__(weight * interval, interval)

    def penalty(self, critic, real, real_out, fake, fake_out):
        return gradient_penalty(critic, real, fake, pack=len(real) // len(real_out))


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None, pack: int = 1) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] at the random interpolates of ``real`` and ``fake``. A packed D (``pack``
    samples per output) gets one eps per pack, so that x_hat lies between a real and a fake pack, and one norm per
    pack: the critic is held 1-Lipschitz in what it judges."""
    eps = torch.rand((len(real) // pack,) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype,
                     generator=generator).repeat_interleave(pack, dim=0)
    between = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(between)
    (grad,) = torch.autograd.grad(out.sum(), between, create_graph=True)
    return (grad.reshape(len(out), -1).norm(2, dim=1) - 1).pow(2).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] over the real samples ``real`` (unweighted R1)."""
    return input_gradient_norm2(real_logits, real)
