"""One table of a sweep (a Hydra multirun folder, outputs/multirun/<name>/<time>), best job first.

Reads each job's .hydra/overrides.yaml and metrics.json (written by gan_lightning.train), prints a Markdown table
of the swept settings, the status and the final metrics, and saves it as report.md and report.csv plus report.png
(the ranking metric against the swept value) in the sweep folder. Failed jobs are listed last as FAILED with their
error, INTERRUPTED (SIGTERM/SIGINT), UNREADABLE (a damaged metrics.json or overrides.yaml), or INCOMPLETE (killed,
still running).

When the jobs differ by seed (e.g. -m model.g_lr=1e-4,2e-4 seed=0,1,2), the jobs that differ only by seed are one
setting: the table gives per setting the mean ± standard error of each metric over its finished jobs (n), ranked by
the mean, and names the jobs that did not finish; the per-job table follows it (report_jobs.csv), and the plot
draws the means with their standard errors.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from gan_lightning.errors import ConfigError, first_line

PREFERRED_METRICS = ("metrics/w1", "metrics/fid")
SEED = "seed"  # the setting whose jobs are repeats of one setting, not settings of their own

EXAMPLES = """\
examples:
  python -m gan_lightning.report outputs/multirun/gaussian-gaussian_moments/2026-01-31_12-00-00
  python -m gan_lightning.report SWEEP_DIR --metric metrics/fid            # rank by FID, lowest first
  python -m gan_lightning.report SWEEP_DIR --metric metrics/modes --maximize   # highest first
  python -m gan_lightning.report SWEEP_DIR   # after train -m model.g_lr=1e-4,2e-4 seed=0,1,2: mean ± s.e. per g_lr"""


def load_jobs(sweep_dir: Path) -> list[dict]:
    """One entry per job folder (one with ``.hydra/``); a job whose files are missing or unreadable is kept and
    marked, not dropped: the report of a sweep is most needed when something in it went wrong."""
    jobs = []
    for job_dir in sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=_job_order):
        # folders are <number>_<swept settings>; the table shows the number and the settings as columns
        job = {"job": job_dir.name.split("_", 1)[0], "overrides": {}, "overrides_read": False, "status": "incomplete",
               "metrics": {}, "error": ""}
        try:
            overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8")) or []
            if not isinstance(overrides, list):  # Hydra writes a list of "key=value" strings
                raise ValueError(f"a list of overrides expected, found {type(overrides).__name__}")
            job["overrides"] = dict(o.split("=", 1) for o in overrides if isinstance(o, str) and "=" in o)
            job["overrides_read"] = True
        except (OSError, ValueError, yaml.YAMLError) as err:
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


def swept_settings(jobs: list[dict]) -> list[str]:
    return sorted({k for job in jobs for k in job["overrides"]
                   if len({job2["overrides"].get(k) for job2 in jobs}) > 1})


def metric_columns(jobs: list[dict], metric: str | None) -> list[str]:
    """Every metric any job measured, the ranking metric first."""
    metric_keys = sorted({k for job in jobs for k in job["metrics"]})
    if metric in metric_keys:
        metric_keys.remove(metric)
        metric_keys.insert(0, metric)
    return metric_keys


def build_table(jobs: list[dict], metric: str | None, maximize: bool) -> tuple[list[str], list[list[str]], list[str]]:
    swept = swept_settings(jobs)
    metric_keys = metric_columns(jobs, metric)

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


def _seed_key(key: str) -> bool:
    return key.lstrip("+") == SEED


def seeds_vary(jobs: list[dict]) -> bool:
    """Whether the sweep repeats settings over seeds. A seed that is the same for every job (or no seed override)
    leaves one row per job, as without seeds."""
    return len({v for job in jobs for k, v in job["overrides"].items() if _seed_key(k)}) > 1


def mean_and_error(values: list[float]) -> tuple[float | None, float | None]:
    """The mean and its standard error (sample std / sqrt(n)); no error for one value, or for inf/NaN among them
    (the mean then says so)."""
    if not values:
        return None, None
    if len(values) == 1 or not all(math.isfinite(v) for v in values):
        return sum(values) / len(values), None
    return statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))


def mean_text(mean: float | None, error: float | None) -> str:
    """``7.8 ± 0.2``: the error to one significant digit (two when it starts with 1, where one digit would be off by
    up to a third), the mean to the same decimal place; a mean without an error as the per-job values (4 digits)."""
    if mean is None:
        return ""
    if error is None or not math.isfinite(mean):
        return f"{mean:.4g}"
    if error == 0:
        return f"{mean:.4g} ± 0"
    exponent = math.floor(math.log10(error))
    decimals = -exponent + (1 if error / 10 ** exponent < 2 else 0)
    places = max(decimals, 0)  # a negative decimal place (errors of 10 and more) rounds to tens, hundreds, ...
    return f"{round(mean, decimals):.{places}f} ± {round(error, decimals):.{places}f}"


