"""Render the measured figures of the docs from the results files in docs/results/, so that no figure is typed by
hand: every ``<!-- results: NAME -->`` ... ``<!-- /results: NAME -->`` block of a docs page is replaced by the
table of ``docs/results/NAME.json`` and a line naming where, when and by which command it was measured; every
``<!-- summary: NAME,NAME2 -->`` ... ``<!-- /summary -->`` block by one row per file (mean ± standard error).

    python docs/render_results.py           # rewrite the blocks
    python docs/render_results.py --check   # exit 1 if a block differs from its file (tests/test_docs.py)

Results files are written by ``python -m benchmarks.quality`` (training runs, one per seed), ``python -m
benchmarks --json`` (speed) and ``python -m benchmarks.reference`` (the image metrics' real-against-real floor).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the speed table is the benchmark's own (benchmarks/speed_table.py)
from benchmarks.speed_table import table as speed_table  # noqa: E402
from gan_lightning.report import mean_and_error  # noqa: E402  (the report's mean ± standard error)

BLOCK = re.compile(r"(<!-- results: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results: (?P=name) -->)", re.S)
# A summary: one row per results file (mean ± standard error over its seeds), for comparisons with published tables.
SUMMARY = re.compile(r"(<!-- summary: (?P<names>[\w.,-]+) -->\n)(?P<body>.*?)(<!-- /summary -->)", re.S)
# How each metric is shown: its column title and the format of one value.
COLUMNS = {
    "metrics/fid": ("FID ↓", "{:.1f}"), "metrics/kid": ("KID ↓", "{:.2f}"),
    "metrics/inception_score": ("IS ↑", "{:.2f}"), "metrics/modes": ("modes", "{:.0f}"),
    "metrics/label_accuracy": ("label accuracy", "{:.3f}"),
    "metrics/modes_covered": ("modes covered", "{:.0f}"), "metrics/high_quality_share": ("high quality", "{:.1%}"),
    "metrics/reverse_kl": ("reverse KL ↓", "{:.3f}"), "metrics/kl_uniform": ("KL ↓", "{:.3f}"),
    "metrics/w1": ("W1 ↓", "{:.3f}"), "metrics/ks": ("KS ↓", "{:.3f}"),
    "metrics/precision": ("precision ↑", "{:.3f}"), "metrics/recall": ("recall ↑", "{:.3f}"),
    "metrics/density": ("density", "{:.3f}"), "metrics/coverage": ("coverage ↑", "{:.3f}"),
}

# A mean of counts (modes) needs a decimal: 7.8 ± 0.1, not 8 ± 0.
MEAN_FORMATS = {"{:.0f}": "{:.1f}"}


def environment_line(env: dict, record: dict) -> str:
    where = env["gpu"] or f"{env['cpu']} ({env['cpu_count']} cores)"
    threads = record.get("threads_per_run")
    at_once = record.get("parallel", 1)
    load = f", {threads} torch thread(s) per run, {at_once} run(s) at a time" if threads else ""
    commit = f"commit {env['commit']}" + (" with uncommitted changes" if env["dirty"] else "")
    busy = env.get("load_average_1min")
    load += (f"; load average {busy} when written" if busy is not None else "; machine load not recorded")
    line = (f"Measured {env['date']} on {where}{load}; Python {env['python']}, torch {env['torch']}, Lightning "
            f"{env['lightning']}, {commit}. Command: `{env['command']}`.")
    return textwrap.fill(line, 118, break_long_words=False, break_on_hyphens=False)


def quality_table(record: dict) -> str:
    runs = record["runs"]
    shown = [key for key in COLUMNS if all(key in run["metrics"] for run in runs)]
    lines = ["| seed | " + " | ".join(COLUMNS[k][0] for k in shown) + " | wall time |",
             "|---" * (len(shown) + 2) + "|"]
    for run in runs:
        cells = [COLUMNS[k][1].format(run["metrics"][k]) for k in shown]
        lines.append(f"| {run['seed']} | " + " | ".join(cells) + f" | {run['wall_s']:,.0f} s |")
    if len(runs) > 1:
        cells = []
        for key in shown:
            mean, error = mean_and_error([run["metrics"][key] for run in runs])
            form = MEAN_FORMATS.get(COLUMNS[key][1], COLUMNS[key][1])
            cells.append(f"{form.format(mean)} ± {form.format(error)}")
        lines.append(f"| mean ± s.e. ({len(runs)} seeds) | " + " | ".join(cells) + " | |")
    fid = [run["series"].get("metrics/fid") for run in runs]
    if all(fid) and any(len(f) > 1 for f in fid):
        lines += ["", "FID at each measurement (iteration: FID):", ""]
        for run, series in zip(runs, fid):
            lines.append(f"- seed {run['seed']}: " + ", ".join(f"{step:,}: {value:.1f}" for step, value in series))
    return "\n".join(lines)


def mean_cell(key: str, values: list[float]) -> str:
    mean, error = mean_and_error(values)
    form = MEAN_FORMATS.get(COLUMNS[key][1], COLUMNS[key][1]) if len(values) > 1 else COLUMNS[key][1]
    return f"{form.format(mean)} ± {form.format(error)}" if len(values) > 1 else form.format(mean)


def summary_table(names: list[str]) -> str:
    """One row per results file: its overrides, each metric's mean ± standard error over the seeds, the seeds."""
    records = [json.loads((DOCS / "results" / f"{name}.json").read_text()) for name in names]
    shown = [key for key in COLUMNS if all(key in run["metrics"] for r in records for run in r["runs"])]
    lines = ["| training overrides | " + " | ".join(COLUMNS[k][0] for k in shown) + " | seeds | measured |",
             "|---" * (len(shown) + 3) + "|"]
    for name, record in zip(names, records):
        cells = [mean_cell(key, [run["metrics"][key] for run in record["runs"]]) for key in shown]
        env = record["environment"]
        where = env["gpu"] or env["cpu"]
        lines.append(f"| `{' '.join(record['overrides'])}` | " + " | ".join(cells)
                     + f" | {len(record['runs'])} | {env['date'][:10]}, {where}, `{name}.json` |")
    return "\n".join(lines) + "\n"


