"""Using a trained generator: the EMA generator and the sample command."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from gan_lightning.checkpoint import load_gan
from gan_lightning.errors import ConfigError
from gan_lightning.sample import main
from gan_lightning.train import train
from tests.conftest import compose_cfg


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
