"""Checks that must run before Hydra itself acts: Hydra creates the run or sweep folder before ``main()`` starts,
so a folder that cannot be created would otherwise end in Hydra's traceback."""
from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lightning.preflight import why_not_creatable


class CheckOutputFolder(Callback):
    """Nothing is made here: ``${now:...}`` in the folder name resolves again, possibly to another second, when
    Hydra makes the folder."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")

    @staticmethod
    def _check(folder: str, key: str) -> None:
        why = why_not_creatable(Path(folder))
        if why is not None:
            print(f"error: {key}={folder}: cannot create the run folder there ({why})", file=sys.stderr)
            sys.exit(2)
