"""The sweep report from job folders as train() leaves them: a table, and a plot for one or two swept settings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from gan_lightning.report import main, report
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
    main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "| 1 | UNREADABLE |" in out and "job 1: metrics.json:" in out
    assert "| 2 | UNREADABLE |" in out and "job 2: .hydra/overrides.yaml:" in out
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
