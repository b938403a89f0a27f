"""The 2-D mode-collapse benchmark: mixtures of equal Gaussians on a ring or a grid (Metz et al. 2017's ring of 8,
the 5x5 grid of VEEGAN and PacGAN)."""
from __future__ import annotations

import math

import torch

from gan_lightning.data.stream import SampleStream, StreamDataModule
from gan_lightning.errors import is_number, require, require_int

LAYOUTS = ("ring", "grid")


def mixture_centers(layout: str, num_modes: int, scale: float) -> torch.Tensor:
    """(num_modes, 2) mode centres: evenly spaced on a circle of radius ``scale`` ("ring"), or a square grid with
    spacing ``scale`` centred on the origin ("grid", num_modes a square: 25 gives -2s, -s, 0, s, 2s per axis)."""
    if layout == "ring":
        angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
        return (scale * torch.stack([angles.cos(), angles.sin()], dim=1)).float()
    side = math.isqrt(num_modes)
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * scale
    return torch.cartesian_prod(axis, axis).float()


class MixtureStream(SampleStream):
    """Batches of 2-D samples: a uniformly chosen centre plus N(0, std^2 I) (seeding: ``SampleStream``)."""

    def __init__(self, centers: torch.Tensor, std: float, batch_size: int, batches_per_epoch: int, seed: int = 0,
                 rank: int = 0, start_epoch: int = 0) -> None:
        super().__init__(batch_size, batches_per_epoch, seed, rank, start_epoch)
        self.centers, self.std = centers, std

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        modes = torch.randint(len(self.centers), (n,), generator=generator)
        return self.centers[modes] + self.std * torch.randn((n, 2), generator=generator)


class MixtureDataModule(StreamDataModule):
    """Real samples from a ring or grid of Gaussians, batched as ``gan_lightning.data`` describes; ``centers`` and
    ``std`` tell the callbacks where the modes are (``gan_lightning.metrics.mixture``)."""

    def __init__(
        self,
        layout: str = "ring",
        num_modes: int = 8,
        scale: float = 2.0,
        std: float = 0.02,
        batch_size: int = 512,
        batches_per_epoch: int = 500,
        num_workers: int = 0,
        seed: int = 0,
        sample_shape=(2,),
    ) -> None:
        super().__init__(batch_size, batches_per_epoch, num_workers, seed)
        require(layout in LAYOUTS, "data.layout", layout, f"expected one of {', '.join(LAYOUTS)}")
        require_int("data.num_modes", num_modes)
        require(layout != "grid" or math.isqrt(num_modes) ** 2 == num_modes, "data.num_modes", num_modes,
                "a grid needs a square number of modes (25 is 5x5)")
        require(is_number(scale) and scale > 0, "data.scale", scale, "must be > 0")
        require(is_number(std) and std > 0, "data.std", std, "must be > 0")
        require(list(sample_shape) == [2], "data.sample_shape", list(sample_shape), "the mixtures are 2-D: [2]")
        self.layout, self.std = layout, std
        self.centers = mixture_centers(layout, num_modes, scale)

    def make_stream(self, **common) -> MixtureStream:
        return MixtureStream(self.centers, self.std, **common)
