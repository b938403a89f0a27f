"""``last.ckpt`` at epoch ends, but not more often than every ``min_interval_s`` seconds.

On a GPU with the captured iteration an epoch can be shorter than the save itself: an epoch of MNIST at batch 1024
is 58 iterations, about 0.1 s on an H200, while writing ``mnist_mlp``'s 25 MB checkpoint (read back from the device,
pickled, fsynced) took 150 ms on this project's CPU host. Saving every epoch would then spend most of the run on
checkpoints. The first epoch end and the last one always save; in between, an epoch end saves once
``min_interval_s`` have passed since the last save, so a crash loses about ``min_interval_s`` plus an epoch of
training (plus the save in progress, if any).
"""
from __future__ import annotations

from time import monotonic

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from gan_lightning.errors import is_number, require


def is_last_epoch(trainer: L.Trainer) -> bool:
    """At an epoch's end: whether the fit loop stops after it (max_epochs, max_steps, or a stop request such as
    ``max_time``'s; Lightning runs checkpoint callbacks after the others, so such a request is already made). A stop
    request that min_epochs or min_steps overrule is not a last epoch; the epoch count is already incremented here."""
    loop = trainer.fit_loop
    return ((trainer.should_stop and loop._can_stop_early)
            or (loop.max_epochs not in (None, -1) and trainer.current_epoch + 1 >= loop.max_epochs)
            or (loop.max_steps not in (None, -1) and trainer.global_step >= loop.max_steps))


class EpochCheckpoint(ModelCheckpoint):
    def __init__(self, *args, min_interval_s: float = 0.0, **kwargs) -> None:
        require(is_number(min_interval_s) and min_interval_s >= 0, "callbacks.checkpoint.min_interval_s",
                min_interval_s, "seconds between checkpoint saves must be >= 0")
        super().__init__(*args, **kwargs)
        self.min_interval_s = min_interval_s
        self._last_save: float | None = None  # monotonic() at this run's last save

    @property
    def state_key(self) -> str:
        # ModelCheckpoint's key: checkpoints written before this class existed restore its state, and the reverse
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._last_save = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = (self._last_save is None or is_last_epoch(trainer)
               or monotonic() - self._last_save >= self.min_interval_s)
        # Every rank takes rank zero's decision: saving is collective, and the ranks' clocks differ.
        if trainer.strategy.broadcast(due, src=0):
            super().on_train_epoch_end(trainer, pl_module)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._last_save = monotonic()
