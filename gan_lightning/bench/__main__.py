"""``python -m gan_lightning.bench``: the project against the hand-written originals, interleaved round by round.

Each round trains every side from scratch for the same number of iterations: the project through the Trainer
(A), the original plain-PyTorch loop (B) and the project's iteration without Lightning (bare), in an order that
rotates from round to round so that drifts in machine speed hit every side alike. It prints one Markdown table:

- iterations/s and images/s (real samples consumed) of A and B, from the steady state after the warm-up;
- speed A/B = B's time per iteration / A's, as min / median / max over the rounds (> 1: the project is faster);
- wall A/B: the whole call, start-up included (the Gaussian target is on this);
- framework overhead: A's time per iteration minus bare's (medians), in ms and as a share of A's iteration;
- GFLOP per iteration (matmul and convolution FLOPs, torch.utils.flop_counter) and the share of the device's
  measured matmul peak that A and B reach.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from gan_lightning.bench.clock import matmul_peak
from gan_lightning.bench.race import race, race_table
from gan_lightning.bench.sides import WORKLOADS, compose_workload, prepare_mnist, run_bare, run_original, run_project

# Iterations per side and round: a few seconds of steady state on a 2-core CPU.
DEFAULT_ITERATIONS = {("mnist_mlp", 64): 200, ("mnist_mlp", 1024): 24, ("mnist_dcgan", 64): 40,
                      ("mnist_dcgan", 1024): 8, ("gaussian_moments", None): 200}
PEAK_DTYPE = {"32-true": torch.float32, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gan_lightning.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (IDX, raw or .gz); default: generated digits")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 1024], help="for the MNIST workloads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, help="per side and round (default: per workload and batch)")
    parser.add_argument("--gaussian-iterations", type=int, help="for gaussian_moments (a multiple of 100)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=list(PEAK_DTYPE),
                        help="side A's trainer.precision (the originals run in fp32)")
    parser.add_argument("--threads", type=int, help="torch threads for every side (default: the preset's, else "
                        "torch's default)")
    parser.add_argument("--sides", nargs="+", default=["project", "original", "bare"],
                        choices=["project", "original", "bare"])
    parser.add_argument("--race", action="store_true", help="instead: wall time until W1 < 0.05 of gaussian_fast "
                        "against gaussian_moments, each trained as its preset says")
    parser.add_argument("--race-seeds", nargs="+", type=int, default=[0], help="seeds for --race")
    parser.add_argument("--json", help="also write every measurement to this file")
    return parser.parse_args(argv)


def _median_min_max(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def bench_one(workload: str, batch_size: int | None, args, device: torch.device, mnist_root: str | None,
              tmp: Path) -> dict:
    """All rounds of one (workload, batch size): every side's measurements, the peak and the sizes."""
    iterations = (args.gaussian_iterations if workload == "gaussian_moments" else args.iterations) \
        or DEFAULT_ITERATIONS.get((workload, batch_size), 50)
    warmup = max(2, iterations // 5)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    cfg = compose_workload(workload, mnist_root, batch_size, iterations, accelerator, args.precision, args.threads,
                           tmp / "runs")
    results = {side: [] for side in args.sides}
    for r in range(args.rounds):
        shift = r % len(args.sides)
        for side in args.sides[shift:] + args.sides[:shift]:
            if side == "project":
                results[side].append(run_project(cfg.copy(), device, iterations, warmup))
            elif side == "original":
                results[side].append(run_original(workload, cfg, device, iterations, warmup))
            else:
                results[side].append(run_bare(cfg, device, iterations, warmup))
    default_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    peak = matmul_peak(device, PEAK_DTYPE[args.precision])
    torch.set_num_threads(default_threads)
    return {"workload": workload, "batch_size": cfg.data.batch_size,
            "images_per_iteration": cfg.data.batch_size * cfg.model.d_steps, "iterations": iterations,
            "warmup": warmup, "threads": cfg.torch_threads, "peak_flops": peak,
            "sides": {side: [vars(result) for result in rs] for side, rs in results.items()}}


