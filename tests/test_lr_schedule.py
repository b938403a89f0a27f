"""The lr schedule (model.lr_schedule, conf/lr_schedule/): its factor at known steps, how the training steps it,
and that a resumed run continues it where it stopped."""
from __future__ import annotations

import math
import re

import pytest
import torch

from gan_lightning.checkpoint import load_gan
from gan_lightning.errors import ConfigError
from gan_lightning.lr_schedule import LRSchedule
from gan_lightning.train import train
from tests.conftest import compose_cfg, event_tags, fit

RING = ["experiment=ring_gan", "data.batches_per_epoch=3", "data.batch_size=32",
        "callbacks.samples.every_n_iterations=0"]
G_LR, D_LR = 1.0e-3, 1.0e-4  # ring_gan's


def test_the_factor_at_known_steps():
    linear = LRSchedule("linear")
    assert [linear.factor(t, 10) for t in (0, 5, 10, 12)] == [1.0, 0.5, 0.0, 0.0]
    held = LRSchedule("linear", decay_start=0.5, final_factor=0.2)
    assert [held.factor(t, 10) for t in (0, 5, 7, 10)] == pytest.approx([1.0, 1.0, 0.68, 0.2])
    cosine = LRSchedule("cosine")
    assert [cosine.factor(t, 10) for t in (0, 5, 10)] == pytest.approx([1.0, 0.5, 0.0])
    assert cosine.factor(2, 10) == pytest.approx((1 + math.cos(math.pi * 0.2)) / 2)
    warm = LRSchedule("constant", warmup=3)
    assert [warm.factor(t, 10) for t in (0, 1, 2, 3, 9)] == [0.25, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.parametrize(("setting", "value", "says"), [
    ("shape", "exponential", "expected one of constant, linear, cosine"),
    ("interval", "batch", "expected one of iteration, epoch"),
    ("decay_start", 1.0, "a fraction of the run in [0, 1)"),
    ("final_factor", -0.1, "must be in [0, 1]"),
    ("warmup", 1.5, "must be an integer >= 0"),
    ("total", 0, "must be an integer >= 1"),
])
def test_bad_settings_are_one_line(setting, value, says):
    with pytest.raises(ConfigError, match=f"model.lr_schedule.{setting}=.*{re.escape(says)}"):
        LRSchedule(**{setting: value})


def _lrs(model) -> tuple[float, float]:
    g_opt, d_opt = model.optimizers()
    return g_opt.param_groups[0]["lr"], d_opt.param_groups[0]["lr"]


def test_a_linear_decay_over_the_run_reaches_its_final_factor_and_is_logged(tmp_path):
    cfg = compose_cfg(tmp_path, [*RING, "trainer.max_epochs=2", "+lr_schedule=linear",
                                 "model.lr_schedule.final_factor=0.25"])
    trainer, model = fit(cfg, seed=0)
    assert model.iteration == 6
    assert _lrs(model) == pytest.approx((0.25 * G_LR, 0.25 * D_LR))  # 6 of 6 iterations: the final factor
    # through train(): the rates go to TensorBoard beside the losses
    train(compose_cfg(tmp_path / "run", [*RING, "+lr_schedule=linear", "trainer.log_every_n_steps=1"]))
    assert {"train/g_lr", "train/d_lr"} <= set(event_tags(tmp_path / "run")["scalars"])


def test_an_epoch_schedule_steps_at_epoch_ends(tmp_path):
    cfg = compose_cfg(tmp_path, [*RING, "trainer.max_epochs=2", "+lr_schedule=linear",
                                 "model.lr_schedule.interval=epoch", "model.lr_schedule.total=4"])
    _, model = fit(cfg, seed=0)
    assert _lrs(model) == pytest.approx((0.5 * G_LR, 0.5 * D_LR))  # 2 of 4 epochs


def test_a_resumed_run_continues_the_schedule(tmp_path):
    schedule = ["+lr_schedule=linear", "model.lr_schedule.total=6", "model.lr_schedule.final_factor=0.5"]
    _, whole = fit(compose_cfg(tmp_path / "whole", [*RING, *schedule, "trainer.max_epochs=2"]), seed=0)
    first = tmp_path / "first"
    train(compose_cfg(first, [*RING, *schedule, "trainer.max_epochs=1"]))
    ckpt = first / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["lr_schedulers"]
    assert [state["last_epoch"] for state in saved] == [3, 3]  # G's and D's, after 3 of 6 iterations
    _, resumed = fit(compose_cfg(tmp_path / "second", [*RING, *schedule, "trainer.max_epochs=2"]),
                     ckpt_path=str(ckpt), seed=0)
    assert resumed.iteration == 6
    # 0.5 x the rates, as the whole run ends; a schedule restarted at the resume would end at 0.75 x
    assert _lrs(whole) == pytest.approx((0.5 * G_LR, 0.5 * D_LR))
    assert _lrs(resumed) == pytest.approx(_lrs(whole))


def test_a_scheduled_runs_checkpoint_is_sampled_and_resumed_through_the_checks(tmp_path):
    """The stored config names the schedule's class: the checkpoint checks of sample and resume accept it."""
    schedule = ["+lr_schedule=cosine", "model.lr_schedule.total=6"]
    train(compose_cfg(tmp_path / "first", [*RING, *schedule, "trainer.max_epochs=1"]))
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert load_gan(ckpt).generate().shape == (2500, 2)
    train(compose_cfg(tmp_path / "second", [*RING, *schedule, "trainer.max_epochs=2", f"ckpt_path={ckpt}"]))
    resumed = torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert [state["last_epoch"] for state in resumed["lr_schedulers"]] == [6, 6]


def test_a_schedule_needs_a_run_length(tmp_path):
    cfg = compose_cfg(tmp_path, [*RING, "+lr_schedule=linear", "trainer.max_epochs=-1", "trainer.max_steps=12"])
    with pytest.raises(ConfigError, match=r"trainer.max_epochs=-1: an lr schedule spans the run's epochs"):
        fit(cfg, seed=0)


def test_the_decay_waits_for_the_warm_up_and_max_steps_shortens_the_run(tmp_path):
    warm = LRSchedule("linear", warmup=4)  # decay_start 0: the decay starts when the warm-up ends
    assert [warm.factor(t, 12) for t in (0, 3, 4, 8, 12)] == pytest.approx([0.2, 0.8, 1.0, 0.5, 0.0])
    # trainer.max_steps=8 counts optimizer steps: 2 per iteration (d_steps 1, g_steps 1), so the run is 4 iterations
    cfg = compose_cfg(tmp_path, [*RING, "trainer.max_epochs=2", "trainer.max_steps=8", "+lr_schedule=linear"])
    _, model = fit(cfg, seed=0)
    assert model.iteration == 4 and _lrs(model) == pytest.approx((0.0, 0.0))
