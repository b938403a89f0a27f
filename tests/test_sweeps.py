"""Sweeps beyond one process: the joblib launcher (2 jobs at once) and an Optuna search of 2 trials."""
from __future__ import annotations

import pytest
import yaml

from tests.conftest import run_cli, sweep_jobs

TINY = ["trainer=cpu", "trainer.max_epochs=1", "data.batches_per_epoch=3", "trainer.enable_progress_bar=false",
        "torch_threads=1"]


@pytest.mark.slow
def test_joblib_launcher_runs_two_jobs_at_once(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "hydra/launcher=parallel", "model.g_lr=1e-4,2e-4", *TINY, f"hydra.sweep.dir={sweep}"],
                  tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    jobs = sweep_jobs(sweep)
    assert sorted(p.name for p in jobs.values()) == ["0_model.g_lr@0.0001", "1_model.g_lr@0.0002"]
    for job in jobs.values():
        assert list(job.rglob("events.out.tfevents.*"))
        assert (job / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_optuna_search_optimises_the_returned_metric(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["hparams_search=gaussian_optuna", "hydra.sweeper.n_trials=2", *TINY, f"hydra.sweep.dir={sweep}"],
                  tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"model.g_lr", "model.d_lr", "model.d_steps"}
    assert 0 < results["best_value"] < 10  # a W1 distance of G's samples to N(4, 1.25)
    names = sorted(p.name for p in sweep_jobs(sweep).values())  # the trial's sampled values name each folder
    assert [n.split("_", 1)[0] for n in names] == ["0", "1"]
    assert all(all(k in n for k in ("model.d_lr@", "model.d_steps@", "model.g_lr@")) for n in names), names
