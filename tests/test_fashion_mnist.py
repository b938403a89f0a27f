"""data=fashion_mnist on IDX files the tests write: torchvision's FashionMNIST/raw layout and a folder holding the
files themselves (Debian's package), messages that name Fashion-MNIST, and the MNIST presets that also fit it
through the real train() with the image metrics' classifier trained on its images."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from gan_lightning.data import FashionMNISTDataModule, IDXError, MNISTNotFoundError, read_idx
from gan_lightning.data.idx import write_idx
from gan_lightning.data.mnist import write_random_split
from gan_lightning.errors import ConfigError
from gan_lightning.metrics.classifier import data_key
from gan_lightning.train import train
from tests.conftest import compose_cfg, write_mnist


def write_fashion_mnist(root: Path, n: int = 64, split: str = "train", seed: int = 7) -> Path:
    """``n`` random 28x28 images with labels in torchvision's layout ``root/FashionMNIST/raw``; returns ``root``."""
    write_random_split(root / "FashionMNIST" / "raw", split, n, seed=seed, gz=True)
    return root


def loaded(data_dir: Path, batch_size: int = 8) -> FashionMNISTDataModule:
    dm = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=batch_size, download=False)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_reads_torchvision_layout_as_images_in_minus_one_one_with_their_labels(tmp_path):
    root = write_fashion_mnist(tmp_path / "data", n=40)
    raw = root / "FashionMNIST" / "raw"
    images = read_idx(raw / "train-images-idx3-ubyte.gz")
    images[0], images[1] = 0, 255  # known extremes: an all-black and an all-white image
    write_idx(raw / "train-images-idx3-ubyte.gz", images)

    dm = loaded(root)
    assert dm.raw_dir == raw
    assert dm.images.shape == (40, 1, 28, 28) and dm.images.dtype == torch.uint8
    assert torch.equal(dm.images[:, 0], images)
    assert torch.equal(dm.labels, read_idx(raw / "train-labels-idx1-ubyte.gz").long())
    batch_images, batch_labels = next(iter(dm.train_dataloader()))
    assert batch_images.shape == (8, 1, 28, 28) and batch_labels.shape == (8,)
    scaled, _ = dm.on_after_batch_transfer((dm.images[:3].clone(), dm.labels[:3]), 0)
    assert torch.all(scaled[0] == -1.0) and torch.all(scaled[1] == 1.0)
    assert scaled.min() >= -1 and scaled.max() <= 1


def test_a_folder_holding_the_files_themselves_is_read_as_debian_ships_them(tmp_path):
    """Debian's dataset-fashion-mnist puts the four .gz files straight in /usr/share/datasets/fashion-mnist."""
    flat = tmp_path / "fashion-mnist"
    write_random_split(flat, "train", 30, seed=1, gz=True)
    write_random_split(flat, "test", 12, seed=2, gz=True)
    dm = loaded(flat)
    assert dm.raw_dir == flat and len(dm.images) == 30
    assert torch.equal(dm.labels, read_idx(flat / "train-labels-idx1-ubyte.gz").long())
    test_images, _ = dm.read_split("test")  # the image metrics' held-out split, from the same folder
    assert test_images.shape == (12, 1, 28, 28)

    # torchvision's layout, when it holds the files too, is the one read.
    write_fashion_mnist(flat, n=20)
    assert loaded(flat).raw_dir == flat / "FashionMNIST" / "raw" and len(loaded(flat).images) == 20


