"""Checkpoints written before the core was split into objective, schedule and execution plan still load and resume.

The two fixtures were written by the code of that time (commit 396d64c): ``experiment=gaussian_moments`` and a
tiny ``data=mnist model=dcgan`` (4 features, latent 8, batch 8, channels_last on), each after 2 iterations. Their
stored configs carry the old keys (``model.d_loss_reduction``, ``model.channels_last``, ``model.cuda_graph``,
``data.d_steps``, ...), which ``gan_lightning.checkpoint.upgrade_config`` maps to today's layout.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_lightning.checkpoint import load_gan, read_checkpoint, stored_config, upgrade_config
from gan_lightning.train import train
from tests.conftest import compose_cfg, write_mnist

FIXTURES = Path(__file__).parent / "fixtures"
COMMON = ["seed=0", "torch_threads=1", "~callbacks.samples", "trainer.max_epochs=2", "trainer.limit_train_batches=2"]
DCGAN = ["data=mnist", "model=dcgan", "model.generator.features=4", "model.discriminator.features=4",
         "model.latent_dim=8", "data.batch_size=8", "~callbacks.image_metrics"]


def test_an_old_stored_config_is_upgraded_to_the_objective_and_loses_its_execution_keys():
    old = read_checkpoint(FIXTURES / "pre_redesign_dcgan.ckpt")["gan_config"]
    assert old["model"]["channels_last"] is True and old["data"]["d_steps"] == 1  # what the fixture holds
    new = upgrade_config(old)
    assert new["model"]["objective"] == {"_target_": "gan_lightning.objective.Objective", "loss": "bce",
                                         "g_loss": None, "d_loss": None, "real_label": 1.0, "reduction": "mean",
                                         "regularisers": {}}
    for key in ("channels_last", "cuda_graph", "compile_nets", "direct_steps", "iterations_per_batch",
                "check_finite", "fixed_seed", "g_loss", "d_loss", "r1_gamma", "gp_lambda"):
        assert key not in new["model"], key
    assert "d_steps" not in new["data"] and upgrade_config(new) == new
    gaussian = stored_config(read_checkpoint(FIXTURES / "pre_redesign_gaussian.ckpt"), "fixture")
    assert gaussian["model"]["objective"]["reduction"] == "sum"  # model.d_loss_reduction: sum


@pytest.mark.parametrize("name", ["pre_redesign_gaussian", "pre_redesign_dcgan"])
def test_an_old_checkpoint_rebuilds_its_gan_for_sampling(name):
    checkpoint = read_checkpoint(FIXTURES / f"{name}.ckpt")
    model = load_gan(FIXTURES / f"{name}.ckpt")
    for key, value in model.state_dict().items():
        assert torch.equal(value, checkpoint["state_dict"][key]), key
    images = model.generate()
    assert torch.isfinite(images).all() and images.shape[0] == model.fixed_z.shape[0]


@pytest.mark.parametrize(("name", "overrides", "steps_per_iteration"),
                         [("pre_redesign_gaussian", ["experiment=gaussian_moments"], 40),
                          ("pre_redesign_dcgan", DCGAN, 2)])
def test_an_old_checkpoint_resumes_where_it_stopped(tmp_path, name, overrides, steps_per_iteration):
    """The config comparison passes (the old keys are upgraded, execution settings are not compared), and training
    continues from iteration 2 to 4: the iteration counter, Lightning's step count and the weights come from the
    file."""
    extra = [f"data.data_dir={write_mnist(tmp_path / 'data', n=64)}"] if "data=mnist" in overrides else []
    checkpoint = read_checkpoint(FIXTURES / f"{name}.ckpt")
    assert checkpoint["gan_iteration"] == 2
    train(compose_cfg(tmp_path / "run", [*overrides, *COMMON, *extra, f"ckpt_path={FIXTURES / f'{name}.ckpt'}"]))
    resumed = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert resumed["gan_iteration"] == 4
    assert resumed["global_step"] == 4 * steps_per_iteration
    changed = [k for k, v in resumed["state_dict"].items() if not torch.equal(v, checkpoint["state_dict"][k])]
    assert any(k.startswith("generator.") for k in changed) and any(k.startswith("discriminator.") for k in changed)
