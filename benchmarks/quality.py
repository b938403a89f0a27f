"""``python -m benchmarks.quality``: train a preset on several seeds through the real command line and write what
they measured, with the environment, to a results file that the documentation renders.

    python -m benchmarks.quality --out docs/results/quality_mnist_best.json --seeds 0,1,2 --parallel 2 \\
        experiment=mnist_best data.data_dir=../shared/data

Each seed is ``python -m gan_lightning.train <overrides> seed=S torch_threads=T`` in its own process (``--parallel``
at a time, ``T`` = the cores shared among them), its run folder under ``--runs-dir``. The file holds, per seed, the
final metrics of its ``metrics.json``, every ``metrics/*`` series of its TensorBoard events (e.g. the FID after
each epoch) and the wall time of the whole command.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.environment import REPO, environment


def metric_series(run_dir: Path) -> dict[str, list[list[float]]]:
    """Every ``metrics/*`` scalar series of the run's TensorBoard events, as [iteration, value] pairs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, list[list[float]]] = {}
    for path in sorted(run_dir.rglob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            if tag.startswith("metrics/"):
                series.setdefault(tag, []).extend([e.step, e.value] for e in events.Scalars(tag))
    return {tag: sorted(dict((s, v) for s, v in pairs).items()) for tag, pairs in series.items()}


def run_seed(overrides: list[str], seed: int, threads: int, runs_dir: Path) -> dict:
    run_dir = runs_dir / f"seed{seed}"
    command = [sys.executable, "-m", "gan_lightning.train", *overrides, f"seed={seed}", f"torch_threads={threads}",
               "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"seed {seed} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads((run_dir / "metrics.json").read_text())
    return {"seed": seed, "status": summary["status"], "metrics": summary["metrics"],
            "series": metric_series(run_dir), "wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="+", help="the training overrides, e.g. experiment=mnist_best")
    parser.add_argument("--out", required=True, help="the results file to write (JSON)")
    parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1,2")
    parser.add_argument("--parallel", type=int, default=1, help="seeds trained at once (the cores are shared)")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: the cores / --parallel)")
    parser.add_argument("--runs-dir", default="outputs/quality", help="where the seeds' run folders go")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = args.threads or max(1, cores // args.parallel)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs_dir = Path(args.runs_dir) / Path(args.out).stem
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        runs = list(pool.map(lambda s: run_seed(args.overrides, s, threads, runs_dir), seeds))
    record = {"environment": environment(["python", "-m", "benchmarks.quality", *(argv or sys.argv[1:])]),
              "overrides": args.overrides, "threads_per_run": threads, "parallel": args.parallel, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    for run in runs:
        shown = {k: round(v, 4) for k, v in run["metrics"].items() if k.startswith("metrics/")}
        print(f"seed {run['seed']}: {shown} ({run['wall_s']} s)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