def test_missing_files_are_named_as_fashion_mnist_in_its_folder_not_mnist(tmp_path):
    root = write_mnist(tmp_path / "data", n=32)  # MNIST's files are not Fashion-MNIST's
    with pytest.raises(MNISTNotFoundError) as err:
        FashionMNISTDataModule(data_dir=str(root), download=False).prepare_data()
    raw = (root / "FashionMNIST" / "raw").resolve()
    assert str(err.value).startswith(f"Fashion-MNIST train files not found in {raw} and data.download is false. ")
    assert "torchvision's layout <data_dir>/FashionMNIST/raw/" in str(err.value)
    assert "data.data_dir=<folder holding FashionMNIST/raw, or holding the files themselves>" in str(err.value)

    cfg = compose_cfg(tmp_path / "run", ["data=fashion_mnist", f"data.data_dir={root}"])
    assert cfg.data.download  # the default: torchvision's FashionMNIST download, offline in the tests
    with pytest.raises(MNISTNotFoundError) as err:
        train(cfg)
    assert str(err.value).startswith(f"Fashion-MNIST train files not found in {raw} and downloading failed")


def test_a_bad_file_is_named_as_fashion_mnist(tmp_path):
    root = write_fashion_mnist(tmp_path / "data", n=16)
    raw = root / "FashionMNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte.gz", torch.zeros(16, 28, 28, dtype=torch.uint8))
    with pytest.raises(IDXError, match=r"header shape \(16, 28, 28\) \(an images file\?\), but Fashion-MNIST labels"):
        loaded(root)
    with pytest.raises(ConfigError, match=r"^data.sample_shape=\[3, 28, 28\]: Fashion-MNIST images are \[1, 28, 28\]$"):
        FashionMNISTDataModule(sample_shape=[3, 28, 28])


def test_the_data_option_is_mnists_with_its_own_data_module():
    cfg = compose_cfg(None, ["data=fashion_mnist"])
    mnist = compose_cfg(None, ["data=mnist"])
    assert cfg.data._target_ == "gan_lightning.data.FashionMNISTDataModule"
    assert cfg.model == mnist.model and cfg.callbacks.image_metrics == mnist.callbacks.image_metrics
    assert isinstance(instantiate(cfg.data), FashionMNISTDataModule)


@pytest.mark.parametrize("preset", ["mnist_best", "mnist_dcgan"])
def test_mnist_presets_train_on_fashion_mnist_with_its_own_feature_classifier(preset, tmp_path, classifier_cache):
    data_dir = write_fashion_mnist(tmp_path / "data", n=256)
    write_fashion_mnist(data_dir, n=50, split="test", seed=8)
    cfg = compose_cfg(tmp_path / "run", [f"experiment={preset}", "data=fashion_mnist", f"data.data_dir={data_dir}",
                                         "trainer.limit_train_batches=2", "callbacks.image_metrics.every_n_epochs=1",
                                         "callbacks.image_metrics.num_samples=64",
                                         "callbacks.image_metrics.classifier_epochs=1"])
    assert cfg.data._target_ == "gan_lightning.data.FashionMNISTDataModule"
    metrics = train(cfg)

    assert {"metrics/fid", "metrics/kid", "metrics/inception_score", "metrics/modes"} <= metrics.keys()
    assert 0 <= metrics["metrics/classifier_accuracy"] <= 1
    if preset == "mnist_best":  # class-conditional: the classifier reads the requested clothing class
        assert 0 <= metrics["metrics/label_accuracy"] <= 1
    # The classifier was trained on these Fashion-MNIST images (its cache key) and held out their t10k split.
    images = loaded(data_dir).images
    info = json.loads((classifier_cache / "classifiers" / f"digits-{data_key(images)}.json").read_text())
    assert info["train_images"] == 256 and info["held_out_images"] == 50
    assert info["held_out_accuracy"] == metrics["metrics/classifier_accuracy"]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("data", ["gaussian", "stacked_mnist"])
def test_a_preset_for_mnist_and_fashion_mnist_still_refuses_other_data(data, tmp_path):
    with pytest.raises(ConfigError, match=f"^data={data}: the experiment preset mnist_best is made for data=mnist or "
                                          "data=fashion_mnist "):
        train(compose_cfg(tmp_path / "run", ["experiment=mnist_best", f"data={data}"]))
