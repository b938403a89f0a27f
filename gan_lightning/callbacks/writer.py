"""The TensorBoard writer the callbacks draw into (None when the run has no TensorBoard logger)."""
from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger


def tensorboard_writer(trainer: L.Trainer):
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None
