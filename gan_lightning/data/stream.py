"""Endless seeded streams of synthetic samples (the 1-D Gaussian, the 2-D mixtures) and their DataModule base."""
from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from gan_lightning.errors import require, require_int


def seeded_generator(*keys: int) -> torch.Generator:
    """A host generator seeded by a hash of ``keys`` (e.g. seed, rank, worker, epoch): neighbouring keys do not give
    related draws, as consecutive integer seeds could."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0]))


class SampleStream(IterableDataset):
    """``batches_per_epoch`` batches of ``batch_size`` samples per pass, each drawn by ``draw(n, generator)``.

    The samples of one pass come from a generator seeded by (seed, rank, worker, epoch): every DDP rank and every
    dataloader worker draws its own numbers, each epoch new ones, and a run started with the same seed sees the
    same stream. The epoch is ``start_epoch`` plus the number of passes this object has made (the DataModule sets
    ``start_epoch`` from the trainer, so a resumed run does not replay epoch 0).
    """

    def __init__(self, batch_size: int, batches_per_epoch: int, seed: int = 0, rank: int = 0,
                 start_epoch: int = 0) -> None:
        self.batch_size, self.batches_per_epoch = batch_size, batches_per_epoch
        self.seed, self.rank, self.start_epoch = seed, rank, start_epoch
        self._passes = 0

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self.start_epoch + self._passes
        self._passes += 1
        generator = seeded_generator(self.seed, self.rank, worker, epoch)
        for _ in range(worker, self.batches_per_epoch, num_workers):
            yield self.draw(self.batch_size, generator)


class StreamDataModule(L.LightningDataModule):
    """Real samples from a ``SampleStream``, batched as ``gan_lightning.data`` describes: an epoch is
    ``batches_per_epoch`` iterations on every rank (the stream is endless; this sets the epoch length)."""

    # How many iterations of how many D updates one loader batch feeds: set by the execution plan from
    # model.d_steps and execution.iterations_per_batch before the loader is made.
    d_steps = 1
    iterations_per_batch = 1

    def __init__(self, batch_size: int, batches_per_epoch: int, num_workers: int, seed: int) -> None:
        super().__init__()
        require_int("data.batch_size", batch_size)
        require_int("data.batches_per_epoch", batches_per_epoch)
        require_int("data.num_workers", num_workers, minimum=0)
        require_int("data.seed", seed, minimum=0)
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.num_workers, self.seed = num_workers, seed

    def make_stream(self, **common) -> SampleStream:
        """The stream, given the settings every stream takes (batch size, epoch length, seed, rank, start epoch)."""
        raise NotImplementedError

    def shape_batches(self, d_steps: int, iterations_per_batch: int) -> None:
        """Batches for ``iterations_per_batch`` iterations of ``d_steps`` D updates (the execution plan calls this)."""
        require(self.batches_per_epoch % iterations_per_batch == 0, "data.batches_per_epoch", self.batches_per_epoch,
                f"counts iterations: use a multiple of execution.iterations_per_batch={iterations_per_batch}")
        self.d_steps, self.iterations_per_batch = d_steps, iterations_per_batch

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        stream = self.make_stream(
            batch_size=self.batch_size * self.d_steps * self.iterations_per_batch,
            batches_per_epoch=self.batches_per_epoch // self.iterations_per_batch,
            seed=self.seed,
            rank=trainer.global_rank if trainer is not None else 0,
            # The epoch about to run: after a resume from an epoch-end checkpoint this is the next epoch (the
            # value Lightning passes to samplers' set_epoch), so no epoch's samples are drawn twice.
            start_epoch=trainer.fit_loop.epoch_progress.current.processed if trainer is not None else 0,
        )
        # Persistent workers keep their stream object, so the epoch count inside each worker keeps advancing.
        # Batches are drawn on the host (the same numbers on every device); on a GPU they are pinned, so that the
        # copy to the device does not make the host wait for it.
        on_gpu = trainer is not None and trainer.strategy.root_device.type == "cuda"
        return DataLoader(stream, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, pin_memory=on_gpu)