def group_by_seed(jobs: list[dict], metric: str | None, maximize: bool) -> tuple[list[str], list[dict]]:
    """The swept settings other than the seed, and one group per combination of them: its jobs, ``n`` (finished
    jobs), the jobs that did not finish, and (mean, error, count) of each metric over the finished jobs. Ranked by
    the mean of ``metric``; a group without it comes last."""
    # A job whose overrides.yaml could not be read has none: it must not make every setting look swept. It joins
    # the group of blank settings (the only group when the sweep is over the seed alone).
    swept = [k for k in swept_settings([job for job in jobs if job["overrides_read"]]) if not _seed_key(k)]
    members: dict[tuple, list[dict]] = {}
    for job in jobs:
        members.setdefault(tuple(job["overrides"].get(k, "") for k in swept), []).append(job)
    metric_keys, groups = metric_columns(jobs, metric), []
    for settings, group_jobs in members.items():
        done = [job for job in group_jobs if job["status"] == "ok"]
        stats = {}
        for key in metric_keys:
            values = [job["metrics"][key] for job in done if key in job["metrics"]]
            stats[key] = (*mean_and_error(values), len(values))
        groups.append({"settings": dict(zip(swept, settings)), "jobs": group_jobs, "n": len(done),
                       "not_finished": [job["job"] for job in group_jobs if job["status"] != "ok"], "stats": stats})

    def order(group):
        mean = group["stats"][metric][0] if metric in group["stats"] else None
        ok = mean is not None and math.isfinite(mean)
        return (0 if ok else 1 if mean is not None else 2, (-mean if maximize else mean) if ok else 0,
                _job_order(Path(group["jobs"][0]["job"])))

    return swept, sorted(groups, key=order)


def seed_tables(swept: list[str], groups: list[dict], metric_keys: list[str]) -> tuple[list[list[str]], ...]:
    """The grouped table as shown (``mean ± error`` cells) and for report.csv (mean and stderr columns, 10
    digits). A metric that fewer than n finished jobs measured says over how many its mean is."""
    header = [*swept, "n", "not finished", *metric_keys]
    csv_header = [*swept, "n", "not finished", *(f"{k}{suffix}" for k in metric_keys for suffix in ("", " stderr"))]
    rows, csv_rows = [], []
    for group in groups:
        first = [*(group["settings"][k] for k in swept), str(group["n"]), ", ".join(group["not_finished"])]
        cells, numbers = [], []
        for key in metric_keys:
            mean, error, count = group["stats"][key]
            cells.append(mean_text(mean, error) + (f" (n={count})" if mean is not None and count < group["n"] else ""))
            numbers += ["" if mean is None else f"{mean:.10g}", "" if error is None else f"{error:.10g}"]
        rows.append([*first, *cells])
        csv_rows.append([*first, *numbers])
    return [header, *rows], [csv_header, *csv_rows]


def plot(points: list[tuple[dict, float, float | None]], swept: list[str], metric: str, path: Path, title: str,
         besides: str = "") -> str | None:
    """Write ``path``: the metric against one numeric swept setting (a log axis when it spans a decade), or a heat
    map over two. ``points`` are (settings, value, standard error or None): a job's value, or a group's mean.
    Returns None when written, else the reason it could not be drawn."""
    done = [(settings, value, error) for settings, value, error in points if _number(value) is not None]
    numeric = [k for k in swept if done and all(_number(settings.get(k)) is not None for settings, _, _ in done)]
    if not done:
        return f"no finished job measured {metric}"
    if len(swept) not in (1, 2) or len(numeric) != len(swept):
        return (f"a plot needs one or two numeric swept settings; this sweep varies {len(swept)}{besides} "
                f"({', '.join(swept) or 'none'}), numeric: {', '.join(numeric) or 'none'}")
    fig = Figure(figsize=(6, 4.2), dpi=100)
    ax = fig.add_subplot()
    if len(swept) == 1:
        points = sorted(((_number(settings[swept[0]]), value, error) for settings, value, error in done),
                        key=lambda point: point[:2])
        xs, ys, errors = zip(*points)
        if any(e is not None for e in errors):
            ax.errorbar(xs, ys, yerr=[e or 0.0 for e in errors], fmt="o-", capsize=4)
        else:
            ax.plot(xs, ys, "o-")
        _axis(ax.xaxis, xs, ax.set_xscale)
        ax.set_xlabel(swept[0])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    else:
        xs = sorted({_number(settings[swept[0]]) for settings, _, _ in done})
        ys = sorted({_number(settings[swept[1]]) for settings, _, _ in done})
        grid = np.full((len(ys), len(xs)), np.nan)
        labels = {}
        for settings, value, error in done:
            cell = ys.index(_number(settings[swept[1]])), xs.index(_number(settings[swept[0]]))
            grid[cell] = value
            labels[cell] = f"{value:.3g}" if error is None else mean_text(value, error).replace(" ± ", "\n± ")
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, label=metric)
        for (row, col), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(col, row, labels[row, col], ha="center", va="center", color="white", fontsize=8)
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs], rotation=30, ha="right")
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
        ax.set_xlabel(swept[0])
        ax.set_ylabel(swept[1])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return None


