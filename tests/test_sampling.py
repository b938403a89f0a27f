"""Using a trained generator: the EMA generator and the sample command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_lightning.checkpoint import load_gan
from gan_lightning.errors import ConfigError
from gan_lightning.sample import main
from gan_lightning.train import train
from tests.conftest import REPO, compose_cfg, write_mnist


@pytest.fixture(scope="module")
def cgan_ckpt(tmp_path_factory) -> Path:
    """A conditional MNIST GAN (10 classes, 1 x 28 x 28 images) after one iteration, shared by this file's tests."""
    root = tmp_path_factory.mktemp("cgan")
    data_dir = write_mnist(root / "data", n=64)
    train(compose_cfg(root / "run", ["experiment=mnist_cgan", f"data.data_dir={data_dir}",
                                     "trainer.limit_train_batches=1", "~callbacks.image_metrics"]))
    return root / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def gaussian_ckpt(tmp_path_factory) -> Path:
    """A 1-D Gaussian GAN (samples of one value) after two iterations."""
    root = tmp_path_factory.mktemp("gaussian")
    train(compose_cfg(root, ["data.batches_per_epoch=2"]))
    return root / "checkpoints" / "last.ckpt"


def test_ema_generator_is_tracked_saved_and_used_for_samples(tmp_path, mnist_dir):
    train(compose_cfg(tmp_path, ["data=mnist", f"data.data_dir={mnist_dir}", "data.batch_size=16",
                                 "trainer.max_epochs=2", "model.ema_half_life_images=64"]))
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    ema_keys = [k for k in checkpoint["state_dict"] if k.startswith("generator_ema.")]
    assert ema_keys and len(ema_keys) == len([k for k in checkpoint["state_dict"] if k.startswith("generator.")])

    model = load_gan(tmp_path / "checkpoints" / "last.ckpt")
    assert all(not p.requires_grad for p in model.generator_ema.parameters())
    # The average lags G: different weights, and G(z) differs from EMA(z); generate() uses the EMA.
    assert not torch.equal(model.generator_ema.net[0].weight, model.generator.net[0].weight)
    z = model.fixed_z
    assert torch.equal(model.generate(z), model.generator_ema.eval()(z))
    assert not torch.equal(model.generate(z), model.generate(z, use_ema=False))


def test_sample_command_writes_a_grid_and_seeded_samples(tmp_path, mnist_dir):
    train(compose_cfg(tmp_path, ["data=mnist", f"data.data_dir={mnist_dir}", "data.batch_size=16"]))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    grid, tensor = main([f"ckpt={ckpt}", "num_images=16", "seed=3", "num_samples=40"])
    assert grid == tmp_path / "samples" / "samples_seed3.png"
    assert Image.open(grid).size == (4 * 28 + 5 * 2, 4 * 28 + 5 * 2)  # 4 x 4 grid with 2-pixel padding
    samples = torch.load(tensor)
    assert samples.shape == (40, 1, 28, 28) and samples.min() >= -1 and samples.max() <= 1

    again = torch.load(main([f"ckpt={ckpt}", "seed=3", "num_samples=40", f"out_dir={tmp_path / 'again'}"])[1])
    other = torch.load(main([f"ckpt={ckpt}", "seed=4", "num_samples=40", f"out_dir={tmp_path / 'other'}"])[1])
    assert torch.equal(samples, again) and not torch.equal(samples, other)


