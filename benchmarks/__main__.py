"""``python -m benchmarks``: the project against the hand-written originals, interleaved round by round.

Run from the repository root. Each round trains every side from scratch for the same number of iterations: the
project through the Trainer (A), the original plain-PyTorch loop (B) and the project's schedule without Lightning
(bare: the same GAN, execution plan and optimizers, ``iteration_step`` called directly), in an order that rotates
from round to round so that drifts in machine speed hit every side alike. It prints one Markdown table:

- iterations/s and images/s (real samples consumed) of A and B, from the steady state after the warm-up;
- speed A/B = B's time per iteration ÷ A's, per round, as median (min–max): > 1 means the project is faster;
- wall time A÷B: the whole calls, start-up included, median over rounds: < 1 means the project is faster (the
  Gaussian target, A÷B <= 1.2, is on this);
- A − bare: A's time per iteration minus bare's in the same round, median (min–max) in ms, and the median as a
  share of A's iteration: what the Lightning loop and what it does for the user (logging, progress bar, sample
  grids, checkpoints at epoch ends inside the window) cost. In the fp32 row only (bare runs fp32);
- GFLOP per iteration (matmul and convolution FLOPs, torch.utils.flop_counter) and the share of the device's
  measured matmul peak that A and B reach (A against the peak in its precision, B against fp32);
- on CUDA, limit it/s and A ÷ limit: side "limit" runs bare's module with the real samples drawn on the device,
  its iteration recorded once as a CUDA graph and replayed (``limit.py``), so A ÷ limit is the share of the
  hardware's speed that the project gets.

With several ``--precision`` values side A runs once per precision in every round, interleaved with the other
sides, and each precision gets its own row (named after the workload when not fp32), paired round by round with
the same B, bare and limit runs: precisions compared in one run, under the same drifts of machine speed.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.clock import matmul_peak
from benchmarks.data_dir import check_data_dir
from benchmarks.environment import environment
from benchmarks.race import race, race_table
from benchmarks.sides import (
    WORKLOADS,
    compose_workload,
    prepare_mnist,
    run_bare,
    run_limit,
    run_original,
    run_project,
)
from benchmarks.speed_table import table
from gan_lightning.data.idx import IDXError
from gan_lightning.errors import ConfigError
from gan_lightning.execution.cuda_graph import WARMUP_ITERATIONS
from gan_lightning.threads import torch_threads

# Iterations per side and round: a few seconds of steady state on a 2-core CPU.
DEFAULT_ITERATIONS = {("mnist_mlp", 64): 200, ("mnist_mlp", 1024): 24, ("mnist_dcgan", 64): 40,
                      ("mnist_dcgan", 1024): 8, ("gaussian_moments", None): 200}
PEAK_DTYPE = {"32-true": torch.float32, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be an integer >= 1")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (IDX, raw or .gz); default: generated digits")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS),
                        help="presets to time (default: all)")
    parser.add_argument("--batch-sizes", nargs="+", type=positive_int, default=[64, 1024],
                        help="images per D update, for the MNIST workloads")
    parser.add_argument("--rounds", type=positive_int, default=3, help="rounds of every side (medians over them)")
    parser.add_argument("--iterations", type=positive_int, help="per side and round (default: per workload and batch)")
    parser.add_argument("--gaussian-iterations", type=positive_int,
                        help="for gaussian_moments (up to 100, or a multiple of 100: whole epochs)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: a CUDA GPU when there is one, else the CPU")
    parser.add_argument("--precision", nargs="+", default=["32-true"], choices=list(PEAK_DTYPE),
                        dest="precisions", help="side A's trainer.precision (the originals run in fp32); several: "
                        "side A once per precision in every round, a row each")
    parser.add_argument("--threads", type=positive_int,
                        help="torch threads for every side (default: the preset's, else torch's default)")
    parser.add_argument("--sides", nargs="+", default=["project", "original", "bare", "limit"],
                        choices=["project", "original", "bare", "limit"],
                        help="which sides to run (limit: CUDA only, left out on a CPU)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="config overrides for every side, e.g. execution=cuda_graph model.d_steps=2")
    parser.add_argument("--race", action="store_true", help="instead: wall time until W1 < 0.05 of gaussian_fast "
                        "against gaussian_moments, each trained as its preset says")
    parser.add_argument("--race-seeds", nargs="+", type=int, default=[0], help="seeds for --race")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args(argv)
    args.precisions = list(dict.fromkeys(args.precisions))  # each once
    if args.gaussian_iterations and args.gaussian_iterations > 100 and args.gaussian_iterations % 100:
        parser.error(f"--gaussian-iterations {args.gaussian_iterations}: up to 100, or a multiple of 100 "
                     "(gaussian_moments runs whole epochs of 100 iterations)")
    return args


def bench_one(workload: str, batch_size: int | None, args, device: torch.device, mnist_root: str | None,
              tmp: Path) -> list[dict]:
    """All rounds of one (workload, batch size): an entry per precision of side A, each with every side's
    measurements (B, bare and limit shared), the peak and the sizes. Bare pairs with fp32 only (it runs fp32)."""
    iterations = (args.gaussian_iterations if workload == "gaussian_moments" else args.iterations) \
        or DEFAULT_ITERATIONS.get((workload, batch_size), 50)
    # On CUDA the timed window starts after a recorded CUDA graph's warm-up and recording (side A, side limit).
    warmup = max(WARMUP_ITERATIONS + 2 if device.type == "cuda" else 2, iterations // 5)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    cfgs = {precision: compose_workload(workload, mnist_root, batch_size, iterations, accelerator, precision,
                                        args.threads, tmp / "runs", args.overrides) for precision in args.precisions}
    cfg = cfgs[args.precisions[0]]  # B, bare and limit do not read trainer.precision
    # The runs of a round: side A once per precision, then the others; the order rotates from round to round.
    runs = [(side, precision) for side in args.sides
            for precision in (args.precisions if side == "project" else [None])]
    results = {run: [] for run in runs}
    for r in range(args.rounds):
        shift = r % len(runs)
        for side, precision in runs[shift:] + runs[:shift]:
            if side == "project":
                result = run_project(cfgs[precision].copy(), device, iterations, warmup)
            elif side == "original":
                result = run_original(workload, cfg, device, iterations, warmup)
            elif side == "limit":
                result = run_limit(cfg, device, iterations, warmup)
            else:
                result = run_bare(cfg, device, iterations, warmup)
            results[side, precision].append(result)
    with torch_threads(cfg.torch_threads):
        peak_fp32 = matmul_peak(device, torch.float32)
        peaks = {p: peak_fp32 if p == "32-true" else matmul_peak(device, PEAK_DTYPE[p]) for p in args.precisions}
    entries = []
    for precision in args.precisions:
        sides = {side: [vars(result) for result in rs] for (side, p), rs in results.items()
                 if p in (precision, None) and (side != "bare" or precision == "32-true")}
        entries.append({"workload": workload, "batch_size": cfg.data.batch_size, "precision": precision,
                        "images_per_iteration": cfg.data.batch_size * cfg.model.d_steps, "iterations": iterations,
                        "warmup": warmup, "threads": cfg.torch_threads, "peak_flops": peaks[precision],
                        "peak_flops_fp32": peak_fp32, "sides": sides})
    return entries


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads by default"


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    command = ["python", "-m", "benchmarks", *(argv if argv is not None else sys.argv[1:])]
    check_data_dir(args.data_dir)
    if "32-true" not in args.precisions and "bare" in args.sides:
        args.sides.remove("bare")  # the bare loop runs fp32: A - bare would not be the framework's cost
    if args.race:
        results = []
        for seed in args.race_seeds:
            for preset in ("gaussian_fast", "gaussian_moments"):
                results.append(race(preset, seed))
                print(race_table(results[-1:]).split("\n")[2], flush=True)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where trainer=default trains
        print(f"\ntorch {torch.__version__}, {describe_device(device)}\n")
        print(race_table(results))
        if args.json:
            Path(args.json).write_text(json.dumps({"environment": environment(command), "races": results}, indent=2))
        return results
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    if device.type != "cuda" and "limit" in args.sides:
        args.sides.remove("limit")  # a CUDA graph needs CUDA
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mnist = any(w.startswith("mnist") for w in args.workloads)
        try:
            mnist_root = prepare_mnist(args.data_dir, tmp / "data") if mnist else None
        except IDXError as err:  # a damaged file: its message names it
            raise ConfigError(f"--data-dir={args.data_dir}: {err}") from err
        for workload in args.workloads:
            for batch_size in args.batch_sizes if workload.startswith("mnist") else [None]:
                for entry in bench_one(workload, batch_size, args, device, mnist_root, tmp):
                    entries.append(entry)
                    print(table([entry], "").split("\n")[2], flush=True)
    images = None
    if mnist_root is not None:
        images = f"the digits in {args.data_dir}" if args.data_dir else "generated (random uint8 digits)"
    print(f"\ntorch {torch.__version__}, device: {describe_device(device)}, precision (A): "
          f"{', '.join(args.precisions)}, {args.rounds} rounds\n")
    print(table(entries, images))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": describe_device(device), "precisions": args.precisions,
                                               "environment": environment(command), "entries": entries}, indent=2))
    return entries


if __name__ == "__main__":
    try:
        main()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)  # one line, not a traceback
        sys.exit(2)
