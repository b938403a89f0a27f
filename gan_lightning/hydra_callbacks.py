"""Checks that must run before Hydra itself acts: Hydra creates the run or sweep folder before ``main()`` starts,
so a folder that cannot be created would otherwise end in Hydra's traceback."""
from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lightning import SWEEP_NAME_VARIABLE, SWEPT_KEYS_VARIABLE, swept_keys
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


class SayWhereTheSweepWent(Callback):
    """At the end of a sweep, also one that a failed job ends: its folder, the report command and the TensorBoard
    command. At its start, it records the swept settings for the job folders' names (``sweep_job_dir``)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        os.environ[SWEPT_KEYS_VARIABLE] = ",".join(swept_keys(config.hydra.overrides.task))
        os.environ[SWEEP_NAME_VARIABLE] = str(config.name)  # every job lands in this sweep's folder
        sweep_dir = str(config.hydra.sweep.dir)  # ${now:...} is cached: the folder Hydra makes
        atexit.register(lambda: print(f"Sweep folder: {sweep_dir}\n  report:      python -m gan_lightning.report "
                                      f"{sweep_dir}\n  TensorBoard: tensorboard --logdir {sweep_dir}", flush=True))