def reference_table(record: dict) -> str:
    """``python -m benchmarks.reference``: one row per kind of images put in the generator's place."""
    rows = record["rows"]
    shown = [key for key in COLUMNS if all(key in run for row in rows for run in row["runs"])]
    lines = [f"| compared with the metrics' {record['num_samples']:,} real images | "
             + " | ".join(COLUMNS[k][0] for k in shown) + " | draws |", "|---" * (len(shown) + 2) + "|"]
    for row in rows:
        cells = [mean_cell(key, [run[key] for run in row["runs"]]) for key in shown]
        lines.append(f"| {row['compared']} | " + " | ".join(cells) + f" | {len(row['runs'])} |")
    return "\n".join(lines) + (f"\n\nThe classifier's accuracy on the held-out test images: "
                               f"{record['classifier_held_out_accuracy']:.4f}.")


def render(name: str) -> str:
    record = json.loads((DOCS / "results" / f"{name}.json").read_text())
    if "entries" in record:  # python -m benchmarks --json
        return (speed_table(record["entries"], None).rstrip() + "\n\n"
                + environment_line(record["environment"], record) + "\n")
    if "rows" in record:  # python -m benchmarks.reference
        return reference_table(record) + "\n\n" + environment_line(record["environment"], record) + "\n"
    overrides = " ".join(record["overrides"])
    return (f"Training overrides: `{overrides}`.\n\n" + quality_table(record) + "\n\n"
            + environment_line(record["environment"], record) + "\n")


def render_page(text: str) -> str:
    text = BLOCK.sub(lambda m: m.group(1) + render(m.group("name")) + m.group(4), text)
    return SUMMARY.sub(lambda m: m.group(1) + summary_table(m.group("names").split(",")) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page differs from its results files")
    args = parser.parse_args(argv)
    stale = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        rendered = render_page(text)
        if rendered != text:
            stale.append(page.name)
            if not args.check:
                page.write_text(rendered)
    verb = "differ from their results files" if args.check else "rewritten"
    print(f"{', '.join(stale) or 'no page'} {verb}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
