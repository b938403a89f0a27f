"""Stacked MNIST (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): three random MNIST digits as the three
channels of one 3x28x28 image, so the data has 1,000 modes, one per digit triple. Built from the MNIST IDX files
when loaded: the digits are read (and checked) as for data=mnist, and each epoch draws its own triples of them."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from gan_lightning.data.mnist import DIGIT_CLASSES, EpochOrder, MNISTDataModule
from gan_lightning.data.stream import seeded_generator
from gan_lightning.errors import require, require_int

DIGITS_PER_IMAGE = 3
TRIPLE_SHAPE = (DIGITS_PER_IMAGE, 28, 28)
NUM_TRIPLES = DIGIT_CLASSES**DIGITS_PER_IMAGE


def triple_labels(digit_labels: torch.Tensor) -> torch.Tensor:
    """(n, 3) digit labels -> (n,) triple labels 100 d0 + 10 d1 + d2 (the digits of channels 0, 1, 2)."""
    return digit_labels[:, 0] * 100 + digit_labels[:, 1] * 10 + digit_labels[:, 2]


def stack_digits(digits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) digits and (n, 3) indices into them -> (n, 3, 28, 28) images, digit j as channel j."""
    return digits[index].flatten(1, 2)


def draw_triples(num_digits: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3) indices of digits drawn uniformly with replacement: each channel's digit independent of the others."""
    return torch.randint(num_digits, (n, DIGITS_PER_IMAGE), generator=generator)


class EpochTriples:
    """One epoch of Stacked MNIST batches: ``triples_per_epoch`` triples drawn on the host from the generator of
    (seed, epoch), the same draw on every rank; with several ranks each takes every ``world_size``-th triple of it
    (no triple on two ranks, the same number of whole batches on each). Lightning calls ``sampler.set_epoch`` at
    every epoch start (with the resumed epoch after a restart), so a resumed run draws the triples the uninterrupted
    run would have. Each batch is stacked on the training device from the resident digits (uint8) and carries the
    triple labels."""

    def __init__(self, digits: torch.Tensor, labels: torch.Tensor, triples_per_epoch: int, batch_size: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.digits, self.labels = digits, labels
        self.triples_per_epoch, self.batch_size = triples_per_epoch, batch_size
        self.rank, self.world_size = rank, world_size
        self.sampler = EpochOrder(seed)  # holds the epoch; the name Lightning looks for when it sets the epoch

    def __len__(self) -> int:
        return self.triples_per_epoch // self.world_size // self.batch_size

    def __iter__(self):
        generator = seeded_generator(self.sampler.seed, self.sampler.epoch)  # the same draw on every rank
        triples = draw_triples(len(self.digits), self.triples_per_epoch, generator)
        share = triples[self.rank : len(triples) - len(triples) % self.world_size : self.world_size]
        share = share.to(self.digits.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = share[start : start + self.batch_size]
            yield stack_digits(self.digits, index), triple_labels(self.labels[index])


class StackedMNISTDataModule(MNISTDataModule):
    """Stacked MNIST as (uint8 3x28x28 image batch, triple labels 100 d0 + 10 d1 + d2), scaled to [-1, 1] on the
    device as data=mnist is. The MNIST digits of ``split`` are read as ``MNISTDataModule`` reads them (same files,
    checks and messages) and kept on the training device as ``images`` (N, 1, 28, 28) with their digit ``labels``:
    the image metrics train their digit classifier on them. An epoch is ``triples_per_epoch`` fresh triples of
    random digits (``EpochTriples``), whatever the number of digits, so its length is triples_per_epoch /
    (batch_size x d_steps) iterations.

    The image metrics count the 1,000 triples as modes (``num_modes``), a mode covered from its first sample
    (``min_mode_samples``, the papers' rule), and compare G with ``reference_images``: a seeded draw of triples.
    """

    num_classes = NUM_TRIPLES  # a batch's labels: a conditional GAN would be one of 1,000 classes
    num_modes = NUM_TRIPLES
    min_mode_samples = 1

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        seed: int = 0,
        split: str = "train",
        download: bool = True,
        triples_per_epoch: int = 128_000,
        sample_shape: Sequence[int] = TRIPLE_SHAPE,
    ) -> None:
        require(tuple(sample_shape) == TRIPLE_SHAPE, "data.sample_shape", list(sample_shape),
                f"Stacked MNIST images are {list(TRIPLE_SHAPE)}")
        require_int("data.triples_per_epoch", triples_per_epoch)
        super().__init__(data_dir, batch_size, seed, split, download)
        self.triples_per_epoch = triples_per_epoch

    def require_one_batch(self, per_epoch: int, source: str) -> None:
        """An epoch holds ``triples_per_epoch`` triples, however many digits the split has."""
        super().require_one_batch(self.triples_per_epoch, "data.triples_per_epoch is")

    def train_dataloader(self) -> EpochTriples:
        return EpochTriples(self.images, self.labels, self.triples_per_epoch, self.samples_per_batch, self.seed,
                            rank=self.trainer.global_rank if self.trainer is not None else 0,
                            world_size=self._world_size())

    def reference_images(self, n: int, seed: int) -> torch.Tensor:
        """``n`` uint8 (3, 28, 28) triples drawn with ``seed`` (on the host): what the image metrics compare G's
        samples with."""
        digits = self.images.cpu()
        return stack_digits(digits, draw_triples(len(digits), n, torch.Generator().manual_seed(seed)))
