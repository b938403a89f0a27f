"""A run folder belongs to one run: claimed before Hydra writes its first file into it, held by a lock for the life
of the process, and refused when it already holds another run's results.

The lock is an ``flock`` on ``<folder>/.run.lock``: the kernel releases it when its process ends, however it ends,
so a dead run's leftover lock file never blocks a new run. A folder that holds a finished or dead run's files is
refused unless the new run resumes a checkpoint from it (``ckpt_path=<folder>/checkpoints/last.ckpt``) or asks to
replace it (``overwrite=true``, which deletes that run's files first, and only those).
"""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path

LOCK_NAME = ".run.lock"
# What a run writes into its folder (Hydra's config copies and log, the project's summary, Lightning's
# checkpoints and TensorBoard's files), and the temporary files of atomic writes.
RUN_FILES = (".hydra", "train.log", "metrics.json", ".metrics.json.tmp", "checkpoints", "hparams.yaml",
             "multirun.yaml", "events.out.tfevents.*", ".write-probe-*", LOCK_NAME)

_held: list = []  # the open lock files of this process: closing one would release its lock


class FolderTaken(Exception):
    """The folder is held by a live run, or holds files that are not this run's to replace."""


def _run_files(folder: Path, sweep: bool) -> list[Path]:
    """The files of a run in ``folder``; in a sweep's folder also its jobs' folders (those holding Hydra's files)."""
    files = {p for pattern in RUN_FILES for p in folder.glob(pattern)}
    if sweep:
        files |= {p for p in folder.iterdir() if p.is_dir() and (p / ".hydra").is_dir()}
    return sorted(files)


def _holder(lock_file: Path) -> str:
    text = lock_file.read_text().strip() if lock_file.is_file() else ""
    return f" ({text})" if text else ""


def claim(folder: Path, key: str, resuming: bool = False, overwrite: bool = False, sweep: bool = False) -> None:
    """Make ``folder`` this process's run folder (``sweep``: a sweep's folder), or raise FolderTaken with the reason
    in one line.

    ``resuming``: the run resumes a checkpoint inside ``folder`` (its files are this run's to continue).
    ``overwrite``: the files a previous run left in ``folder`` are deleted first."""
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_NAME
    handle = open(lock_path, "a+")  # noqa: SIM115 - held open until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FolderTaken(f"{key}={folder}: in use by a run that is still going{_holder(lock_path)}; "
                          "choose another folder or wait for it to end") from None
    try:
        run_files = _run_files(folder, sweep)
        others = [p for p in folder.iterdir() if p not in run_files]
        if others:
            raise FolderTaken(f"{key}={folder}: holds files that no run wrote (e.g. {others[0].name}); a run folder "
                              "must be new, empty, or a previous run's")
        previous = [p for p in run_files if p.name != LOCK_NAME]
        if previous and not resuming:
            if not overwrite:
                raise FolderTaken(f"{key}={folder}: holds another run's results ({previous[0].name}, ...); resume it "
                                  f"with ckpt_path={folder}/checkpoints/last.ckpt, choose another folder, or set "
                                  "overwrite=true to delete them")
            for path in previous:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    _held.append(handle)


def is_inside(path: str | os.PathLike | None, folder: Path) -> bool:
    return path is not None and Path(path).absolute().resolve().is_relative_to(folder.absolute().resolve())
