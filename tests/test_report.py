"""The sweep report from job folders as train() leaves them: a table, and a plot for one or two swept settings."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gan_lightning.report import main, mean_text, report
from tests.conftest import REPO


def _job(sweep: Path, name: str, overrides: list[str], w1: float | None, status: str = "ok") -> None:
    (sweep / name / ".hydra").mkdir(parents=True)
    # As Hydra writes it: UTF-8, non-ASCII text as it is
    (sweep / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides, allow_unicode=True),
                                                           encoding="utf-8")
    summary = {"status": status, "metrics": {} if w1 is None else {"metrics/w1": w1}, "overrides": overrides}
    (sweep / name / "metrics.json").write_text(json.dumps(summary))


def test_one_swept_setting_is_plotted_against_its_values(tmp_path):
    for i, (lr, w1) in enumerate([("0.0001", 0.3), ("0.000125", 0.2), ("0.001", 0.25)]):
        _job(tmp_path, f"{i}_model.g_lr={lr}", ["trainer=cpu", f"model.g_lr={lr}"], w1)
    text = report(tmp_path)
    assert f"Plot: {tmp_path / 'report.png'}" in text and (tmp_path / "report.png").stat().st_size > 0
    rows = [line for line in text.splitlines() if line.startswith("| ") and "job" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["1", "2", "0"]  # best W1 first, shown by job number


def test_two_swept_settings_get_a_heat_map_and_three_a_reason(tmp_path):
    two = tmp_path / "two"
    for i, (g, d) in enumerate([(1e-4, 1e-4), (1e-4, 2e-4), (2e-4, 1e-4), (2e-4, 2e-4)]):
        _job(two, f"{i}_x", [f"model.g_lr={g}", f"model.d_lr={d}"], 0.1 * (i + 1))
    assert "Plot:" in report(two) and (two / "report.png").stat().st_size > 0

    three = tmp_path / "three"
    for i in range(2):
        _job(three, f"{i}_x", [f"model.g_lr={i + 1}e-4", f"model.d_lr={i + 1}e-4", f"model.d_steps={i + 1}"], 0.1)
    text = report(three)
    assert "No plot: a plot needs one or two numeric swept settings; this sweep varies 3" in text
    assert not (three / "report.png").exists()


def test_damaged_job_files_are_marked_not_fatal(tmp_path, capsys):
    _job(tmp_path, "0_a", ["model.g_lr=1e-4"], 0.2)
    _job(tmp_path, "1_b", ["model.g_lr=2e-4"], 0.1)
    (tmp_path / "1_b" / "metrics.json").write_text('{"status": "ok", "metr')  # truncated
    _job(tmp_path, "2_c", ["model.g_lr=3e-4"], None, status="interrupted")
    (tmp_path / "2_c" / ".hydra" / "overrides.yaml").unlink()
    _job(tmp_path, "3_d", ["model.g_lr=4e-4"], 0.3)
    (tmp_path / "3_d" / ".hydra" / "overrides.yaml").write_text("7\n")  # valid YAML, not a list of overrides
    main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "| 1 | UNREADABLE |" in out and "job 1: metrics.json:" in out
    assert "| 2 | UNREADABLE |" in out and "job 2: .hydra/overrides.yaml:" in out
    assert "| 3 | UNREADABLE |" in out
    assert "job 3: .hydra/overrides.yaml: a list of overrides expected, found int" in out
    assert "| 0 | ok |" in out


def _report_command(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gan_lightning.report", *args], capture_output=True, text=True,
                          encoding="utf-8", timeout=120, env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_non_ascii_swept_values_are_escaped_on_a_terminal_that_cannot_show_them(tmp_path):
    for i, name in enumerate(["naïve ü", "plain"]):
        _job(tmp_path, f"{i}_x", [f"+name={name}"], 0.1 * (i + 1))
    result = _report_command([str(tmp_path)], PYTHONIOENCODING="ascii")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| 0 | ok | na\\xefve \\xfc | 0.1 |" in result.stdout
    assert "| 0 | ok | naïve ü | 0.1 |" in (tmp_path / "report.md").read_text(encoding="utf-8")  # the file keeps it


def test_a_metric_no_job_measured_is_refused_naming_those_they_have(tmp_path):
    for i in range(2):
        _job(tmp_path, f"{i}_x", [f"model.g_lr={i + 1}e-4"], 0.1)
    result = _report_command([str(tmp_path), "--metric", "metrics/fdi"])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: --metric=metrics/fdi: no job measured it; the jobs have metrics/w1\n"
    assert not any(tmp_path.glob("report.*"))


# Sweeps over seeds: the jobs that differ only by seed are one setting, shown as mean ± standard error.

def _seeded_job(sweep: Path, number: int, settings: list[str], seed: int, metrics: dict | None,
                status: str = "ok", error: str | None = None) -> None:
    overrides = ["trainer=cpu", *settings, f"seed={seed}"]
    name = f"{number}_" + "+".join(o.replace("=", "@") for o in [*settings, f"seed={seed}"])  # as Hydra names it
    (sweep / name / ".hydra").mkdir(parents=True)
    (sweep / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if status != "incomplete":  # a killed job leaves no metrics.json
        summary = {"status": status, "metrics": metrics or {}, "error": error, "overrides": overrides}
        (sweep / name / "metrics.json").write_text(json.dumps(summary))


def _cells(lines: list[str]) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines if line.startswith("| ")]


def _tables(text: str) -> tuple[list[list[str]], list[list[str]]]:
    """The per-setting table and the per-job table of a seeds report, each with its header row."""
    settings, jobs = text.split("\n\nJobs:\n\n")
    return _cells(settings.splitlines()), _cells(jobs.split("\n\n")[0].splitlines())


def _std_error(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 / len(values) ** 0.5


def test_jobs_that_differ_only_by_seed_are_one_row_of_means_and_standard_errors(tmp_path):
    w1 = {"1e-4": [0.2, 0.4, 0.6], "2e-4": [0.1, 0.2, 0.3]}
    modes = {"1e-4": [8, 8, 7], "2e-4": [8, 8, 8]}
    number = 0
    for lr in ("1e-4", "2e-4"):
        for seed in range(3):
            _seeded_job(tmp_path, number, [f"model.g_lr={lr}"], seed,
                        {"metrics/w1": w1[lr][seed], "metrics/modes_covered": modes[lr][seed]})
            number += 1
    text = report(tmp_path)
    assert text.startswith(f"Sweep {tmp_path}: 6 jobs, 2 settings over seeds, ranked by the mean of metrics/w1")
    settings, jobs = _tables(text)
    assert settings[0] == ["model.g_lr", "n", "not finished", "metrics/w1", "metrics/modes_covered"]
    # By hand: 1e-4 has W1 mean 0.4, sample std 0.2, s.e. 0.2 / sqrt(3) = 0.115; modes mean 23/3, s.e. 1/3.
    assert settings[1:] == [["2e-4", "3", "", "0.20 ± 0.06", "8 ± 0"],
                            ["1e-4", "3", "", "0.40 ± 0.12", "7.7 ± 0.3"]]
    # Every job is still there, with its seed.
    assert jobs[0] == ["job", "status", "model.g_lr", "seed", "metrics/w1", "metrics/modes_covered"]
    assert [row[0] for row in jobs[1:]] == ["3", "4", "5", "0", "1", "2"]  # in the settings' order
    assert jobs[6] == ["2", "ok", "1e-4", "2", "0.6", "7"]
    assert (tmp_path / "report_jobs.csv").read_text().splitlines()[1] == "3,ok,2e-4,0,0.1,8"

    with open(tmp_path / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["model.g_lr"] for row in rows] == ["2e-4", "1e-4"] and [row["n"] for row in rows] == ["3", "3"]
    for row in rows:
        lr = row["model.g_lr"]
        assert float(row["metrics/w1"]) == pytest.approx(sum(w1[lr]) / 3)
        assert float(row["metrics/w1 stderr"]) == pytest.approx(_std_error(w1[lr]))
        assert float(row["metrics/modes_covered"]) == pytest.approx(sum(modes[lr]) / 3)
        assert float(row["metrics/modes_covered stderr"]) == pytest.approx(_std_error(modes[lr]))
    assert "| model.g_lr | n | not finished |" in (tmp_path / "report.md").read_text()
    assert f"Plot: {tmp_path / 'report.png'}" in text and (tmp_path / "report.png").stat().st_size > 0


def test_settings_are_ranked_by_their_mean_not_by_their_best_seed(tmp_path):
    # "a" has the best single job but the middle mean (0.35); "b" the best mean (0.25); "c" the worst (0.45).
    w1 = {"1": [0.05, 0.65], "2": [0.2, 0.3], "3": [0.4, 0.5]}
    for i, (d_steps, values) in enumerate(w1.items()):
        for seed, value in enumerate(values):
            _seeded_job(tmp_path, 2 * i + seed, [f"model.d_steps={d_steps}"], seed, {"metrics/w1": value})
    settings, _ = _tables(report(tmp_path))
    assert [row[0] for row in settings[1:]] == ["2", "1", "3"]
    settings, _ = _tables(report(tmp_path, "metrics/w1", maximize=True))
    assert [row[0] for row in settings[1:]] == ["3", "1", "2"]


def test_a_failed_seed_is_named_in_its_setting_and_left_out_of_the_mean(tmp_path):
    _seeded_job(tmp_path, 0, ["model.g_lr=1e-4"], 0, {"metrics/w1": 0.2})
    _seeded_job(tmp_path, 1, ["model.g_lr=1e-4"], 1, {"metrics/w1": 0.4})
    _seeded_job(tmp_path, 2, ["model.g_lr=1e-4"], 2, None, status="failed", error="RuntimeError: NaN in G")
    for seed in range(3):
        _seeded_job(tmp_path, 3 + seed, ["model.g_lr=2e-4"], seed, {"metrics/w1": 0.5 + 0.1 * seed})
    text = report(tmp_path)
    settings, jobs = _tables(text)
    # 1e-4 over its two finished seeds: mean 0.3, sample std 0.1414, s.e. 0.1
    assert settings[1] == ["1e-4", "2", "2", "0.30 ± 0.10"]
    assert settings[2] == ["2e-4", "3", "", "0.60 ± 0.06"]
    assert [row[:2] for row in jobs[1:4]] == [["0", "ok"], ["1", "ok"], ["2", "FAILED"]]  # with its setting
    assert "Failures:\njob 2: RuntimeError: NaN in G" in text


def test_a_setting_with_one_finished_seed_shows_its_value_without_an_error(tmp_path):
    _seeded_job(tmp_path, 0, ["model.g_lr=1e-4"], 0, {"metrics/w1": 0.123456})
    _seeded_job(tmp_path, 1, ["model.g_lr=1e-4"], 1, None, status="incomplete")
    _seeded_job(tmp_path, 2, ["model.g_lr=2e-4"], 0, None, status="failed", error="ConfigError: x")
    _seeded_job(tmp_path, 3, ["model.g_lr=2e-4"], 1, None, status="interrupted")
    settings, _ = _tables(report(tmp_path))
    assert settings[1:] == [["1e-4", "1", "1", "0.1235"], ["2e-4", "0", "2, 3", ""]]  # nothing finished: last
    with open(tmp_path / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert (rows[0]["metrics/w1"], rows[0]["metrics/w1 stderr"]) == ("0.123456", "")
    assert (rows[1]["n"], rows[1]["metrics/w1"], rows[1]["metrics/w1 stderr"]) == ("0", "", "")


def test_a_sweep_over_the_seed_alone_is_one_setting_plotted_against_the_seed(tmp_path):
    for seed in range(4):
        metrics = {"metrics/w1": 0.1 * (seed + 1)}
        if seed != 3:  # a metric that one finished job did not measure says over how many its mean is
            metrics["metrics/modes_covered"] = 8
        _seeded_job(tmp_path, seed, [], seed, metrics)
    text = report(tmp_path)
    settings, _ = _tables(text)
    assert settings == [["n", "not finished", "metrics/w1", "metrics/modes_covered"],
                        ["4", "", "0.25 ± 0.06", "8 ± 0 (n=3)"]]
    assert f"Plot: {tmp_path / 'report.png'}" in text and (tmp_path / "report.png").stat().st_size > 0


def test_two_settings_over_seeds_get_a_heat_map_of_the_means(tmp_path):
    number = 0
    for g in ("1e-4", "2e-4"):
        for d in ("1e-4", "2e-4"):
            for seed in range(2):
                _seeded_job(tmp_path, number, [f"model.g_lr={g}", f"model.d_lr={d}"], seed,
                            {"metrics/w1": 0.1 * number + 0.05})
                number += 1
    text = report(tmp_path)
    assert len(_tables(text)[0]) == 5
    assert f"Plot: {tmp_path / 'report.png'}" in text and (tmp_path / "report.png").stat().st_size > 0


def test_one_seed_for_every_job_keeps_one_row_per_job(tmp_path):
    for i, lr in enumerate(("1e-4", "2e-4")):
        _seeded_job(tmp_path, i, [f"model.g_lr={lr}"], 3, {"metrics/w1": 0.1 * (i + 1)})
    text = report(tmp_path)
    assert text.splitlines()[0] == f"Sweep {tmp_path}: 2 jobs, ranked by metrics/w1 (lowest first)"
    assert "| 0 | ok | 1e-4 | 0.1 |" in text and not (tmp_path / "report_jobs.csv").exists()


@pytest.mark.parametrize(("mean", "error", "shown"), [
    (7.8, 0.1, "7.80 ± 0.10"),          # an error starting with 1 keeps two digits
    (7.7667, 0.33, "7.8 ± 0.3"),        # an integer metric's mean, to the error's decimal place
    (12345.0, 230.0, "12300 ± 200"),
    (0.123456, None, "0.1235"),         # n = 1: as the per-job table shows it
    (8, 0.0, "8 ± 0"),
])
def test_a_mean_is_shown_to_the_precision_of_its_error(mean, error, shown):
    assert mean_text(mean, error) == shown
