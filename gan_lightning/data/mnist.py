"""MNIST from IDX files in torchvision's layout, decoded once into uint8 tensors and scaled to [-1, 1] per batch."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from gan_lightning.data.batches import to_model_range
from gan_lightning.data.idx import IDXError, read_idx, write_idx
from gan_lightning.errors import require, require_int

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SHAPE = (1, 28, 28)


def write_random_split(raw_dir: Path, split: str, n: int, seed: int = 0, gz: bool = False) -> None:
    """Write ``n`` random uint8 28x28 "digits" with labels as the IDX files of ``split`` in ``raw_dir`` (the cost of
    real MNIST without the download: the benchmark's fallback and the tests' fixtures)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=gen, dtype=torch.uint8)
    suffix = ".gz" if gz else ""
    for name, tensor in zip(SPLITS[split], (images, labels)):
        write_idx(raw_dir / f"{name}{suffix}", tensor)


class MNISTNotFoundError(FileNotFoundError):
    """The IDX files are missing and could not be downloaded."""


def find_idx_file(raw_dir: Path, name: str) -> Path | None:
    """The uncompressed file if present, else its ``.gz``."""
    for candidate in (raw_dir / name, raw_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_message(raw_dir: Path, split: str, reason: str) -> str:
    names = ", ".join(f"{n}[.gz]" for n in SPLITS[split])
    return (
        f"MNIST {split} files not found in {raw_dir.resolve()} and {reason}. Put {names} there "
        f"(raw IDX or .gz, torchvision's layout <data_dir>/MNIST/raw/), "
        "or set data.data_dir=<folder holding MNIST/raw>."
    )


class UInt8Images(Dataset):
    """Images kept as one uint8 tensor; ``__getitems__`` slices a whole batch at once (no per-sample Python)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices)
        return self.images[index], self.labels[index]


def _already_batched(batch):
    return batch


class EpochRandomSampler(RandomSampler):
    """A RandomSampler whose order depends only on (seed, epoch), so a resumed run continues the same sequence.

    Lightning calls ``set_epoch`` at every epoch start (with the resumed epoch after a restart); under DDP it
    swaps this sampler for a shuffling ``DistributedSampler``, which does the same per rank.
    """

    def __init__(self, data_source: Dataset, seed: int = 0) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class MNISTDataModule(L.LightningDataModule):
    """MNIST digits as (uint8 image batch, labels); ``on_after_batch_transfer`` scales to [-1, 1] on the device.

    Batched as ``gan_lightning.data`` describes (the last incomplete batch of an epoch is dropped).
    Files are looked up in ``<data_dir>/MNIST/raw`` (raw or ``.gz``); when missing they are downloaded with
    torchvision if ``download`` is set and the network allows; otherwise ``MNISTNotFoundError`` says what goes where.
    Every batch carries the labels: a conditional GAN (``model.num_classes``) uses them, the others ignore them.
    """

    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        d_steps: int = 1,
        num_workers: int = 0,
        seed: int = 0,
        split: str = "train",
        download: bool = True,
        sample_shape: Sequence[int] = IMAGE_SHAPE,
    ) -> None:
        super().__init__()
        require(split in SPLITS, "data.split", split, f"expected one of {', '.join(SPLITS)}")
        require(tuple(sample_shape) == IMAGE_SHAPE, "data.sample_shape", list(sample_shape),
                f"MNIST images are {list(IMAGE_SHAPE)}")
        require_int("data.batch_size", batch_size)
        require_int("data.d_steps", d_steps)
        require_int("data.num_workers", num_workers, minimum=0)
        require_int("data.seed", seed, minimum=0)
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.d_steps = d_steps
        self.num_workers = num_workers
        self.seed = seed
        self.split = split
        self.download = download
        self.dataset: UInt8Images | None = None

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def _files(self) -> list[Path | None]:
        return [find_idx_file(self.raw_dir, name) for name in SPLITS[self.split]]

    def prepare_data(self) -> None:
        if all(self._files()):
            return
        if not self.download:
            raise MNISTNotFoundError(missing_message(self.raw_dir, self.split, "data.download is false"))
        try:
            from torchvision.datasets import MNIST

            MNIST(str(self.data_dir), train=self.split == "train", download=True)
        except Exception as err:  # torchvision raises RuntimeError/URLError/OSError when offline
            raise MNISTNotFoundError(
                missing_message(self.raw_dir, self.split, f"downloading failed ({type(err).__name__}: {err})")
            ) from err

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        split = self.read_split(self.split)
        if split is None:
            raise MNISTNotFoundError(missing_message(self.raw_dir, self.split, "prepare_data did not provide them"))
        self.dataset = UInt8Images(*split)
        per_batch = self.batch_size * self.d_steps
        require(len(self.dataset) >= per_batch, "data.batch_size", self.batch_size,
                f"one iteration takes batch_size x d_steps = {per_batch} images, but the {self.split} split has "
                f"{len(self.dataset)}")

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(uint8 images (N, 1, 28, 28), int64 labels) of a split, checked; None when its files are absent."""
        images_path, labels_path = (find_idx_file(self.raw_dir, name) for name in SPLITS[split])
        if images_path is None or labels_path is None:
            return None
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != IMAGE_SHAPE[1:]:
            raise IDXError(f"{images_path}: expected uint8 images of shape (N, 28, 28), got {tuple(images.shape)}")
        if labels.dim() != 1 or len(labels) != len(images):
            raise IDXError(f"{labels_path}: {tuple(labels.shape)} labels for {len(images)} images")
        return images.unsqueeze(1), labels.long()

    def train_dataloader(self) -> DataLoader:
        samples_per_batch = self.batch_size * self.d_steps
        # batch_size and drop_last are passed explicitly so Lightning keeps them when it re-creates the loader
        # with a DistributedSampler; __getitems__ still receives a whole batch of indices at once.
        return DataLoader(
            self.dataset,
            batch_size=samples_per_batch,
            sampler=EpochRandomSampler(self.dataset, self.seed),
            drop_last=True,
            collate_fn=_already_batched,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        return to_model_range(images), labels