def summarise(entry: dict) -> dict:
    """The table's figures for one entry (medians over rounds; ratios per round, then min/median/max)."""
    sides = entry["sides"]
    row = {"workload": entry["workload"], "batch": entry["batch_size"], "threads": entry["threads"]}
    for side, rs in sides.items():
        row[f"{side}_it_s"] = 1 / statistics.median(r["seconds_per_iteration"] for r in rs)
        row[f"{side}_wall_s"] = statistics.median(r["wall_seconds"] for r in rs)
        flops = rs[0]["flops_per_iteration"]
        row[f"{side}_gflop"] = flops / 1e9 if flops else None
        row[f"{side}_util"] = flops * row[f"{side}_it_s"] / entry["peak_flops"] if flops else None
    if "project" in sides and "original" in sides:
        pairs = list(zip(sides["project"], sides["original"]))
        row["speed"] = _median_min_max([b["seconds_per_iteration"] / a["seconds_per_iteration"] for a, b in pairs])
        row["wall_ratio"] = _median_min_max([a["wall_seconds"] / b["wall_seconds"] for a, b in pairs])
    if "project" in sides and "bare" in sides:
        a = statistics.median(r["seconds_per_iteration"] for r in sides["project"])
        bare = statistics.median(r["seconds_per_iteration"] for r in sides["bare"])
        row["overhead_ms"], row["overhead_share"] = (a - bare) * 1e3, (a - bare) / a
    return row


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(entries: list[dict], images: str) -> str:
    """Markdown table of the summaries."""
    lines = [
        "| workload | batch | thr | A it/s | B it/s | A img/s | B img/s | speed A/B med (min–max) | wall A/B med "
        "| bare it/s | overhead ms (% of A) | GFLOP/it A / B | peak use A / B |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in entries:
        row, n = summarise(entry), entry["images_per_iteration"]
        speed, wall = row.get("speed"), row.get("wall_ratio")
        a, b, bare = row.get("project_it_s"), row.get("original_it_s"), row.get("bare_it_s")
        lines.append(" | ".join([
            f"| {row['workload']}", str(row["batch"]), str(row["threads"]), _fmt(a, ".2f"), _fmt(b, ".2f"),
            _fmt(a and a * n, ".0f"), _fmt(b and b * n, ".0f"),
            f"{speed[0]:.2f} ({speed[1]:.2f}–{speed[2]:.2f})" if speed else "–",
            _fmt(wall and wall[0], ".2f"), _fmt(bare, ".2f"),
            f"{row['overhead_ms']:.2f} ({100 * row['overhead_share']:.1f} %)" if "overhead_ms" in row else "–",
            f"{_fmt(row.get('project_gflop'), '.4f')} / {_fmt(row.get('original_gflop'), '.4f')}",
            f"{_fmt(row.get('project_util'), '.0%')} / {_fmt(row.get('original_util'), '.0%')} |",
        ]))
    notes = f"\n\nMNIST images: {images}." if images else "\n"
    return "\n".join(lines) + notes + " Peak: the measured matmul of this device in the precision of side A.\n"


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads by default"


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.race:
        results = []
        for seed in args.race_seeds:
            for preset in ("gaussian_fast", "gaussian_moments"):
                results.append(race(preset, seed))
                print(race_table(results[-1:]).split("\n")[2], flush=True)
        print(f"\ntorch {torch.__version__}, {describe_device(torch.device('cpu'))}\n")
        print(race_table(results))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return results
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mnist = any(w.startswith("mnist") for w in args.workloads)
        mnist_root = prepare_mnist(args.data_dir, tmp / "data") if mnist else None
        for workload in args.workloads:
            for batch_size in args.batch_sizes if workload.startswith("mnist") else [None]:
                entry = bench_one(workload, batch_size, args, device, mnist_root, tmp)
                entries.append(entry)
                print(table([entry], "").split("\n")[2], flush=True)
    images = None
    if mnist_root is not None:
        images = f"the digits in {args.data_dir}" if args.data_dir else "generated (random uint8 digits)"
    print(f"\ntorch {torch.__version__}, device: {describe_device(device)}, precision (A): {args.precision}, "
          f"{args.rounds} rounds\n")
    print(table(entries, images))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": describe_device(device), "precision": args.precision,
                                               "entries": entries}, indent=2))
    return entries


if __name__ == "__main__":
    main()
