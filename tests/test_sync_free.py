"""The steady-state iteration never makes the host wait for the device: no tensor is read back (item, tolist,
bool, ...) except at the checks that come with each log write, epoch end and checkpoint. On a GPU each such read
stalls the host until the device has caught up; on a CPU the same reads are visible through torch's function
hooks, so this is tested everywhere."""
from __future__ import annotations

import sys

import lightning as L
import pytest
import torch
from torch.overrides import TorchFunctionMode

from gan_lightning.train import train
from tests.conftest import compose_cfg

# Tensor methods that copy a value to the host (on a GPU: wait for the device).
HOST_READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__float__,
              torch.Tensor.__int__, torch.Tensor.__index__, torch.Tensor.numpy, torch.Tensor.cpu}


class HostReads(TorchFunctionMode):
    """Records the host reads made outside Lightning's logger connector. That one converts the logged progress-bar
    values after every batch; the GAN hands it host copies (read once, at the check), which the CUDA test below
    verifies where a device and a host tensor differ."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS and not _called_from("logger_connector"):
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


def _called_from(module_name: str) -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.endswith(f"{module_name}.py"):
            return True
        frame = frame.f_back
    return False


class RecordHostReads(L.Callback):
    """Records the host reads of each whole loop turn, from one batch start to the next (loader, transfer, step,
    every callback), keyed by the iteration count after that turn's step."""

    def __init__(self) -> None:
        self.turns: dict[int, list[str]] = {}
        self.mode: HostReads | None = None

    def _close(self, pl_module) -> None:
        if self.mode is not None:
            self.mode.__exit__(None, None, None)
            self.turns[pl_module.iteration] = self.mode.calls
            self.mode = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._close(pl_module)
        if pl_module.iteration >= 2:  # after the first iterations (lazy optimizer state, first log)
            self.mode = HostReads()
            self.mode.__enter__()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._close(pl_module)


@pytest.mark.parametrize("data", ["gaussian", "mnist"])
def test_iterations_between_checks_read_nothing_back_from_the_device(data, tmp_path, mnist_dir):
    every = 5
    data_args = (["data=mnist", f"data.data_dir={mnist_dir}", "data.batch_size=4", "~callbacks.image_metrics"]
                 if data == "mnist" else ["data.batches_per_epoch=24", "data.batch_size=16"])
    cfg = compose_cfg(tmp_path, [*data_args, f"trainer.log_every_n_steps={every}", "model.ema_half_life_images=100",
                                 "callbacks.samples.every_n_iterations=0"])
    recorder = RecordHostReads()
    train(cfg, extra_callbacks=[recorder])
    turns = recorder.turns
    assert len(turns) >= 15
    reading = sorted(iteration for iteration, calls in turns.items() if calls)
    # The turns that read are exactly those that check and write the logged means.
    assert reading == [i for i in sorted(turns) if i % every == 0], {i: turns[i] for i in reading}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_iterations_between_checks_never_synchronize(tmp_path, mnist_dir):
    """CUDA's sync debug mode raises on any synchronizing call (item, a pageable copy, ...) in the training steps
    between two checks (from each batch's start to its end: the step and what Lightning does around it)."""

    class NoSyncBetweenChecks(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            due = (pl_module.iteration + 1) % trainer.log_every_n_steps == 0  # this turn checks and logs
            torch.cuda.set_sync_debug_mode("default" if due or pl_module.iteration < 2 else "error")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            torch.cuda.set_sync_debug_mode("default")

    cfg = compose_cfg(tmp_path, ["trainer=gpu", "data=mnist", f"data.data_dir={mnist_dir}", "data.batch_size=4",
                                 "~callbacks.image_metrics", "trainer.log_every_n_steps=5",
                                 "callbacks.samples.every_n_iterations=0"])
    try:
        train(cfg, extra_callbacks=[NoSyncBetweenChecks()])
    finally:
        torch.cuda.set_sync_debug_mode("default")
