"""One table of a sweep (a Hydra multirun folder, outputs/multirun/<name>/<time>), best job first.

Reads each job's .hydra/overrides.yaml and metrics.json (written by gan_lightning.train), prints a Markdown table
of the swept settings, the status and the final metrics, and saves it as report.md and report.csv plus report.png
(the ranking metric against the swept value) in the sweep folder. Failed jobs are listed last as FAILED with their
error, INTERRUPTED (SIGTERM/SIGINT), UNREADABLE (a damaged metrics.json or overrides.yaml), or INCOMPLETE (killed,
still running).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from gan_lightning.errors import ConfigError, first_line

PREFERRED_METRICS = ("metrics/w1", "metrics/fid")

EXAMPLES = """\
examples:
  python -m gan_lightning.report outputs/multirun/gaussian-gaussian_moments/2026-01-31_12-00-00
  python -m gan_lightning.report SWEEP_DIR --metric metrics/fid            # rank by FID, lowest first
  python -m gan_lightning.report SWEEP_DIR --metric metrics/modes --maximize   # highest first"""


def load_jobs(sweep_dir: Path) -> list[dict]:
    """One entry per job folder (one with ``.hydra/``); a job whose files are missing or unreadable is kept and
    marked, not dropped: the report of a sweep is most needed when something in it went wrong."""
    jobs = []
    for job_dir in sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=_job_order):
        # folders are <number>_<swept settings>; the table shows the number and the settings as columns
        job = {"job": job_dir.name.split("_", 1)[0], "overrides": {}, "status": "incomplete", "metrics": {},
               "error": ""}
        try:
            overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8")) or []
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
            optimized = (yaml.safe_load(multirun.read_text(encoding="utf-8")) or {}).get("optimized_metric")
        except (OSError, yaml.YAMLError, AttributeError):
            optimized = None
        if optimized:
            return optimized
    measured = {key for job in jobs for key in job["metrics"]}
    return next((m for m in PREFERRED_METRICS if m in measured), None)


def check_metric(jobs: list[dict], requested: str | None) -> None:
    """A ``--metric`` that no job measured would rank nothing (a typo). Unchecked while no job has measured anything
    yet: the report then lists the failures, which is what is needed."""
    measured = sorted({key for job in jobs for key in job["metrics"]})
    if requested and measured and requested not in measured:
        raise ConfigError(f"--metric={requested}: no job measured it; the jobs have {', '.join(measured)}")


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
        values = [f"{job['metrics'][k]:.4g}" if k in job["metrics"] else "" for k in metric_keys]  # 4 digits
        rows.append([job["job"], status, *(job["overrides"].get(k, "") for k in swept), *values])
    notes = [f"job {job['job']}: {job['error']}" for job in jobs if job["error"]]
    return header, rows, notes


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot(jobs: list[dict], swept: list[str], metric: str, path: Path, title: str) -> str | None:
    """Write ``path``: the metric against one numeric swept setting (a log axis when it spans a decade), or a heat
    map over two. Returns None when written, else the reason it could not be drawn."""
    done = [j for j in jobs if j["status"] == "ok" and _number(j["metrics"].get(metric)) is not None]
    numeric = [k for k in swept if done and all(_number(j["overrides"].get(k)) is not None for j in done)]
    if not done:
        return f"no finished job measured {metric}"
    if len(swept) not in (1, 2) or len(numeric) != len(swept):
        return (f"a plot needs one or two numeric swept settings; this sweep varies {len(swept)} "
                f"({', '.join(swept) or 'none'}), numeric: {', '.join(numeric) or 'none'}")
    fig = Figure(figsize=(6, 4.2), dpi=100)
    ax = fig.add_subplot()
    if len(swept) == 1:
        points = sorted((_number(j["overrides"][swept[0]]), j["metrics"][metric]) for j in done)
        xs, ys = zip(*points)
        ax.plot(xs, ys, "o-")
        _axis(ax.xaxis, xs, ax.set_xscale)
        ax.set_xlabel(swept[0])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    else:
        xs = sorted({_number(j["overrides"][swept[0]]) for j in done})
        ys = sorted({_number(j["overrides"][swept[1]]) for j in done})
        grid = np.full((len(ys), len(xs)), np.nan)
        for j in done:
            grid[ys.index(_number(j["overrides"][swept[1]])), xs.index(_number(j["overrides"][swept[0]]))] = \
                j["metrics"][metric]
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, label=metric)
        for (row, col), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(col, row, f"{value:.3g}", ha="center", va="center", color="white", fontsize=8)
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs], rotation=30, ha="right")
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
        ax.set_xlabel(swept[0])
        ax.set_ylabel(swept[1])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return None


def _axis(axis, values, set_scale) -> None:
    """Ticks at the swept values, written plainly (1e-4 -> 0.0001), on a log scale when they span a decade."""
    if min(values) > 0 and max(values) / min(values) >= 10:
        set_scale("log")
    axis.set_major_locator(FixedLocator(sorted(set(values))))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    for label in axis.get_ticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")


def report(sweep_dir: Path, metric: str | None = None, maximize: bool = False) -> str:
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir}: {'not a folder' if sweep_dir.exists() else 'no such folder'} (give the "
                          "sweep folder, e.g. outputs/multirun/<name>/<time>)")
    jobs = load_jobs(sweep_dir)
    if not jobs:
        raise ConfigError(f"{sweep_dir}: no jobs (folders with .hydra/) in it")
    check_metric(jobs, metric)
    metric = ranking_metric(sweep_dir, jobs, metric)
    header, rows, notes = build_table(jobs, metric, maximize)
    direction = "highest" if maximize else "lowest"
    title = f"Sweep {sweep_dir}: {len(jobs)} jobs" + (f", ranked by {metric} ({direction} first)" if metric else "")
    text = "\n\n".join([title, markdown(header, rows), *(["Failures:\n" + "\n".join(notes)] if notes else [])])
    (sweep_dir / "report.md").write_text(text + "\n", encoding="utf-8")  # Hydra writes the overrides in UTF-8
    with open(sweep_dir / "report.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    swept = [h for h in header[2:] if not h.startswith(("metrics/", "train/"))]
    if metric:
        title = f"{metric} ({direction} is best) over {', '.join(swept)}\n{sweep_dir}"
        why_not = plot(jobs, swept, metric, sweep_dir / "report.png", title)
        text += f"\n\nPlot: {sweep_dir / 'report.png'}" if why_not is None else f"\n\nNo plot: {why_not}."
    return text


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_lightning.report", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # as written above
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun folder, e.g. outputs/multirun/<name>/<time>")
    parser.add_argument("--metric", help="rank by this metric (default: the sweep's optimized_metric, or W1/FID)")
    parser.add_argument("--maximize", action="store_true", help="higher values are better")
    return parser


def main(argv: list[str] | None = None) -> None:
    # Swept values can be any text ("+name=naïve"): on a terminal that cannot show it, print \xef, do not fail.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    args = command_line().parse_args(argv)
    try:
        print(report(args.sweep_dir, args.metric, args.maximize))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
