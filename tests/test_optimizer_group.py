"""The optimizer config group (conf/optimizer/): what the model files pick and what the command line switches.

G's optimizer is ``optimizer@model.g_optimizer``; D's (``optimizer@model.d_optimizer``) follows G's option unless set
itself. Field overrides (``model.g_optimizer.X=...`` / ``model.d_optimizer.X=...``) change only the net they name.
These tests compose the real config and build the GAN's optimizers (no training).
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_lightning.compose import CONFIG_DIR, compose_config

DCGAN = ["data=mnist", "model=dcgan"]


def _optimizers(overrides: list[str]):
    cfg = compose_config(overrides)
    opt_g, opt_d = instantiate(cfg.model).configure_optimizers()
    return cfg, opt_g, opt_d


def _settings(opt: torch.optim.Optimizer) -> dict:
    group = opt.param_groups[0]
    return {"class": type(opt), "lr": group["lr"], "fused": group.get("fused"),
            "betas": tuple(group["betas"]) if "betas" in group else None, "momentum": group.get("momentum")}


ADAM_DCGAN = {"class": torch.optim.Adam, "fused": True, "betas": (0.5, 0.999), "momentum": None}
SGD_MOMENTUM = {"class": torch.optim.SGD, "fused": False, "betas": None, "momentum": 0.9}


def _expect(opt: torch.optim.Optimizer, lr: float, **settings) -> None:
    assert _settings(opt) == {**settings, "lr": lr}


def test_dcgan_uses_adam_with_the_dcgan_betas_at_its_learning_rates():
    cfg, opt_g, opt_d = _optimizers(DCGAN + ["model.d_lr=1e-3"])
    _expect(opt_g, cfg.model.g_lr, **ADAM_DCGAN)
    _expect(opt_d, 1e-3, **ADAM_DCGAN)
    assert cfg.model.g_lr == 2e-4


def test_choosing_g_optimizer_switches_both_nets():
    cfg, opt_g, opt_d = _optimizers(DCGAN + ["optimizer@model.g_optimizer=sgd_momentum"])
    _expect(opt_g, cfg.model.g_lr, **SGD_MOMENTUM)
    _expect(opt_d, cfg.model.d_lr, **SGD_MOMENTUM)


def test_choosing_d_optimizer_switches_d_alone():
    cfg, opt_g, opt_d = _optimizers(DCGAN + ["optimizer@model.d_optimizer=sgd_momentum"])
    _expect(opt_g, cfg.model.g_lr, **ADAM_DCGAN)
    _expect(opt_d, cfg.model.d_lr, **SGD_MOMENTUM)


def test_both_choices_can_differ_from_the_model_file():
    cfg, opt_g, opt_d = _optimizers(DCGAN + ["optimizer@model.g_optimizer=sgd_momentum",
                                             "optimizer@model.d_optimizer=adam"])
    _expect(opt_g, cfg.model.g_lr, **SGD_MOMENTUM)
    _expect(opt_d, cfg.model.d_lr, **{**ADAM_DCGAN, "betas": (0.9, 0.999)})


@pytest.mark.parametrize(("overrides", "g_changes", "d_changes"), [
    (["model.d_optimizer.fused=false"], {}, {"fused": False}),
    (["model.g_optimizer.betas=[0.9,0.999]"], {"betas": (0.9, 0.999)}, {}),
    (["optimizer@model.g_optimizer=sgd_momentum", "model.d_optimizer.momentum=0.5"], "sgd", {"momentum": 0.5}),
], ids=["d-fused", "g-betas", "d-momentum-on-sgd"])
def test_a_field_override_changes_only_the_net_it_names(overrides, g_changes, d_changes):
    base = SGD_MOMENTUM if g_changes == "sgd" else ADAM_DCGAN
    cfg, opt_g, opt_d = _optimizers(DCGAN + overrides)
    _expect(opt_g, cfg.model.g_lr, **{**base, **(g_changes if isinstance(g_changes, dict) else {})})
    _expect(opt_d, cfg.model.d_lr, **{**base, **d_changes})


@pytest.mark.parametrize("model", sorted(p.stem for p in Path(CONFIG_DIR, "model").glob("[!_]*.yaml")))
def test_every_model_file_gives_d_the_optimizer_of_g(model):
    cfg = compose_config([f"model={model}"])
    assert OmegaConf.to_container(cfg.model.d_optimizer) == OmegaConf.to_container(cfg.model.g_optimizer)
    assert cfg.model.g_optimizer._partial_ is True


def test_an_unknown_option_is_hydras_could_not_find_error():
    with pytest.raises(MissingConfigException, match="Could not find 'optimizer/nope'"):
        compose_config(["optimizer@model.g_optimizer=nope"])


def test_sgd_momentum_steps_on_a_cpu_as_torchs_per_tensor_sgd_bit_for_bit():
    """The option's foreach path (fewer kernels on a GPU) must not move gaussian_moments' documented CPU results."""
    cfg, opt_g, opt_d = _optimizers(["experiment=gaussian_moments"])
    assert opt_g.defaults["foreach"] and opt_d.defaults["foreach"] and not opt_g.defaults["fused"]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 10), torch.nn.Sigmoid(), torch.nn.Linear(10, 1))
    twin = copy.deepcopy(net)
    optimizers = [instantiate(cfg.model.d_optimizer)(net.parameters(), lr=1e-3),
                  torch.optim.SGD(twin.parameters(), lr=1e-3, momentum=0.9)]  # torch's per-tensor path on a CPU
    for _ in range(50):
        x = torch.randn(32, 4)
        for model, optimizer in zip((net, twin), optimizers):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), twin.parameters()))
