"""A run folder belongs to one run: a live run's folder, a finished run's results and files no run wrote are
refused with one line; a dead run's lock does not block; a folder named by the time to the second that is taken
becomes <name>_1; overwrite=true replaces a previous run's files and nothing else."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan_lightning.hydra_callbacks import CheckOutputFolder
from gan_lightning.run_folder import LOCK_NAME, FolderTaken, claim
from tests.conftest import run_cli, start_cli

QUICK = ["data.batches_per_epoch=2", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
         "callbacks.samples.every_n_iterations=0"]


def _hydra_config(folder: Path, user_named: bool, **top) -> OmegaConf:
    overrides = [f"hydra.run.dir={folder}"] if user_named else []
    return OmegaConf.create({"ckpt_path": None, "overwrite": False, **top,
                             "hydra": {"run": {"dir": str(folder)}, "overrides": {"hydra": overrides}}})


def _claim_run(config) -> None:
    CheckOutputFolder().on_run_start(config)


def test_a_folder_held_by_a_live_run_is_refused_and_a_default_named_one_moves_aside(tmp_path, capsys):
    folder = tmp_path / "outputs" / "2026-12-03_10-00-00"
    claim(folder, "hydra.run.dir")  # a live run (this process holds the lock through another open file)
    with pytest.raises(SystemExit) as stop:
        _claim_run(_hydra_config(folder, user_named=True))
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: hydra.run.dir={folder}: in use by a run that is still going (pid ")
    assert len(error.splitlines()) == 1

    config = _hydra_config(folder, user_named=False)  # two runs started in the same second
    _claim_run(config)
    assert config.hydra.run.dir == f"{folder}_1" and (Path(f"{folder}_1") / LOCK_NAME).is_file()
    assert config.hydra.overrides.hydra[-1] == f"hydra.run.dir={folder}_1"  # what a sweep's jobs compose from


def test_a_folder_with_other_files_is_refused_even_with_overwrite(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    (folder / "metrics.json").write_text("{}")
    with pytest.raises(FolderTaken, match="holds files that no run wrote \\(e.g. notes.txt\\)"):
        claim(folder, "hydra.run.dir", overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me" and (folder / "metrics.json").exists()


@pytest.mark.slow
def test_two_runs_in_one_folder_never_mix_their_files(tmp_path):
    """The second run into a finished run's folder is refused before Hydra writes anything; overwrite=true then
    replaces the first run's files with its own; a resume from the folder's checkpoint continues it in place."""
    run_dir = tmp_path / "run"
    refused = run_cli([*QUICK, "model.d_steps=0", f"hydra.run.dir={run_dir}"], tmp_path)
    assert refused.returncode == 2  # leaves Hydra's files, no results: the corrected command may use the folder
    first = run_cli([*QUICK, f"hydra.run.dir={run_dir}"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "d_steps=0" not in (run_dir / "train.log").read_text() + (run_dir / ".hydra" / "overrides.yaml").read_text()
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != LOCK_NAME}

    second = run_cli([*QUICK, "data=ring", f"hydra.run.dir={run_dir}"], tmp_path)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"error: hydra.run.dir={run_dir}: holds another run's results (checkpoints, ...); resume it with "
        f"ckpt_path={run_dir}/checkpoints/last.ckpt, choose another folder, or set overwrite=true to delete them"]
    assert {p: p.read_bytes() for p in before} == before  # not one byte of the first run touched

    replaced = run_cli([*QUICK, "data=ring", "overwrite=true", f"hydra.run.dir={run_dir}"], tmp_path)
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert "data=ring" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # the first run's events are gone
    assert "data=ring" in json.loads((run_dir / "metrics.json").read_text())["overrides"]

    resumed = run_cli([*QUICK[:1], "trainer.max_epochs=2", "data=ring", "trainer.enable_progress_bar=false",
                       "callbacks.samples.every_n_iterations=0", f"hydra.run.dir={run_dir}",
                       f"ckpt_path={run_dir}/checkpoints/last.ckpt"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"


@pytest.mark.slow
def test_a_live_run_holds_its_folder_and_a_killed_ones_lock_does_not_block(tmp_path):
    run_dir = tmp_path / "run"
    live = start_cli(["data.batches_per_epoch=100", "trainer.max_epochs=100", "trainer.enable_progress_bar=false",
                      "callbacks.samples.every_n_iterations=0", "torch_threads=1", f"hydra.run.dir={run_dir}"],
                     tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and live.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        second = run_cli([*QUICK, "overwrite=true", f"hydra.run.dir={run_dir}"], tmp_path)
        assert second.returncode == 2
        assert f"hydra.run.dir={run_dir}: in use by a run that is still going (pid {live.pid} on " in second.stderr
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait(timeout=30)
    after_kill = run_cli([*QUICK, "overwrite=true", f"hydra.run.dir={run_dir}"], tmp_path)
    assert after_kill.returncode == 0, after_kill.stderr[-3000:]
