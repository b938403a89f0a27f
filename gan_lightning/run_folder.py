"""A run folder belongs to one run: claimed before Hydra writes its first file into it, held by a lock for the life
of the process, and refused when it already holds another run's results.

The lock is an ``flock`` on ``<folder>/.run.lock``: the kernel releases it when its process ends, however it ends,
so a dead run's leftover lock file never blocks a new run. A folder that holds a finished or dead run's results
(summary, checkpoints, TensorBoard files) is refused unless the new run resumes a checkpoint from it
(``ckpt_path=<folder>/checkpoints/last.ckpt``) or asks to replace it (``overwrite=true``, which deletes that run's
files first, and only those). What a run refused before training leaves (Hydra's config copies and log) is replaced
without asking.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path

LOCK_NAME = ".run.lock"
# What a run writes into its folder: its results (the project's summary, Lightning's checkpoints, TensorBoard's
# files; a sweep's record) and what any started run leaves (Hydra's config copies and log, temporary files).
RESULT_FILES = ("metrics.json", "checkpoints", "hparams.yaml", "events.out.tfevents.*", "multirun.yaml")
RUN_FILES = (*RESULT_FILES, ".hydra", "train.log", ".metrics.json.tmp", ".write-probe-*", LOCK_NAME)

_held: list = []  # the open lock files of this process: closing one would release its lock


class FolderTaken(Exception):
    """The folder is held by a live run, or holds files that are not this run's to replace."""


def _run_files(folder: Path, sweep: bool, patterns=RUN_FILES) -> list[Path]:
    """The files of a run in ``folder``; in a sweep's folder also its jobs' folders (those holding Hydra's files)."""
    files = {p for pattern in patterns for p in folder.glob(pattern)}
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
        results = _run_files(folder, sweep, RESULT_FILES)
        if results and not resuming and not overwrite:
            raise FolderTaken(f"{key}={folder}: holds another run's results ({results[0].name}, ...); resume it "
                              f"with ckpt_path={folder}/checkpoints/last.ckpt, choose another folder, or set "
                              "overwrite=true to delete them")
        if not resuming:  # what is left is replaced: a refused run's log must not run on into this run's
            for path in (p for p in run_files if p.name != LOCK_NAME):
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
