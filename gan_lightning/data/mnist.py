"""MNIST from IDX files in torchvision's layout, decoded once into uint8 tensors and scaled to [-1, 1] per batch."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from gan_lightning.data.batches import to_model_range
from gan_lightning.data.idx import UNSIGNED_BYTE, IDXError, decode_idx, read_bytes, write_idx
from gan_lightning.errors import require, require_int

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SHAPE = (1, 28, 28)
DIGIT_CLASSES = 10  # the labels of the files: a digit 0-9


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


def read_idx_bytes(raw_dir: Path, name: str) -> tuple[bytes, Path] | None:
    """The (decompressed) bytes of ``name`` or ``name.gz`` and the file read; None when neither is there.

    When both are there they must hold the same bytes (torchvision's download leaves both, identical): if they
    differ, the user could not know which one a run trained on, so neither is chosen."""
    raw, gz = raw_dir / name, raw_dir / f"{name}.gz"
    found = [p for p in (raw, gz) if p.is_file()]
    if not found:
        return None
    data = read_bytes(found[0])
    if len(found) == 2:
        other = read_bytes(gz)
        if data != other:
            raise IDXError(f"{raw} and {gz.name} next to it hold different data ({_difference(data, other)}): "
                           "delete or move the one you do not want to train on")
        rank_zero_info(f"Reading {raw} ({gz.name} next to it holds the same data)")
    return data, found[0]


def _difference(a: bytes, b: bytes) -> str:
    """Where two byte strings first differ, in words."""
    if len(a) != len(b):
        return f"{len(a):,} vs {len(b):,} bytes once decompressed"
    first = int(np.flatnonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8))[0])
    return f"same size, first difference at byte {first:,}"


def check_images(images: torch.Tensor, path: Path, data_name: str = "MNIST") -> None:
    """N >= 1 images of 28x28 pixels (the unsigned-byte type is checked when decoding)."""
    if images.dim() != 3 or tuple(images.shape[1:]) != IMAGE_SHAPE[1:]:
        hint = " (a labels file?)" if images.dim() == 1 else ""
        raise IDXError(f"{path}: header shape {tuple(images.shape)}{hint}, but {data_name} images are (N, 28, 28)")
    if len(images) == 0:
        raise IDXError(f"{path}: holds no images (header shape {tuple(images.shape)})")


def check_labels(labels: torch.Tensor, path: Path, images_path: Path, num_images: int, num_classes: int,
                 data_name: str = "MNIST") -> None:
    """One label per image, each a class 0 .. num_classes - 1: a larger one would only fail in the middle of
    training, as an index error in a conditional GAN's embedding or the image metrics' classifier."""
    if labels.dim() != 1:
        hint = " (an images file?)" if labels.dim() == 3 else ""
        raise IDXError(f"{path}: header shape {tuple(labels.shape)}{hint}, but {data_name} labels are (N,): one per "
                       "image")
    if len(labels) != num_images:
        raise IDXError(f"{path}: {len(labels):,} labels, but {images_path.name} holds {num_images:,} images")
    bad = (labels >= num_classes).nonzero().flatten()  # unsigned bytes: none is negative
    if len(bad):
        first = int(bad[0])
        more = f" ({len(bad):,} such labels in all)" if len(bad) > 1 else ""
        raise IDXError(f"{path}: label {int(labels[first])} at position {first:,} (counting from 0) is not a class "
                       f"0-{num_classes - 1}{more}")


def missing_message(raw_dir: Path, split: str, reason: str, data_name: str = "MNIST", folder: str = "MNIST") -> str:
    """What is missing where, for ``data_name``'s files in torchvision's ``<data_dir>/<folder>/raw`` layout."""
    names = ", ".join(f"{n}[.gz]" for n in SPLITS[split])
    return (
        f"{data_name} {split} files not found in {raw_dir.resolve()} and {reason}. Put {names} there "
        f"(raw IDX or .gz, torchvision's layout <data_dir>/{folder}/raw/), "
        f"or set data.data_dir=<folder holding {folder}/raw, or holding the files themselves>."
    )


class EpochOrder:
    """The order of one epoch: a permutation seeded by (seed, epoch), drawn on the host so that it is the same on
    every device and rank. Lightning calls ``set_epoch`` at every epoch start, as it does for a sampler (with the
    resumed epoch after a restart), so a resumed run continues the same sequence."""

    def __init__(self, seed: int = 0) -> None:
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))


class ResidentBatches:
    """Batches of (uint8 images, labels) cut by indexing tensors that stay on the training device: no worker
    processes and no host-to-device copy per batch (the epoch's order is copied there once per epoch).

    An epoch is one pass in ``sampler``'s order; with several ranks each takes every ``world_size``-th sample of
    it (equal shares, so every rank runs the same number of iterations). The last incomplete batch is dropped.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.rank, self.world_size = rank, world_size
        self.sampler = EpochOrder(seed)  # the name Lightning looks for when it sets the epoch

    def __len__(self) -> int:
        return len(self.images) // self.world_size // self.batch_size

    def __iter__(self):
        order = self.sampler.permutation(len(self.images))
        share = order[self.rank : len(order) - len(order) % self.world_size : self.world_size]
        share = share.to(self.images.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = share[start : start + self.batch_size]
            yield self.images[index], self.labels[index]


class MNISTDataModule(L.LightningDataModule):
    """MNIST digits as (uint8 image batch, labels); ``on_after_batch_transfer`` scales to [-1, 1] on the device.

    The whole split (47 MB as uint8) is decoded once and kept on the training device; batches are cut from it there
    (``ResidentBatches``), as ``gan_lightning.data`` describes (the last incomplete batch of an epoch is dropped).
    Files are looked up in ``<data_dir>/MNIST/raw`` (raw or ``.gz``; when both are there they must hold the same
    data), or in ``data_dir`` itself when it holds the split's files and that folder does not; when missing they are
    downloaded with torchvision if ``download`` is set and the network allows; otherwise ``MNISTNotFoundError`` says
    what goes where. A file that does not hold 28x28 unsigned-byte images, or one label
    0-9 per image, raises ``IDXError`` naming it when the split is read.
    Every batch carries the labels: a conditional GAN (``model.num_classes``) uses them, the others ignore them.
    """

    num_classes = DIGIT_CLASSES  # a batch's labels
    data_name = "MNIST"  # in messages
    # torchvision's dataset class, whose name is also its folder: <data_dir>/MNIST/raw (a subclass reads another
    # data set in the same format by naming another class)
    torchvision_dataset = "MNIST"
    # How many iterations of how many D updates one loader batch feeds: set by the execution plan from
    # model.d_steps and execution.iterations_per_batch before the loader is made.
    d_steps = 1
    iterations_per_batch = 1

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        seed: int = 0,
        split: str = "train",
        download: bool = True,
        sample_shape: Sequence[int] = IMAGE_SHAPE,
    ) -> None:
        super().__init__()
        require(split in SPLITS, "data.split", split, f"expected one of {', '.join(SPLITS)}")
        require(tuple(sample_shape) == IMAGE_SHAPE, "data.sample_shape", list(sample_shape),
                f"{self.data_name} images are {list(IMAGE_SHAPE)}")
        require_int("data.batch_size", batch_size)
        require_int("data.seed", seed, minimum=0)
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.seed = seed
        self.split = split
        self.download = download
        self._decoded: tuple[torch.Tensor, torch.Tensor] | None = None  # on the host
        self.images: torch.Tensor | None = None  # (N, 1, 28, 28) uint8, on the training device after setup
        self.labels: torch.Tensor | None = None

    @property
    def raw_dir(self) -> Path:
        """The folder the files are read from: torchvision's ``<data_dir>/<dataset>/raw``, or ``data_dir`` itself
        when it holds the split's files and that folder does not (a copy of the four files, such as a Linux
        distribution's data package, used where it is)."""
        layout = self.data_dir / self.torchvision_dataset / "raw"
        if not self._holds_split(layout) and self._holds_split(self.data_dir):
            return self.data_dir
        return layout

    def _holds_split(self, folder: Path) -> bool:
        return all(find_idx_file(folder, name) for name in SPLITS[self.split])

    def _missing(self, reason: str) -> MNISTNotFoundError:
        return MNISTNotFoundError(missing_message(self.raw_dir, self.split, reason, self.data_name,
                                                  self.torchvision_dataset))

    def prepare_data(self) -> None:
        if self._holds_split(self.raw_dir):
            return
        if not self.download:
            raise self._missing("data.download is false")
        try:
            import torchvision.datasets

            dataset = getattr(torchvision.datasets, self.torchvision_dataset)
            dataset(str(self.data_dir), train=self.split == "train", download=True)
        except Exception as err:  # torchvision raises RuntimeError/URLError/OSError when offline
            why = " ".join(str(err).split())  # torchvision's message spans lines: the error is one
            raise self._missing(f"downloading failed ({type(err).__name__}: {why})") from err

    def setup(self, stage: str | None = None) -> None:
        """Decode the split (once) and put it on the trainer's device (the CPU before a trainer is attached:
        train() decodes early to report bad files before the Trainer starts, and the fit's own setup moves it)."""
        if self._decoded is None:
            self._decoded = self.read_split(self.split)
            if self._decoded is None:
                raise self._missing("prepare_data did not provide them")
        split = self._decoded
        self.require_one_batch(len(split[0]), f"the {self.split} split has")
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        self.images, self.labels = (t.to(device) for t in split)

    def require_one_batch(self, per_epoch: int, source: str) -> None:
        """An epoch of ``per_epoch`` samples (``source``: what holds them, in words) must fill one loader batch on
        every rank."""
        per_batch, ranks = self.samples_per_batch, self._world_size()
        require(per_epoch >= per_batch * ranks, "data.batch_size", self.batch_size,
                (f"one iteration takes batch_size x d_steps = {per_batch} images" if self.iterations_per_batch == 1
                 else f"one loader batch takes batch_size x d_steps x iterations_per_batch = {per_batch} images")
                + f"{' per rank' if ranks > 1 else ''}, but {source} {per_epoch}"
                f"{f' for {ranks} ranks' if ranks > 1 else ''}")

    def shape_batches(self, d_steps: int, iterations_per_batch: int) -> None:
        """Batches for ``iterations_per_batch`` iterations of ``d_steps`` D updates (the execution plan calls this)."""
        self.d_steps, self.iterations_per_batch = d_steps, iterations_per_batch

    @property
    def samples_per_batch(self) -> int:
        return self.batch_size * self.d_steps * self.iterations_per_batch

    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(uint8 images (N, 1, 28, 28), int64 labels) of a split, checked; None when both its files are absent, an
        ``IDXError`` when one is."""
        images_file, labels_file = (read_idx_bytes(self.raw_dir, name) for name in SPLITS[split])
        if images_file is None and labels_file is None:
            return None
        if images_file is None or labels_file is None:  # half a split: most likely a file lost in copying
            found, lost = (images_file, SPLITS[split][1]) if labels_file is None else (labels_file, SPLITS[split][0])
            raise IDXError(f"{found[1]} has no {lost} (or {lost}.gz) next to it: add it, or move {found[1].name} "
                           "away (without a test split the image metrics hold out 10 % of the training images)")
        (images_data, images_path), (labels_data, labels_path) = images_file, labels_file
        images = decode_idx(images_data, images_path, UNSIGNED_BYTE, f"{self.data_name} images")
        check_images(images, images_path, self.data_name)
        labels = decode_idx(labels_data, labels_path, UNSIGNED_BYTE, f"{self.data_name} labels")
        check_labels(labels, labels_path, images_path, len(images), DIGIT_CLASSES, self.data_name)
        return images.unsqueeze(1), labels.long()

    def train_dataloader(self) -> ResidentBatches:
        return ResidentBatches(self.images, self.labels, self.samples_per_batch, self.seed,
                               rank=self.trainer.global_rank if self.trainer is not None else 0,
                               world_size=self._world_size())

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        return to_model_range(images), labels
