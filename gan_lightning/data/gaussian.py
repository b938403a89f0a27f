"""The 1-D Gaussian target of "GANs in 50 lines": an endless, seeded stream of N(mean, std) batches."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from gan_lightning.data.stream import SampleStream, StreamDataModule
from gan_lightning.errors import is_int, is_number, require


class GaussianStream(SampleStream):
    """Batches of shape ``(batch_size, *sample_shape)`` drawn iid from N(mean, std) (seeding: ``SampleStream``)."""

    def __init__(self, mean: float, std: float, batch_size: int, batches_per_epoch: int,
                 sample_shape: Sequence[int] = (1,), seed: int = 0, rank: int = 0, start_epoch: int = 0) -> None:
        super().__init__(batch_size, batches_per_epoch, seed, rank, start_epoch)
        self.mean, self.std = mean, std
        self.sample_shape = tuple(sample_shape)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn((n, *self.sample_shape), generator=generator) * self.std + self.mean


class GaussianDataModule(StreamDataModule):
    """Real samples for the 1-D Gaussian GAN, batched as ``gan_lightning.data`` describes."""

    def __init__(
        self,
        mean: float = 4.0,
        std: float = 1.25,
        batch_size: int = 500,
        batches_per_epoch: int = 100,
        num_workers: int = 0,
        seed: int = 0,
        sample_shape: Sequence[int] = (1,),
    ) -> None:
        super().__init__(batch_size, batches_per_epoch, num_workers, seed)
        require(is_number(mean), "data.mean", mean, "must be a number")
        require(is_number(std) and std > 0, "data.std", std, "the target Gaussian needs std > 0")
        require(len(sample_shape) > 0 and all(is_int(n) and n >= 1 for n in sample_shape), "data.sample_shape",
                list(sample_shape), "must be a list of integers >= 1")
        self.mean, self.std = mean, std
        self.sample_shape = tuple(sample_shape)

    def make_stream(self, **common) -> GaussianStream:
        return GaussianStream(self.mean, self.std, sample_shape=self.sample_shape, **common)
