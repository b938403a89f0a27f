"""Test helper loaded into a real DDP run through the config (+callbacks.rank_recorder._target_=...)."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


class RankRecorder(L.Callback):
    """Each rank saves its final G and D parameters and the first real batch it saw to ``<dirpath>/rank<r>.pt``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.first_batch: torch.Tensor | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.first_batch is None:
            self.first_batch = (batch[0] if isinstance(batch, (list, tuple)) else batch).detach().cpu()

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "generator": [p.detach().cpu() for p in pl_module.generator.parameters()],
                "discriminator": [p.detach().cpu() for p in pl_module.discriminator.parameters()],
                "first_batch": self.first_batch,
                "iteration": pl_module.iteration,
                "world_size": trainer.world_size,
            },
            self.dirpath / f"rank{trainer.global_rank}.pt",
        )
