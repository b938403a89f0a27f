"""``python -m gan_lightning.report outputs/multirun/<name>/<time>``: one table of a sweep, best job first.

Reads each job's ``.hydra/overrides.yaml`` and ``metrics.json`` (written by ``train``), prints a Markdown table of
the swept settings, the status and the final metrics, and saves it as ``report.md`` and ``report.csv`` plus
``report.png`` (the ranking metric against the swept value) in the sweep folder. Failed jobs are listed last as
FAILED with their error, INTERRUPTED (SIGTERM/SIGINT), UNREADABLE (a damaged metrics.json or overrides.yaml),
or INCOMPLETE (killed, still running).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import yaml
from matplotlib.figure import Figure

from gan_lightning.errors import ConfigError, first_line

PREFERRED_METRICS = ("metrics/w1", "metrics/fid")


def load_jobs(sweep_dir: Path) -> list[dict]:
    """One entry per job folder (one with ``.hydra/``); a job whose files are missing or unreadable is kept and
    marked, not dropped: the report of a sweep is most needed when something in it went wrong."""
    jobs = []
    for job_dir in sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=_job_order):
        # folders are <number>_<swept settings>; the table shows the number and the settings as columns
        job = {"job": job_dir.name.split("_", 1)[0], "overrides": {}, "status": "incomplete", "metrics": {},
               "error": ""}
        try:
            overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
            job["overrides"] = dict(o.split("=", 1) for o in overrides if isinstance(o, str) and "=" in o)
        except (OSError, yaml.YAMLError) as err:
            job["status"], job["error"] = "unreadable", f".hydra/overrides.yaml: {first_line(err)}"
        summary_path = job_dir / "metrics.json"
        if summary_path.is_file() and job["status"] != "unreadable":
            try:
                summary = json.loads(summary_path.read_text())
                metrics = {k: v for k, v in dict(summary.get("metrics") or {}).items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)}
                job.update(status=str(summary["status"]), metrics=metrics,
                           error=summary.get("error") or _interruption(summary))
            except (OSError, ValueError, KeyError, TypeError) as err:
                job["status"], job["error"] = "unreadable", f"metrics.json: {first_line(err)}"
        jobs.append(job)
    return jobs


def _interruption(summary: dict) -> str:
    if summary.get("status") != "interrupted":
        return ""
    return f"{summary.get('signal')} after iteration {summary.get('iteration')}"


def _job_order(path: Path):
    number = path.name.split("_", 1)[0]
    return (0, int(number), path.name) if number.isdigit() else (1, 0, path.name)


def _number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def ranking_metric(sweep_dir: Path, jobs: list[dict], requested: str | None) -> str | None:
    if requested:
        return requested
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        try:
            optimized = (yaml.safe_load(multirun.read_text()) or {}).get("optimized_metric")
        except (OSError, yaml.YAMLError, AttributeError):
            optimized = None
        if optimized:
            return optimized
    measured = {key for job in jobs for key in job["metrics"]}
    return next((m for m in PREFERRED_METRICS if m in measured), None)


def build_table(jobs: list[dict], metric: str | None, maximize: bool) -> tuple[list[str], list[list[str]], list[str]]:
    swept = sorted({k for job in jobs for k in job["overrides"]
                    if len({job2["overrides"].get(k) for job2 in jobs}) > 1})
    metric_keys = sorted({k for job in jobs for k in job["metrics"]})
    if metric in metric_keys:
        metric_keys.remove(metric)
        metric_keys.insert(0, metric)

    def order(job):
        value = job["metrics"].get(metric) if metric else None
        ok = job["status"] == "ok" and value is not None and math.isfinite(value)
        return (0 if ok else 1 if job["status"] == "ok" else 2, (-value if maximize else value) if ok else 0,
                _job_order(Path(job["job"])))

    header = ["job", "status", *swept, *metric_keys]
    rows = []
    for job in sorted(jobs, key=order):
        status = "ok" if job["status"] == "ok" else job["status"].upper()
        values = [f"{job['metrics'][k]:.4g}" if k in job["metrics"] else "" for k in metric_keys]
        rows.append([job["job"], status, *(job["overrides"].get(k, "") for k in swept), *values])
    notes = [f"job {job['job']}: {job['error']}" for job in jobs if job["error"]]
    return header, rows, notes


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot(jobs: list[dict], swept: list[str], metric: str, path: Path) -> bool:
    """The metric against the one numeric swept setting (log axis when it spans a decade); False if not plottable."""
    if len(swept) != 1:
        return False
    points = sorted(
        (_number(j["overrides"][swept[0]]), j["metrics"][metric])
        for j in jobs
        if j["status"] == "ok" and metric in j["metrics"] and _number(j["overrides"].get(swept[0])) is not None
    )
    if not points:
        return False
    fig = Figure(figsize=(5, 3.5), dpi=100)
    ax = fig.add_subplot()
    xs, ys = zip(*points)
    ax.plot(xs, ys, "o-")
    if min(xs) > 0 and max(xs) / min(xs) >= 10:
        ax.set_xscale("log")
    ax.set_xlabel(swept[0])
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return True


def report(sweep_dir: Path, metric: str | None = None, maximize: bool = False) -> str:
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir}: {'not a folder' if sweep_dir.exists() else 'no such folder'} (give the "
                          "sweep folder, e.g. outputs/multirun/<name>/<time>)")
    jobs = load_jobs(sweep_dir)
    if not jobs:
        raise ConfigError(f"{sweep_dir}: no jobs (folders with .hydra/) in it")
    metric = ranking_metric(sweep_dir, jobs, metric)
    header, rows, notes = build_table(jobs, metric, maximize)
    direction = "highest" if maximize else "lowest"
    title = f"Sweep {sweep_dir}: {len(jobs)} jobs" + (f", ranked by {metric} ({direction} first)" if metric else "")
    text = "\n\n".join([title, markdown(header, rows), *(["Failures:\n" + "\n".join(notes)] if notes else [])])
    (sweep_dir / "report.md").write_text(text + "\n")
    with open(sweep_dir / "report.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    swept = [h for h in header[2:] if not h.startswith(("metrics/", "train/"))]
    if metric and plot(jobs, swept, metric, sweep_dir / "report.png"):
        text += f"\n\nPlot: {sweep_dir / 'report.png'}"
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun folder, e.g. outputs/multirun/default/<time>")
    parser.add_argument("--metric", help="rank by this metric (default: the sweep's optimized_metric, or W1/FID)")
    parser.add_argument("--maximize", action="store_true", help="higher values are better")
    args = parser.parse_args(argv)
    try:
        print(report(args.sweep_dir, args.metric, args.maximize))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
