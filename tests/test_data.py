"""Real loading code on files the tests write: IDX (raw and .gz), the offline message, the Gaussian stream."""
from __future__ import annotations

import gzip
import logging
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.data import _set_sampler_epoch
from torch.utils.data import DataLoader

from gan_lightning.data import (
    GaussianDataModule,
    GaussianStream,
    IDXError,
    MNISTDataModule,
    MNISTNotFoundError,
    read_idx,
)
from gan_lightning.data.idx import write_idx
from gan_lightning.train import train
from tests.conftest import compose_cfg, write_mnist


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files_and_scales_to_minus_one_one(tmp_path, gz):
    root = write_mnist(tmp_path, n=40, gz=gz)
    raw = root / "MNIST" / "raw"
    # Known extreme pixels: image 0 all black, image 1 all white.
    images = read_idx(next(raw.glob("train-images*")))
    images[0], images[1] = 0, 255
    write_idx(next(raw.glob("train-images*")), images)

    dm = MNISTDataModule(data_dir=str(root), batch_size=8, download=False)
    dm.d_steps = 2  # set by the execution plan from model.d_steps
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.images) == len(dm.labels) == 40
    batches = list(dm.train_dataloader())
    assert len(batches) == 40 // 16  # d_steps x batch_size per batch, last partial batch dropped
    images, labels = batches[0]
    assert images.dtype == torch.uint8 and images.shape == (16, 1, 28, 28) and labels.shape == (16,)

    scaled, _ = dm.on_after_batch_transfer((dm.images[:2].clone(), dm.labels[:2]), 0)
    assert scaled.dtype == torch.float32
    assert torch.all(scaled[0] == -1.0) and torch.all(scaled[1] == 1.0)


def test_mnist_raw_and_gz_side_by_side_must_hold_the_same_data(tmp_path, caplog):
    """torchvision's download leaves both, identical: read (and said). Different ones are refused: a run on either
    would leave the user unsure which data it trained on."""
    root = write_mnist(tmp_path, n=20, gz=True, seed=1)
    write_mnist(tmp_path, n=20, gz=False, seed=1)
    raw = root / "MNIST" / "raw"
    with caplog.at_level(logging.INFO):
        MNISTDataModule(data_dir=str(root), batch_size=8, download=False).setup("fit")
    assert f"Reading {raw / 'train-images-idx3-ubyte'} (train-images-idx3-ubyte.gz next to it holds the same data)" \
        in caplog.messages

    write_mnist(tmp_path, n=10, gz=False, seed=2)
    with pytest.raises(IDXError) as err:
        MNISTDataModule(data_dir=str(root), batch_size=8, download=False).setup("fit")
    assert str(err.value) == (
        f"{raw / 'train-images-idx3-ubyte'} and train-images-idx3-ubyte.gz next to it hold different data "
        "(7,856 vs 15,696 bytes once decompressed): delete or move the one you do not want to train on")

    labels = read_idx(raw / "train-labels-idx1-ubyte.gz")
    labels[3] = (labels[3] + 1) % 10
    write_mnist(tmp_path, n=20, gz=False, seed=1)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    with pytest.raises(IDXError, match=r"train-labels-idx1-ubyte and train-labels-idx1-ubyte.gz next to it hold "
                                       r"different data \(same size, first difference at byte 11\)"):
        MNISTDataModule(data_dir=str(root), batch_size=8, download=False).setup("fit")


