"""One progress bar for the whole run: the iterations of every epoch, with the run's ETA (Lightning's bar starts
again at every epoch, and shows a stray "Training: 0/?" before the first)."""
from __future__ import annotations

import math
import sys

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm


class RunProgressBar(TQDMProgressBar):
    """``Epoch 3/25: 41%|████ | 2410/5875 [01:02<01:29, 38.6it/s, train/d_loss=...]``: iterations of the whole run
    (continued after a resume), the description naming the epoch. Redrawn every ``refresh_rate`` iterations."""

    def init_train_tqdm(self) -> Tqdm:
        trainer = self.trainer
        per_epoch, epochs = self.total_train_batches, trainer.max_epochs
        finite = isinstance(per_epoch, int) or (isinstance(per_epoch, float) and math.isfinite(per_epoch))
        module = trainer.lightning_module
        if finite:  # loader batches -> iterations
            per_epoch = per_epoch * module.execution.iterations_per_batch
        total = int(per_epoch) * epochs if finite and epochs is not None and epochs > 0 else None
        if trainer.max_steps > 0:  # max_steps counts optimizer steps: d_steps + g_steps per iteration, checked at
            # the end of each loader batch (of iterations_per_batch iterations)
            per_batch = module.execution.iterations_per_batch
            steps_per_batch = (module.hparams.d_steps + module.hparams.g_steps) * per_batch
            by_steps = math.ceil(trainer.max_steps / steps_per_batch) * per_batch
            total = by_steps if total is None else min(total, by_steps)
        done = module.iteration  # a resumed run starts where it was
        return Tqdm(desc=self._epoch(trainer), total=total, initial=done, position=2 * self.process_position,
                    disable=self.is_disabled, leave=True, dynamic_ncols=True, file=sys.stdout, smoothing=0,
                    bar_format=self.BAR_FORMAT)

    def on_train_epoch_start(self, trainer: L.Trainer, *_) -> None:
        self.train_progress_bar.set_description(self._epoch(trainer))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        bar = self.train_progress_bar
        before, bar.n = bar.n, pl_module.iteration  # counts iterations; drawn every refresh_rate and at epoch ends
        if (bar.n // self.refresh_rate > before // self.refresh_rate or bar.n == bar.total
                or batch_idx + 1 == self.total_train_batches):
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # also redraws

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    @staticmethod
    def _epoch(trainer: L.Trainer) -> str:
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        return f"Epoch {trainer.current_epoch + 1}/{epochs}"
