"""What must happen before Hydra itself acts: Hydra creates the run or sweep folder and writes its config copies
there before ``main()`` starts, so a folder that cannot be created would otherwise end in Hydra's traceback, and a
folder that another run holds would get this run's files mixed into it."""
from __future__ import annotations

import atexit
import os
import re
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from lightning.fabric.utilities.rank_zero import _get_rank
from omegaconf import DictConfig, open_dict, read_write

from gan_lightning import SWEEP_NAME_VARIABLE, SWEPT_KEYS_VARIABLE, swept_keys
from gan_lightning.preflight import why_not_creatable
from gan_lightning.run_folder import FolderTaken, claim, is_inside


class CheckOutputFolder(Callback):
    """Claims the run (or sweep) folder for this run: one clear line when it cannot be created, is in use by a live
    run, or holds another run's results (``gan_lightning.run_folder``). A folder named by the default pattern (the
    time to the second) that is taken, e.g. by a run started in the same second, becomes ``<name>_1``, ``_2``, ...;
    a folder the user named is refused. ``${now:...}`` resolves once per config: Hydra makes the folder read here.
    DDP's extra ranks, which re-run the command with the same folder, use the folder rank zero holds."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._claim(config, "run", resuming=is_inside(config.get("ckpt_path"), Path(config.hydra.run.dir)))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._claim(config, "sweep", resuming=False)

    @staticmethod
    def _claim(config: DictConfig, mode: str, resuming: bool) -> None:
        key = f"hydra.{mode}.dir"
        folder = str(config.hydra[mode].dir)
        why = why_not_creatable(Path(folder))
        if why is not None:
            _refuse(f"error: {key}={folder}: cannot create the run folder there ({why})")
        if (_get_rank() or 0) > 0:
            return
        named_by_user = any(o.split("=", 1)[0].lstrip("+~") == key for o in config.hydra.overrides.hydra)
        overwrite = config.get("overwrite", False)
        if not isinstance(overwrite, bool):
            _refuse(f"error: overwrite={overwrite}: must be true or false")
        for attempt in range(100):
            candidate = folder if attempt == 0 else f"{folder}_{attempt}"
            try:
                claim(Path(candidate), key, resuming=resuming, overwrite=overwrite and attempt == 0,
                      sweep=mode == "sweep")
            except FolderTaken as err:
                if named_by_user or resuming or overwrite:
                    _refuse(f"error: {err}")
                continue
            except OSError as err:
                _refuse(f"error: {key}={candidate}: cannot create the run folder there ({err.strerror or err})")
            if candidate != folder:  # the job configs of a sweep are composed again from the hydra overrides
                with read_write(config.hydra), open_dict(config.hydra):
                    config.hydra[mode].dir = candidate
                    config.hydra.overrides.hydra.append(f"{key}={_quoted(candidate)}")
            return
        _refuse(f"error: {key}={folder}: it and 99 numbered variants are taken")


def _quoted(value: str) -> str:
    """``value`` as an override's value (Hydra's grammar treats quotes, spaces, brackets, ... specially)."""
    return value if re.fullmatch(r"[\w/.@+-]+", value) else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _refuse(message: str) -> None:
    print(message, file=sys.stderr)
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