def test_mnist_missing_without_download_names_the_files(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(MNISTNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert str((tmp_path / "nowhere" / "MNIST" / "raw").resolve()) in message


def test_mnist_missing_and_offline_gives_one_clear_error(tmp_path):
    cfg = compose_cfg(tmp_path / "run", ["data=mnist", f"data.data_dir={tmp_path}"])
    assert cfg.data.download  # the default: try torchvision's download when the files are missing
    dm = instantiate(cfg.data)
    with pytest.raises(MNISTNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "downloading failed" in message and "network is unreachable" in message
    assert "train-images-idx3-ubyte" in message and str(tmp_path.resolve()) in message


def test_idx_reader_rejects_bad_magic_and_truncation(tmp_path):
    good = tmp_path / "good-idx3-ubyte"
    write_idx(good, torch.zeros(3, 28, 28, dtype=torch.uint8))
    data = good.read_bytes()
    assert read_idx(good).shape == (3, 28, 28)

    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x12\x34" + data[2:])
    with pytest.raises(IDXError, match="not an IDX file"):
        read_idx(bad_magic)

    truncated = tmp_path / "truncated.gz"
    with gzip.open(truncated, "wb") as f:
        f.write(data[:-100])
    with pytest.raises(IDXError, match="needs"):
        read_idx(truncated)


def _epoch(stream: GaussianStream) -> torch.Tensor:
    return torch.cat(list(stream))


def test_gaussian_stream_is_seeded_and_differs_per_rank_and_epoch():
    kwargs = dict(mean=4.0, std=1.25, batch_size=1000, batches_per_epoch=20, seed=3)
    a, b = GaussianStream(**kwargs), GaussianStream(**kwargs)
    a0, b0 = _epoch(a), _epoch(b)
    assert torch.equal(a0, b0)  # same seed, same stream
    assert not torch.equal(a0, _epoch(a))  # the next epoch draws new samples
    assert not torch.equal(a0, _epoch(GaussianStream(**kwargs, rank=1)))
    # A stream restarted at epoch 1 (a resumed run) continues with epoch 1's samples, not epoch 0's.
    c = GaussianStream(**kwargs)
    _epoch(c)
    assert torch.equal(_epoch(c), _epoch(GaussianStream(**kwargs, start_epoch=1)))
    assert a0.shape == (20_000, 1)
    assert abs(a0.mean().item() - 4.0) < 0.05 and abs(a0.std().item() - 1.25) < 0.05


def test_gaussian_stream_workers_draw_different_batches():
    stream = GaussianStream(mean=0.0, std=1.0, batch_size=10, batches_per_epoch=6, seed=0)
    loader = DataLoader(stream, batch_size=None, num_workers=2)
    batches = list(loader)
    assert len(batches) == 6
    assert len({b[0, 0].item() for b in batches}) == 6


def test_mnist_epochs_have_their_own_order_and_resume_reproduces_it(tmp_path):
    dm = MNISTDataModule(data_dir=str(write_mnist(tmp_path, n=64)), batch_size=8, seed=5, download=False)
    dm.setup("fit")
    loader = dm.train_dataloader()
    _set_sampler_epoch(loader, 0)  # what Lightning calls at every epoch start
    epoch0 = list(loader)
    _set_sampler_epoch(loader, 1)
    epoch1 = list(loader)
    assert len(epoch0) == len(epoch1) == 8
    # Each epoch is one pass over all 64 digits, in its own order.
    for epoch in (epoch0, epoch1):
        images = torch.cat([images for images, _ in epoch])
        assert torch.equal(images.flatten(1).sum(1).sort().values, dm.images.flatten(1).sum(1).sort().values)
    assert not torch.equal(epoch0[0][0], epoch1[0][0])
    # A new loader (a resumed run) told it is at epoch 1 yields epoch 1's order.
    again = dm.train_dataloader()
    _set_sampler_epoch(again, 1)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(again, epoch1))


def test_mnist_ranks_take_disjoint_equal_shares_in_whole_batches(tmp_path):
    """Under DDP each rank cuts its batches from its own share of the epoch's order: no digit twice, the same
    number of whole batches on every rank (a rank with one batch more would hang the others)."""
    dm = MNISTDataModule(data_dir=str(write_mnist(tmp_path, n=101)), batch_size=8, download=False)
    dm.d_steps = 2  # set by the execution plan from model.d_steps
    dm.setup("fit")
    # Digits made unique so that each can be traced: pixel 0 holds its index.
    dm.images = torch.arange(101, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 28, 28).clone()
    shares = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        batches = list(dm.train_dataloader())
        assert len(batches) == 101 // 2 // 16 == 3
        assert all(images.shape == (16, 1, 28, 28) for images, _ in batches)
        shares.append(torch.cat([images[:, 0, 0, 0] for images, _ in batches]))
    assert len(set(shares[0].tolist()) | set(shares[1].tolist())) == 2 * 48


def test_gaussian_datamodule_resumes_with_the_next_epochs_samples():
    dm = GaussianDataModule(batch_size=10, batches_per_epoch=3, seed=1)
    fresh = dm.train_dataloader()
    epochs = [torch.cat(list(fresh)) for _ in range(3)]
    assert not torch.equal(epochs[0], epochs[1])

    # A run resumed from the checkpoint written at the end of epoch 0 (Lightning has processed 1 epoch).
    progress = SimpleNamespace(current=SimpleNamespace(processed=1))
    dm.trainer = SimpleNamespace(global_rank=0, fit_loop=SimpleNamespace(epoch_progress=progress),
                                 strategy=SimpleNamespace(root_device=torch.device("cpu")))
    resumed = dm.train_dataloader()
    assert torch.equal(torch.cat(list(resumed)), epochs[1])
    assert torch.equal(torch.cat(list(resumed)), epochs[2])


def test_mnist_is_kept_on_the_training_device_and_batches_are_cut_there(tmp_path):
    """setup() moves the split to the trainer's device once; batches are indexed there (the "meta" device stands in
    for a GPU: a batch built on the host and copied would not be on it)."""
    dm = MNISTDataModule(data_dir=str(write_mnist(tmp_path, n=40)), batch_size=8, download=False)
    dm.setup("fit")  # train() decodes early, before the Trainer exists: on the host
    assert dm.images.device.type == "cpu"
    meta = torch.device("meta")
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1, strategy=SimpleNamespace(root_device=meta))
    dm.setup("fit")  # the fit's own setup
    assert dm.images.device == dm.labels.device == meta
    batches = list(dm.train_dataloader())
    assert len(batches) == 5
    assert all(images.device == labels.device == meta and images.shape == (8, 1, 28, 28) for images, labels in batches)


def _mnist_files(tmp_path, n: int = 20):
    """A data folder with good raw IDX files of ``n`` digits, and its train images and labels files."""
    root = write_mnist(tmp_path / "data", n=n, gz=False)
    raw = root / "MNIST" / "raw"
    return root, raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"


def _read_error(root) -> str:
    """The message of the IDXError that reading the train split raises (as train() reads it: before training)."""
    with pytest.raises(IDXError) as err:
        MNISTDataModule(data_dir=str(root), batch_size=4, download=False).setup("fit")
    return str(err.value)


def test_mnist_labels_outside_0_to_9_are_refused_when_read(tmp_path):
    """A label 12 used to pass the reading and crash the conditional GAN's nn.Embedding mid-training."""
    root, _, labels_file = _mnist_files(tmp_path)
    labels = read_idx(labels_file)
    labels[5], labels[17] = 12, 255
    write_idx(labels_file, labels)
    assert _read_error(root) == (f"{labels_file}: label 12 at position 5 (counting from 0) is not a class 0-9 "
                                 "(2 such labels in all)")
    labels[17] = 9
    write_idx(labels_file, labels)
    assert _read_error(root).endswith("label 12 at position 5 (counting from 0) is not a class 0-9")


def test_mnist_bad_labels_stop_a_conditional_run_before_training(tmp_path):
    root, _, labels_file = _mnist_files(tmp_path, n=64)
    labels = read_idx(labels_file)
    labels[0] = 10
    write_idx(labels_file, labels)
    cfg = compose_cfg(tmp_path / "run", ["experiment=mnist_cgan", f"data.data_dir={root}", "data.batch_size=8"])
    with pytest.raises(IDXError, match=r"train-labels-idx1-ubyte: label 10 at position 0 "):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def _with_type_byte(path, type_byte: int, itemsize: int = 1) -> None:
    """Rewrite an unsigned-byte IDX file with another type byte; with ``itemsize`` > 1 each value is widened so
    that the length fits the new type (a well-formed IDX file of another type)."""
    data = bytearray(path.read_bytes())
    header = 4 + 4 * data[3]
    data[2] = type_byte
    body = b"".join(v.to_bytes(itemsize, "big") for v in data[header:]) if itemsize > 1 else data[header:]
    path.write_bytes(bytes(data[:header]) + body)


def test_mnist_wrong_idx_type_byte_says_what_was_found_and_what_is_expected(tmp_path):
    """It used to say "expected uint8 images of shape (N, 28, 28), got (20, 28, 28)"."""
    root, images_file, labels_file = _mnist_files(tmp_path)
    _with_type_byte(images_file, 0x0D, itemsize=4)  # a well-formed float32 IDX file
    expected = f"{images_file}: IDX type byte 0x0d (float32) but MNIST images are unsigned bytes (0x08)"
    assert _read_error(root) == expected

    # Only the type byte corrupted: said as such, not as a length that does not fit the header.
    root, images_file, labels_file = _mnist_files(tmp_path)
    _with_type_byte(images_file, 0x0D)
    assert _read_error(root) == expected

    root, images_file, labels_file = _mnist_files(tmp_path)
    _with_type_byte(labels_file, 0x0C, itemsize=4)
    assert _read_error(root) == f"{labels_file}: IDX type byte 0x0c (int32) but MNIST labels are unsigned bytes (0x08)"


def _corrupt_gzip(path) -> None:
    """A .gz whose header is fine but whose deflate stream is broken (zlib's own error, not an OSError)."""
    write_idx(path, (torch.arange(20 * 28 * 28) % 7).to(torch.uint8).view(20, 28, 28))  # compressible
    data = bytearray(path.read_bytes())
    data[25:35] = bytes(b ^ 0xFF for b in data[25:35])
    path.write_bytes(bytes(data))


def _header_count(path, count: int) -> None:
    data = bytearray(path.read_bytes())
    data[4:8] = count.to_bytes(4, "big")
    path.write_bytes(bytes(data))


# How a corrupt or unusual file is broken, and the end of the one-line message naming it.
CORRUPT_FILES = {
    "count in the header": (lambda images, labels: _header_count(images, 21),
                            "images: 15,696 bytes, but the header's shape (21, 28, 28) needs 16,480 bytes"),
    "fewer labels": (lambda images, labels: write_idx(labels, read_idx(labels)[:19]),
                     "labels: 19 labels, but train-images-idx3-ubyte holds 20 images"),
    "27x28 images": (lambda images, labels: write_idx(images, torch.zeros(20, 27, 28, dtype=torch.uint8)),
                     "images: header shape (20, 27, 28), but MNIST images are (N, 28, 28)"),
    "labels and images swapped": (lambda images, labels: write_idx(images, read_idx(labels)),
                                  "images: header shape (20,) (a labels file?), but MNIST images are (N, 28, 28)"),
    "labels of two dimensions": (lambda images, labels: write_idx(labels, torch.zeros(20, 1, dtype=torch.uint8)),
                                 "labels: header shape (20, 1), but MNIST labels are (N,): one per image"),
    "no images": (lambda images, labels: (write_idx(images, torch.zeros(0, 28, 28, dtype=torch.uint8)),
                                          write_idx(labels, torch.zeros(0, dtype=torch.uint8))),
                  "images: holds no images (header shape (0, 28, 28))"),
    "empty file": (lambda images, labels: images.write_bytes(b""), "images: empty file (0 bytes)"),
    "header cut short": (lambda images, labels: images.write_bytes(b"\x00\x00\x08"),
                         "images: not an IDX file (magic number 000008)"),
}


@pytest.mark.parametrize("case", CORRUPT_FILES)
def test_mnist_corrupt_files_are_refused_with_one_line_naming_the_file(tmp_path, case):
    root, images_file, labels_file = _mnist_files(tmp_path)
    corrupt, message = CORRUPT_FILES[case]
    corrupt(images_file, labels_file)
    said = _read_error(root)
    kind, end = message.split(": ", 1)
    assert said == f"{images_file if kind == 'images' else labels_file}: {end}"


def test_mnist_gz_that_is_not_gzip_or_is_corrupt_is_refused_with_one_line(tmp_path):
    root = write_mnist(tmp_path / "data", n=20, gz=True)
    images_gz = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    images_gz.write_bytes(b"not gzip at all")
    assert _read_error(root) == f"{images_gz}: cannot read (Not a gzipped file (b'no'))"

    _corrupt_gzip(images_gz)
    assert _read_error(root).startswith(f"{images_gz}: cannot read (Error -3 while decompressing data: ")


def test_a_damaged_held_out_split_stops_the_run_before_training(tmp_path):
    """The image metrics read the t10k files only at their first measurement; a damaged one is found up front."""
    root = write_mnist(tmp_path / "data", n=64)
    write_mnist(root, n=32, split="test")
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    cfg = compose_cfg(tmp_path / "run", ["data=mnist", f"data.data_dir={root}", "data.batch_size=8"])
    with pytest.raises(IDXError, match=r"t10k-labels-idx1-ubyte.gz: cannot read"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("lost", ["t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"])
def test_half_a_held_out_split_stops_the_run_before_training(tmp_path, lost):
    """One t10k file without the other is a copy gone wrong, not a data set without a test split (the metrics would
    silently hold out training images instead): the run stops up front and names both files."""
    root = write_mnist(tmp_path / "data", n=64)
    write_mnist(root, n=32, split="test")
    (root / "MNIST" / "raw" / lost).unlink()
    cfg = compose_cfg(tmp_path / "run", ["data=mnist", f"data.data_dir={root}", "data.batch_size=8"])
    with pytest.raises(IDXError) as err:
        train(cfg)
    kept = next((root / "MNIST" / "raw").glob("t10k-*"))
    assert str(err.value).startswith(f"{kept} has no {lost.removesuffix('.gz')} (or {lost}) next to it: ")
    assert not (tmp_path / "run" / "checkpoints").exists()