def plot_seeds(jobs: list[dict], metric: str, mean: float | None, error: float | None, path: Path,
               title: str) -> str | None:
    """A sweep over the seed alone: each finished job's metric against its seed, a line at the mean and a band of
    ± one standard error. Returns None when written, else why not."""
    done = [(_number(v), job["metrics"][metric]) for job in jobs
            if job["status"] == "ok" and _number(job["metrics"].get(metric)) is not None
            for k, v in job["overrides"].items() if _seed_key(k)]
    if not done or mean is None:
        return f"no finished job measured {metric}"
    if any(seed is None for seed, _ in done):
        return "a plot over the seeds needs numeric seeds"
    done.sort()
    fig = Figure(figsize=(6, 4.2), dpi=100)
    ax = fig.add_subplot()
    seeds, values = zip(*done)
    ax.plot(seeds, values, "o", label=f"one per seed ({len(done)} jobs)")
    ax.axhline(mean, color="C1", label=f"mean {mean_text(mean, error)}")
    if error is not None:
        ax.axhspan(mean - error, mean + error, color="C1", alpha=0.2, label="± standard error")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(SEED)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
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
    failures = ["Failures:\n" + "\n".join(notes)] if notes else []
    if seeds_vary(jobs):
        return _seed_report(sweep_dir, jobs, metric, maximize, [header, *rows], failures)
    title = f"Sweep {sweep_dir}: {len(jobs)} jobs" + (f", ranked by {metric} ({direction} first)" if metric else "")
    text = "\n\n".join([title, markdown(header, rows), *failures])
    (sweep_dir / "report.md").write_text(text + "\n", encoding="utf-8")  # Hydra writes the overrides in UTF-8
    _write_csv(sweep_dir / "report.csv", [header, *rows])
    swept = [h for h in header[2:] if not h.startswith(("metrics/", "train/"))]
    if metric:
        title = f"{metric} ({direction} is best) over {', '.join(swept)}\n{sweep_dir}"
        points = [(job["overrides"], job["metrics"].get(metric), None) for job in jobs if job["status"] == "ok"]
        why_not = plot(points, swept, metric, sweep_dir / "report.png", title)
        text += f"\n\nPlot: {sweep_dir / 'report.png'}" if why_not is None else f"\n\nNo plot: {why_not}."
    return text


def _seed_report(sweep_dir: Path, jobs: list[dict], metric: str | None, maximize: bool, job_table: list[list[str]],
                 failures: list[str]) -> str:
    """The report of a sweep over seeds: one row per setting first, then the per-job table (also report_jobs.csv),
    so that each seed's value stays visible."""
    swept, groups = group_by_seed(jobs, metric, maximize)
    table, csv_table = seed_tables(swept, groups, metric_columns(jobs, metric))
    # The jobs in the settings' order, each setting's seeds best first (the sort is stable)
    rank = {job["job"]: i for i, group in enumerate(groups) for job in group["jobs"]}
    job_table = [job_table[0], *sorted(job_table[1:], key=lambda row: rank[row[0]])]
    direction = "highest" if maximize else "lowest"
    title = (f"Sweep {sweep_dir}: {len(jobs)} jobs, {len(groups)} setting{'s' if len(groups) != 1 else ''} over "
             "seeds" + (f", ranked by the mean of {metric} ({direction} first)" if metric else ""))
    legend = "Mean ± standard error over each setting's n finished seeds (the value alone when n = 1)."
    text = "\n\n".join([title, legend, markdown(table[0], table[1:]), "Jobs:",
                         markdown(job_table[0], job_table[1:]), *failures])
    (sweep_dir / "report.md").write_text(text + "\n", encoding="utf-8")
    _write_csv(sweep_dir / "report.csv", csv_table)
    _write_csv(sweep_dir / "report_jobs.csv", job_table)
    if metric:
        path = sweep_dir / "report.png"
        if swept:
            title = f"{metric}: mean ± standard error over seeds ({direction} is best)\n{sweep_dir}"
            points = [(g["settings"], g["stats"][metric][0], g["stats"][metric][1]) for g in groups
                      if metric in g["stats"]]
            why_not = plot(points, swept, metric, path, title, besides=" besides the seed")
        else:
            mean, error, _ = groups[0]["stats"].get(metric, (None, None, 0))
            title = f"{metric} over seeds ({direction} is best)\n{sweep_dir}"
            why_not = plot_seeds(jobs, metric, mean, error, path, title)
        text += f"\n\nPlot: {path}" if why_not is None else f"\n\nNo plot: {why_not}."
    return text


def _write_csv(path: Path, table: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(table)


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
