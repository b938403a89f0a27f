"""Real loading code on files the tests write: IDX (raw and .gz), the offline message, the Gaussian stream."""
from __future__ import annotations

import gzip
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


def test_mnist_prefers_raw_file_over_gz(tmp_path):
    root = write_mnist(tmp_path, n=10, gz=True, seed=1)
    write_mnist(tmp_path, n=20, gz=False, seed=2)
    dm = MNISTDataModule(data_dir=str(root), batch_size=8, download=False)
    dm.setup("fit")
    assert len(dm.images) == 20


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