def test_sample_command_on_a_gaussian_run(tmp_path):
    train(compose_cfg(tmp_path, ["data.batches_per_epoch=2"]))
    picture, tensor = main([f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", "num_images=500", "num_samples=1000"])
    assert picture.suffix == ".png" and picture.stat().st_size > 0
    assert torch.load(tensor).shape == (1000, 1)


@pytest.mark.parametrize(("args", "message"), [
    ([], "ckpt=???: required"),
    (["ckpt=/nonexistent.ckpt"], "ckpt=/nonexistent.ckpt: no such checkpoint file"),
    (["ckpt=x", "num_images=0"], "num_images=0: must be an integer >= 1"),
    (["ckpt=x", "num_samples=-1"], "num_samples=-1: must be an integer >= 0"),
    (["ckpt=x", "seed=abc"], "seed=abc: must be an integer"),
    (["ckpt=x", "foo=1"], "Key 'foo' is not in struct"),
    (["ckpt=x", "device=tpu9"], "device=tpu9: not a torch device"),
])
def test_sample_command_names_a_bad_setting(args, message):
    with pytest.raises(ConfigError) as err:
        main(args)
    assert message in str(err.value)


@pytest.mark.parametrize(("gan", "args", "message"), [
    # The samples' memory, estimated before drawing (a billion MNIST images: terabytes).
    ("cgan", ["num_images=1000000000"], r"num_images=1000000000: 1000000000 samples of 784 values need about "
     r"2920.6 GiB of memory, over the limit of [\d.]+ GiB \(40% of the host's [\d.]+ GiB\); draw fewer"),
    ("cgan", ["num_samples=1000000000"], r"num_samples=1000000000: 1000000080 samples of 784 values need about "
     "2920.6 GiB"),  # the default grid's 80 images count too
    # Few bytes each, but drawn 1000 at a time: a billion would take hours.
    ("gaussian", ["num_samples=1000000000"], "num_samples=1000000000: at most 10000000 samples a call"),
    ("gaussian", ["num_images=10000001"], "num_images=10000001: at most 10000000 samples a call"),
    ("cgan", ["num_images=10001"], r"num_images=10001: a grid holds at most 10000 images \(100 x 100: 3002 x 3002 "
     r"pixels here\); save more samples with num_samples=10001"),
    # Checked against the checkpoint, still before out_dir is made.
    ("cgan", ["label=10"], "label=10: the checkpoint's GAN has classes 0 to 9"),
    ("gaussian", ["label=1"], "label=1: the checkpoint's GAN is not conditional"),
    # A folder that cannot be made: /proc tells root it is writable, so mkdir's own error is the one said.
    ("gaussian", ["out_dir=/proc/gan_samples"], r"out_dir=/proc/gan_samples: cannot write there \(No such file"),
])
def test_sample_refuses_before_making_anything(request, tmp_path, gan, args, message):
    out_dir = tmp_path / "drawn"
    with pytest.raises(ConfigError, match=message):
        main([f"ckpt={request.getfixturevalue(f'{gan}_ckpt')}", f"out_dir={out_dir}", *args])
    assert not out_dir.exists()


def test_sample_command_names_an_out_dir_under_a_file_in_one_line(tmp_path, gaussian_ckpt):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    result = subprocess.run([sys.executable, "-m", "gan_lightning.sample", f"ckpt={gaussian_ckpt}",
                             f"out_dir={tmp_path / 'notes.txt' / 'drawn'}"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == (f"error: out_dir={tmp_path / 'notes.txt' / 'drawn'}: cannot write there "
                             f"({tmp_path / 'notes.txt'} is a file)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_default_grid_of_a_conditional_gan_has_full_rows_one_per_class(tmp_path, cgan_ckpt):
    (grid,) = main([f"ckpt={cgan_ckpt}", f"out_dir={tmp_path}"])
    assert Image.open(grid).size == (8 * 28 + 9 * 2, 10 * 28 + 11 * 2)  # 10 rows of 8, 2-pixel padding
    (grid,) = main([f"ckpt={cgan_ckpt}", f"out_dir={tmp_path}", "label=3"])
    assert Image.open(grid).size == (8 * 28 + 9 * 2, 8 * 28 + 9 * 2)  # one class: 8 x 8
    (grid,) = main([f"ckpt={cgan_ckpt}", f"out_dir={tmp_path}", "num_images=64", "seed=1"])
    assert Image.open(grid).size == (7 * 28 + 8 * 2, 10 * 28 + 11 * 2)  # as asked: 7 a row, the last 9 alone


def test_a_full_disk_while_writing_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch, gaussian_ckpt):
    import errno

    import gan_lightning.sample as sample

    def full_disk(obj, path):
        Path(path).write_bytes(b"half a tens")  # what a write cut off by ENOSPC leaves
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sample.torch, "save", full_disk)
    out_dir = tmp_path / "drawn"
    with pytest.raises(ConfigError) as err:
        main([f"ckpt={gaussian_ckpt}", f"out_dir={out_dir}", "num_samples=100"])
    assert str(err.value) == f"out_dir={out_dir}: cannot write samples_100_seed0.pt (No space left on device)"
    assert sorted(p.name for p in out_dir.iterdir()) == ["samples_seed0.png"]  # the picture was written whole
