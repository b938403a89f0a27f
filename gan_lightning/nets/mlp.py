"""A configurable MLP: every MLP generator and discriminator of the classic presets is one of these."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_lightning.errors import require_int
from gan_lightning.nets.packed import pack_samples

ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh")


def make_activation(name: str, leaky_slope: float = 0.2) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(leaky_slope)
    if name == "elu":
        return nn.ELU()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def _per_layer(value, n: int, what: str) -> list:
    """Broadcast one setting to every hidden layer, or check a per-layer list."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"{what} has {len(value)} entries for {n} hidden layers")
    return value


class MLP(nn.Module):
    """Flatten -> [Linear -> (BatchNorm1d) -> activation -> (Dropout)] * len(hidden) -> Linear -> (out activation).

    ``in_shape``/``out_shape`` are per-sample shapes: a generator maps ``[latent_dim]`` to ``[1, 28, 28]``, a
    discriminator maps ``[1, 28, 28]`` to ``[1]`` (a logit). ``activation``, ``batch_norm`` and ``dropout`` take one
    value for all hidden layers or a list with one value per hidden layer. ``spectral_norm`` divides every Linear
    weight by its largest singular value (torch's parametrization, one power iteration per training forward;
    Miyato et al. 2018): a discriminator option that bounds D's Lipschitz constant. ``pack`` > 1 makes it PacGAN's
    discriminator: one output for every ``pack`` consecutive samples, judged together (``packed.pack_samples``).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        hidden: Sequence[int],
        out_shape: Sequence[int],
        activation: str | Sequence[str] = "leaky_relu",
        leaky_slope: float = 0.2,
        batch_norm: bool | Sequence[bool] = False,
        batch_norm_eps: float = 1e-5,
        dropout: float | Sequence[float] = 0.0,
        out_activation: str | None = None,
        spectral_norm: bool = False,
        pack: int = 1,
    ) -> None:
        super().__init__()
        require_int("model.discriminator.pack", pack)
        self.in_shape = tuple(in_shape)
        self.pack = pack
        self.out_shape = tuple(out_shape)
        hidden = list(hidden)
        activations = _per_layer(activation, len(hidden), "activation")
        norms = _per_layer(batch_norm, len(hidden), "batch_norm")
        dropouts = _per_layer(dropout, len(hidden), "dropout")

        layers: list[nn.Module] = []
        width = pack * math.prod(self.in_shape)
        for size, act, norm, drop in zip(hidden, activations, norms, dropouts):
            layers.append(nn.Linear(width, size))
            if norm:
                # PyTorch-GAN passes 0.8 positionally, which lands on eps; presets keep that quirk.
                layers.append(nn.BatchNorm1d(size, eps=batch_norm_eps))
            layers.append(make_activation(act, leaky_slope))
            if drop:
                layers.append(nn.Dropout(drop))
            width = size
        layers.append(nn.Linear(width, math.prod(self.out_shape)))
        if spectral_norm:
            layers = [nn.utils.parametrizations.spectral_norm(m) if isinstance(m, nn.Linear) else m for m in layers]
        if out_activation is not None:
            layers.append(make_activation(out_activation, leaky_slope))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pack_samples(x.flatten(1), self.pack)
        return self.net(x).view(x.shape[0], *self.out_shape)
