"""DCGAN (Radford et al. 2016) sized for 28x28 images, as in the PyTorch DCGAN tutorial scaled to MNIST.

G: z -> ConvT 7x7 -> 4f x 7 x 7 -> ConvT -> 2f x 14 x 14 -> ConvT -> C x 28 x 28, BatchNorm + ReLU, tanh out.
D: C x 28 x 28 -> Conv -> f x 14 x 14 -> Conv + BatchNorm -> 2f x 7 x 7 -> Conv 7x7 -> one logit; LeakyReLU 0.2.
Weights follow the paper: conv N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0. D's options beyond the paper:
spectral norm on every conv (Miyato et al. 2018), usually without D's BatchNorm.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gan_lightning.errors import require_int
from gan_lightning.nets.packed import pack_samples


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation; apply with ``net.apply(dcgan_init)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _check_28(shape: Sequence[int]) -> int:
    if len(shape) != 3 or tuple(shape[1:]) != (28, 28):
        raise ValueError(f"the DCGAN nets are built for (C, 28, 28) images, got sample shape {list(shape)}")
    return shape[0]


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, out_shape: Sequence[int] = (1, 28, 28), features: int = 64) -> None:
        super().__init__()
        channels = _check_28(out_shape)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, features * 4, 7, 1, 0, bias=False),
            nn.BatchNorm2d(features * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(features * 4, features * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(features * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(features * 2, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        )
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), features: int = 64, batch_norm: bool = True,
                 spectral_norm: bool = False, pack: int = 1) -> None:
        super().__init__()
        require_int("model.discriminator.pack", pack)
        self.pack = pack  # PacGAN: D judges `pack` images at once, stacked along the channels (nets/packed.py)
        channels = _check_28(in_shape) * pack
        layers = [
            nn.Conv2d(channels, features, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(features, features * 2, 4, 2, 1, bias=False),
            *([nn.BatchNorm2d(features * 2)] if batch_norm else []),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(features * 2, 1, 7, 1, 0, bias=False),
        ]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)
        if spectral_norm:  # after the init: the parametrization keeps the initialised weight as its "original"
            for conv in (m for m in layers if isinstance(m, nn.Conv2d)):
                nn.utils.parametrizations.spectral_norm(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pack_samples(x, self.pack)
        return self.net(x).view(x.shape[0], 1)
