"""The speed benchmark's table: medians over rounds, per-round ratios and differences, as Markdown. Plain Python
(no torch), so that ``docs/render_results.py`` renders a results file of ``python -m benchmarks --json`` with the
code that printed it."""
from __future__ import annotations

import statistics


def _median_min_max(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def summarise(entry: dict) -> dict:
    """The table's figures for one entry (medians over rounds; per-round ratios and differences)."""
    sides = entry["sides"]
    precision = entry["precision"]
    row = {"workload": entry["workload"] + ("" if precision == "32-true" else f" ({precision})"),
           "batch": entry["batch_size"], "threads": entry["threads"]}
    peaks = {"project": entry["peak_flops"], "original": entry["peak_flops_fp32"]}
    for side, rs in sides.items():
        row[f"{side}_it_s"] = 1 / statistics.median(r["seconds_per_iteration"] for r in rs)
        flops = rs[0]["flops_per_iteration"]
        row[f"{side}_gflop"] = flops / 1e9 if flops else None
        peak = peaks.get(side)
        row[f"{side}_util"] = flops * row[f"{side}_it_s"] / peak if flops and peak else None
    if "project" in sides and "original" in sides:
        pairs = list(zip(sides["project"], sides["original"]))
        row["speed"] = _median_min_max([b["seconds_per_iteration"] / a["seconds_per_iteration"] for a, b in pairs])
        row["wall_ratio"] = _median_min_max([a["wall_seconds"] / b["wall_seconds"] for a, b in pairs])
    if "project" in sides and "limit" in sides:
        pairs = list(zip(sides["project"], sides["limit"]))
        row["of_limit"] = _median_min_max([b["seconds_per_iteration"] / a["seconds_per_iteration"] for a, b in pairs])
    if "project" in sides and "bare" in sides:
        pairs = list(zip(sides["project"], sides["bare"]))
        diffs = [(a["seconds_per_iteration"] - b["seconds_per_iteration"]) * 1e3 for a, b in pairs]
        row["overhead_ms"] = _median_min_max(diffs)
        row["overhead_share"] = row["overhead_ms"][0] / (1e3 / row["project_it_s"])
    return row


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _spread(values, spec: str) -> str:
    return "–" if values is None else f"{values[0]:{spec}} ({values[1]:{spec}}–{values[2]:{spec}})"


def table(entries: list[dict], images: str | None) -> str:
    """Markdown table of the summaries."""
    lines = [
        "| workload | batch | thr | A it/s | B it/s | A img/s | B img/s | speed A/B | wall time A÷B | bare it/s "
        "| A − bare ms | A − bare % of A | GFLOP/it A / B | peak use A / B | limit it/s | A ÷ limit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in entries:
        row, n = summarise(entry), entry["images_per_iteration"]
        a, b = row.get("project_it_s"), row.get("original_it_s")
        lines.append(" | ".join([
            f"| {row['workload']}", str(row["batch"]), str(row["threads"]), _fmt(a, ".2f"), _fmt(b, ".2f"),
            _fmt(a and a * n, ".0f"), _fmt(b and b * n, ".0f"), _spread(row.get("speed"), ".2f"),
            _fmt(row.get("wall_ratio") and row["wall_ratio"][0], ".2f"), _fmt(row.get("bare_it_s"), ".2f"),
            _spread(row.get("overhead_ms"), ".2f"), _fmt(row.get("overhead_share"), ".1%"),
            f"{_fmt(row.get('project_gflop'), '.4f')} / {_fmt(row.get('original_gflop'), '.4f')}",
            f"{_fmt(row.get('project_util'), '.0%')} / {_fmt(row.get('original_util'), '.0%')}",
            _fmt(row.get("limit_it_s"), ".1f"), f"{_spread(row.get('of_limit'), '.2f')} |",
        ]))
    notes = f"\n\nMNIST images: {images}. " if images else "\n\n"
    return "\n".join(lines) + notes + "Peak: the measured matmul of this device (A: its precision, B: fp32).\n"
