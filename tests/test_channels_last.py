"""execution.channels_last (auto: NHWC for nets with convolutions, such as model=dcgan): the conv nets train in NHWC
layout, with the same losses and weights as in NCHW up to float rounding, and their checkpoints load into an NCHW
GAN."""
from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from gan_lightning.compose import compose_config
from tests.conftest import compose_cfg, fit, write_mnist

ITERATIONS = 3
NHWC = torch.channels_last


class DiscriminatorInputLayouts(L.Callback):
    """For every call of D's second conv, whether its input (the first conv's activations, 8 channels) was in NHWC
    layout."""

    def __init__(self) -> None:
        self.layouts: list[bool] = []

    def on_train_start(self, trainer, pl_module) -> None:
        second_conv = [m for m in pl_module.discriminator.modules() if isinstance(m, nn.Conv2d)][1]
        second_conv.register_forward_pre_hook(
            lambda _, inputs: self.layouts.append(inputs[0].is_contiguous(memory_format=NHWC)))


def _fit(tmp_path, channels_last: bool | None, overrides=(), ckpt_path=None):
    """ITERATIONS iterations (an epoch) of a small DCGAN from seed 0, with D's input layouts recorded;
    ``channels_last=None`` leaves the plan's automatic choice."""
    layout = [] if channels_last is None else [f"execution.channels_last={str(channels_last).lower()}"]
    cfg = compose_cfg(tmp_path, ["data=mnist", "model=dcgan", f"data.data_dir={write_mnist(tmp_path / 'data')}",
                                 "data.batch_size=8", "model.generator.features=8", "model.discriminator.features=8",
                                 f"trainer.limit_train_batches={ITERATIONS}", *layout, *overrides])
    recorder = DiscriminatorInputLayouts()
    trainer, model = fit(cfg, recorder, ckpt_path=ckpt_path, seed=0)
    return cfg, trainer, model, recorder.layouts


def test_the_dcgan_preset_trains_in_nhwc():
    """The preset leaves the layout to the plan, which picks NHWC for its conv nets when the fit sets up."""
    cfg = compose_config(["experiment=mnist_dcgan", "model.generator.features=8", "model.discriminator.features=8"])
    assert cfg.execution.channels_last is None
    plan, model = instantiate(cfg.execution), instantiate(cfg.model)
    plan.setup(SimpleNamespace(datamodule=None), model, "fit")
    assert plan.nhwc and model.execution is plan
    assert all(p.is_contiguous(memory_format=NHWC) for p in model.parameters() if p.dim() == 4)


def test_nhwc_trains_as_nchw_and_its_checkpoint_loads_into_nchw(tmp_path):
    _, nchw_trainer, nchw, nchw_layouts = _fit(tmp_path / "nchw", channels_last=False)
    cfg, trainer, model, layouts = _fit(tmp_path / "nhwc", channels_last=None)  # auto: NHWC for the conv nets
    assert model.execution.nhwc and not nchw.execution.nhwc
    # Every 4-D weight is in NHWC, and D's activations were in every call (real and fake batches); not so in NCHW.
    weights = [p for p in model.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=NHWC) for p in weights)
    assert len(layouts) >= 2 * ITERATIONS and all(layouts)
    assert len(nchw_layouts) == len(layouts) and not any(nchw_layouts)
    # The same losses and weights up to float rounding (Adam's steps are at most lr = 2e-4 each).
    assert trainer.callback_metrics.keys() == nchw_trainer.callback_metrics.keys()
    for name, value in nchw_trainer.callback_metrics.items():
        torch.testing.assert_close(trainer.callback_metrics[name], value, rtol=1e-4, atol=1e-5)
    state, nchw_state = model.state_dict(), nchw.state_dict()
    assert state.keys() == nchw_state.keys()
    for name, value in nchw_state.items():
        torch.testing.assert_close(state[name].float(), value.float(), rtol=0, atol=ITERATIONS * 2e-4, msg=name)
    # An NHWC run's weights load into a GAN built in NCHW (no plan has set it up), values unchanged.
    fresh = instantiate(cfg.model)
    fresh.load_state_dict(state)
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, state[name]), name


@pytest.mark.parametrize("saved_nhwc", [False, True], ids=["nchw-to-nhwc", "nhwc-to-nchw"])
def test_resuming_in_the_other_layout_gives_adams_moments_the_parameters_layout(tmp_path, saved_nhwc):
    """A checkpoint from before the DCGAN preset turned NHWC on (or a run that switches it) restores Adam's moments
    in the other layout; the fused step walks them as flat memory with the parameters, so they must match."""
    _, trainer, _, _ = _fit(tmp_path / "first", channels_last=saved_nhwc)
    trainer.save_checkpoint(tmp_path / "first.ckpt")
    _, resumed, model, _ = _fit(tmp_path / "resumed", channels_last=not saved_nhwc, overrides=["trainer.max_epochs=2"],
                                ckpt_path=tmp_path / "first.ckpt")
    assert model.iteration == 2 * ITERATIONS and model.execution.nhwc != saved_nhwc
    weights = [p for p in model.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=NHWC) != saved_nhwc for p in weights if p.shape[1] > 1)
    for optimizer in resumed.optimizers:
        for param, state in optimizer.state.items():
            for key in ("exp_avg", "exp_avg_sq"):
                assert state[key].stride() == param.stride(), (key, param.shape)
