"""The epoch-end checkpoint is throttled by time: the first and last epoch ends always save, the ones between only
once ``callbacks.checkpoint.min_interval_s`` have passed; checkpoints keep ModelCheckpoint's state key."""
from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import gan_lightning.callbacks.epoch_checkpoint as epoch_checkpoint
from gan_lightning.callbacks import EpochCheckpoint
from gan_lightning.train import train
from tests.conftest import compose_cfg

COMMON = ["data.batches_per_epoch=2", "data.batch_size=50", "model.d_steps=1", "model.g_steps=1",
          "callbacks.samples.every_n_iterations=0"]


class SavedIterations(L.Callback):
    """The iteration ``last.ckpt`` holds, read at each epoch's start (after the previous epoch's save) and at the
    end of training; ``seconds_per_epoch`` advances a fake clock at every epoch start."""

    def __init__(self, last, clock=None, seconds_per_epoch: float = 0.0) -> None:
        self.last, self.clock, self.seconds_per_epoch = last, clock, seconds_per_epoch
        self.seen: list[int | None] = []

    def _read(self) -> None:
        self.seen.append(torch.load(self.last, weights_only=True)["gan_iteration"] if self.last.exists() else None)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self._read()
        if self.clock is not None:
            self.clock[0] += self.seconds_per_epoch

    def on_train_end(self, trainer, pl_module) -> None:
        self._read()


@pytest.fixture
def fake_clock(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(epoch_checkpoint, "monotonic", lambda: clock[0])
    return clock


@pytest.mark.parametrize(("interval", "seconds_per_epoch", "expected"), [
    (0, 1.0, [2, 4, 6, 8, 10]),                # every epoch end
    (10, 6.0, [2, 2, 6, 6, 10]),               # epoch 0; epoch 2, 12 s after it; the last
    (3600, 6.0, [2, 2, 2, 2, 10]),             # only the first and the last
])
def test_epoch_ends_save_at_most_once_per_interval(tmp_path, fake_clock, interval, seconds_per_epoch, expected):
    probe = SavedIterations(tmp_path / "checkpoints" / "last.ckpt", fake_clock, seconds_per_epoch)
    train(compose_cfg(tmp_path, [*COMMON, "trainer.max_epochs=5", f"callbacks.checkpoint.min_interval_s={interval}"]),
          extra_callbacks=[probe])
    assert probe.seen == expected


class StopAtIteration(L.Callback):
    """Asks the Trainer to stop, as ``max_time`` or early stopping would, once iteration ``at`` is done."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        if pl_module.iteration >= self.at:
            trainer.should_stop = True


@pytest.mark.parametrize(("stop", "expected_last"), [
    (["trainer.max_epochs=-1", "trainer.max_steps=10"], 5),     # max_steps (optimizer steps: 2 per iteration)
    (["trainer.max_epochs=-1", "trainer.max_steps=-1"], 3),     # a stop request after iteration 3
])
def test_a_run_that_stops_mid_epoch_saves_where_it_stopped(tmp_path, stop, expected_last):
    probe = SavedIterations(tmp_path / "checkpoints" / "last.ckpt")
    train(compose_cfg(tmp_path, [*COMMON, *stop, "callbacks.checkpoint.min_interval_s=3600"]),
          extra_callbacks=[probe, StopAtIteration(3)] if expected_last == 3 else [probe])
    assert probe.seen[0] == 2 and probe.seen[-1] == expected_last
    assert set(probe.seen[1:-1]) <= {2}  # nothing between the first epoch and the end


def test_state_key_is_model_checkpoints(tmp_path):
    """Checkpoints written with Lightning's ModelCheckpoint resume with this one, and the reverse."""
    kwargs = {"dirpath": tmp_path, "filename": "last", "save_top_k": 1, "every_n_epochs": 1}
    assert EpochCheckpoint(min_interval_s=5, **kwargs).state_key == ModelCheckpoint(**kwargs).state_key


def test_a_stop_request_that_min_epochs_overrules_keeps_the_throttle(tmp_path):
    """Early stopping asked for before min_epochs: the epochs that still run are not last epochs."""
    probe = SavedIterations(tmp_path / "checkpoints" / "last.ckpt")
    train(compose_cfg(tmp_path, [*COMMON, "trainer.max_epochs=10", "+trainer.min_epochs=4",
                                 "callbacks.checkpoint.min_interval_s=3600"]),
          extra_callbacks=[probe, StopAtIteration(1)])
    assert probe.seen == [2, 2, 2, 8]
