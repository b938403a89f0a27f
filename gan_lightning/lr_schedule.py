"""Learning-rate schedules for G's and D's optimizers: each configured lr times a factor of the training progress.

One schedule serves both nets (each keeps its own lr, G's ``model.g_lr`` and D's ``model.d_lr``, scaled by the same
factor). It is stepped after every iteration (``interval: iteration``) or every epoch (``interval: epoch``), and it
is a torch ``LambdaLR`` that Lightning saves in every checkpoint and restores on resume, so a resumed run continues
the schedule where it stopped.
"""
from __future__ import annotations

import math

import torch

from gan_lightning.errors import is_int, is_number, require, require_int

SHAPES = ("constant", "linear", "cosine")
INTERVALS = ("iteration", "epoch")


class LRSchedule:
    """The factor at step t of T (iterations or epochs, as ``interval`` says):

    - warm-up: rises linearly from 1 / (warmup + 1) to 1 over the first ``warmup`` steps;
    - then 1 until ``decay_start`` (a fraction of T; never before the warm-up ends);
    - then falls to ``final_factor`` at T: in a straight line (``shape: linear``, as pix2pix and CycleGAN decay to 0
      over their second half) or a half cosine (``shape: cosine``); ``shape: constant`` keeps 1.

    T is ``total`` when set, else the run's length from the Trainer (``trainer.max_epochs`` epochs, or fewer
    iterations when ``trainer.max_steps`` ends the run first): set ``total`` to keep the same schedule when a
    resumed run is given more epochs.
    """

    def __init__(self, shape: str = "linear", interval: str = "iteration", decay_start: float = 0.0,
                 final_factor: float = 0.0, warmup: int = 0, total: int | None = None) -> None:
        key = "model.lr_schedule."
        require(shape in SHAPES, key + "shape", shape, f"expected one of {', '.join(SHAPES)}")
        require(interval in INTERVALS, key + "interval", interval, f"expected one of {', '.join(INTERVALS)}")
        require(is_number(decay_start) and 0 <= decay_start < 1, key + "decay_start", decay_start,
                "a fraction of the run in [0, 1)")
        require(is_number(final_factor) and 0 <= final_factor <= 1, key + "final_factor", final_factor,
                "must be in [0, 1]")
        require(is_int(warmup) and warmup >= 0, key + "warmup", warmup, "must be an integer >= 0")
        if total is not None:
            require_int(key + "total", total)
        self.shape, self.interval = shape, interval
        self.decay_start, self.final_factor, self.warmup, self.total = decay_start, final_factor, warmup, total

    def factor(self, step: int, total: int) -> float:
        """The lr factor after ``step`` of ``total`` steps."""
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        start = max(self.decay_start * total, self.warmup)
        if self.shape == "constant" or step <= start:
            return 1.0
        progress = min(1.0, (step - start) / max(total - start, 1))
        fall = progress if self.shape == "linear" else (1 - math.cos(math.pi * progress)) / 2
        return 1.0 - (1.0 - self.final_factor) * fall

    def build(self, optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
        """The scheduler of one optimizer over ``total`` steps (``self.total`` when set)."""
        total = self.total or total
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: self.factor(step, total))
