"""Store the experiment's model and data config in every checkpoint, so a resume can check it belongs there."""
from __future__ import annotations

from typing import Any

import lightning as L


class RunConfigInCheckpoint(L.Callback):
    def __init__(self, experiment_config: dict[str, Any]) -> None:
        self.experiment_config = experiment_config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_config"] = self.experiment_config
