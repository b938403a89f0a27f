"""Golden-file recorder: a short seeded CPU run of every preset, fingerprinted, to check that a refactor trains
to the same weights and logs the same values.

Record (every preset, or some):
    python -m benchmarks.golden --out golden.json [--data-dir DIR] [--iterations 30] [--only PRESET ...]
        [--tensors-dir DIR]
Compare two records (exit 1 if any preset differs, or is in one record only):
    python -m benchmarks.golden --compare A.json B.json [--only PRESET ...]

The presets: every conf/experiment/*.yaml (``experiment=NAME``) and the data/model runs listed in EXTRA_RUNS.
Each runs in a fresh Python process (so that one run's global state, e.g. torch or cuDNN flags, cannot reach the
next, and a subset gives the same record as the whole) with seed=0, torch_threads=1, on the CPU, for
``--iterations`` iterations (one epoch of that many loader batches; a model with iterations_per_batch K > 1 gets
iterations / K batches), logging every iteration, without the image metrics and with the samples callback at the
end only (its metrics are part of the record).

Only the project's public entry points are used: ``gan_lightning.compose.compose_config`` and
``gan_lightning.train.train``; the results are read from the run folder (the final checkpoint's ``state_dict``
and the TensorBoard event files) and from the metrics ``train()`` returns.

Per preset the record holds: for every ``state_dict`` tensor its dtype, shape, sha256 of the bytes of the
contiguous tensor (so the memory format, e.g. channels_last, does not change it), and float64 sum, abs-sum,
min and max (so that a compare can bound the size of a difference); every ``train/*`` scalar series as
[step, value] pairs; the metrics ``train()`` returned. ``--tensors-dir`` also saves each final state_dict
(contiguous) as DIR/<preset>.pt, and a compare of two records that both have them reports the exact max abs
difference per tensor.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Runs beyond the experiment presets: the default run and the data/model pairs that no preset covers alone.
EXTRA_RUNS = [
    ["data=gaussian"],
    ["data=mnist"],
    ["data=ring"],
    ["data=grid"],
    ["data=mnist", "model=wgan_gp"],
    ["data=mnist", "model=cgan"],
]


def all_runs() -> dict[str, list[str]]:
    """Preset name -> its overrides: experiments (by listing conf/experiment) first, then EXTRA_RUNS."""
    runs = {}
    for path in sorted((REPO / "conf" / "experiment").glob("*.yaml")):
        runs[f"experiment={path.stem}"] = [f"experiment={path.stem}"]
    for overrides in EXTRA_RUNS:
        runs[" ".join(overrides)] = list(overrides)
    return runs


def select(runs: dict[str, list[str]], only: list[str] | None) -> dict[str, list[str]]:
    if not only:
        return runs
    chosen = {}
    for name in only:
        matches = [key for key in runs if name in (key, key.removeprefix("experiment="))]
        if not matches:
            sys.exit(f"error: --only {name!r}: no such preset; the presets are: {', '.join(runs)}")
        for key in matches:
            chosen[key] = runs[key]
    return chosen


# ---------------------------------------------------------------------------------------------------- one run

def tensor_record(t) -> dict:
    import torch
    t = t.detach().cpu().contiguous()
    raw = t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)
    as64 = t.to(torch.float64)
    rec = {
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "sha256": hashlib.sha256(raw.numpy().tobytes()).hexdigest(),
        "sum": float(as64.sum()),
        "abs_sum": float(as64.abs().sum()),
    }
    if t.numel():
        rec["min"], rec["max"] = float(as64.min()), float(as64.max())
    return rec


def state_dict_record(ckpt_path: Path, save_to: Path | None) -> dict:
    import torch
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    state = ckpt["state_dict"]
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, save_to)
    return {name: tensor_record(t) for name, t in sorted(state.items())}


def train_scalars(run_dir: Path) -> dict[str, list[list[float]]]:
    """Every ``train/*`` scalar of every event file under ``run_dir``, as [step, value] pairs in write order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    series: dict[str, list[list[float]]] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            if tag.startswith("train/"):
                series.setdefault(tag, []).extend([e.step, e.value] for e in acc.Scalars(tag))
    return dict(sorted(series.items()))


def find_checkpoint(run_dir: Path) -> Path:
    path = run_dir / "checkpoints" / "last.ckpt"
    if path.is_file():
        return path
    found = sorted(run_dir.rglob("last.ckpt")) or sorted(run_dir.rglob("*.ckpt"))
    if not found:
        raise FileNotFoundError(f"no checkpoint under {run_dir}")
    return found[-1]


def run_one(name: str, overrides: list[str], iterations: int, data_dir: str | None,
            tensors_dir: str | None) -> dict:
    """Train one preset in this process and return its record."""
    import logging
    import warnings
    warnings.filterwarnings("ignore")
    for logger in ("lightning", "lightning.pytorch", "lightning.fabric", "gan_lightning"):
        logging.getLogger(logger).setLevel(logging.ERROR)

    from gan_lightning.compose import compose_config
    from gan_lightning.train import train

    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        out = Path(tmp) / "run"
        base = [*overrides, "seed=0", "torch_threads=1", "trainer=cpu", "trainer.max_epochs=1",
                "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false", "callbacks.samples.every_n_iterations=0"]
        # First composition: which optional settings this preset has (data folder, image metrics, K).
        probe = compose_config(base, out)
        extra = []
        if data_dir is not None and "data_dir" in probe.data:
            extra.append(f"data.data_dir={data_dir}")
        if "image_metrics" in probe.get("callbacks", {}):
            extra.append("~callbacks.image_metrics")
        k = int(probe.model.get("iterations_per_batch", 1) or 1)
        if iterations % k:
            raise ValueError(f"--iterations {iterations} is not a multiple of model.iterations_per_batch {k}")
        extra.append(f"trainer.limit_train_batches={iterations // k}")
        final = base + extra
        cfg = compose_config(final, out)
        start = time.perf_counter()
        metrics = train(cfg)
        wall = time.perf_counter() - start
        save_to = Path(tensors_dir) / f"{safe_name(name)}.pt" if tensors_dir else None
        return {
            "overrides": final,
            "state_dict": state_dict_record(find_checkpoint(out), save_to),
            "tensors": str(save_to.resolve()) if save_to else None,
            "train_scalars": train_scalars(out),
            "metrics": {k: float(v) for k, v in sorted(metrics.items())},
            "train_wall_s": round(wall, 2),
        }


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def child_main(args) -> None:
    """--_child: run one preset, write its record (or the error) to --_result."""
    name, overrides = args._child, json.loads(args._overrides)
    try:
        record = run_one(name, overrides, args.iterations, args.data_dir, args.tensors_dir)
    except BaseException as err:  # noqa: BLE001 - every failure is part of the record
        import traceback
        record = {"overrides": overrides, "error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc()[-4000:]}
    Path(args._result).write_text(json.dumps(record, allow_nan=True))


def record_main(args) -> int:
    runs = select(all_runs(), args.only)
    result = {"meta": meta(args), "presets": {}}
    total = time.perf_counter()
    failed = 0
    for name, overrides in runs.items():
        start = time.perf_counter()
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            result_path = f.name
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", name, "--_overrides", json.dumps(overrides),
               "--_result", result_path, "--iterations", str(args.iterations)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        if args.tensors_dir:
            cmd += ["--tensors-dir", args.tensors_dir]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        try:
            record = json.loads(Path(result_path).read_text())
        except (OSError, json.JSONDecodeError):
            record = {"overrides": overrides, "error": f"child exited {proc.returncode} without a record",
                      "traceback": (proc.stdout + proc.stderr)[-4000:]}
        finally:
            Path(result_path).unlink(missing_ok=True)
        record["wall_s"] = round(time.perf_counter() - start, 2)
        result["presets"][name] = record
        if "error" in record:
            failed += 1
            print(f"{name}: FAILED after {record['wall_s']:.1f} s: {record['error']}", flush=True)
        else:
            print(f"{name}: {len(record['state_dict'])} tensors, {len(record['train_scalars'])} train/* series, "
                  f"{record['wall_s']:.1f} s", flush=True)
    result["meta"]["wall_s"] = round(time.perf_counter() - total, 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, allow_nan=True))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size:,} bytes) in {result['meta']['wall_s']:.1f} s; "
          f"{failed} of {len(runs)} presets failed")
    return 1 if failed else 0


def meta(args) -> dict:
    import torch

    import gan_lightning
    pkg = Path(gan_lightning.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(pkg), "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(pkg), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "", None
    return {"package": str(pkg), "commit": commit, "dirty": dirty, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.machine(), "iterations": args.iterations,
            "data_dir": args.data_dir, "argv": sys.argv[1:]}


# ---------------------------------------------------------------------------------------------------- compare

def same_float(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def float_diff(a: float, b: float) -> float:
    if same_float(a, b):
        return 0.0
    try:
        return abs(a - b)
    except TypeError:
        return math.inf


def max_abs_lower_bound(a: dict, b: dict) -> float:
    """A lower bound of max |a - b| over elements, from the stored statistics alone."""
    n = max(math.prod(a["shape"]), 1)
    bounds = [float_diff(a["sum"], b["sum"]) / n, float_diff(a["abs_sum"], b["abs_sum"]) / n]
    for key in ("min", "max"):
        if key in a and key in b:
            bounds.append(float_diff(a[key], b[key]))
    return max(bounds)


def load_tensors(path: str | None):
    if not path or not Path(path).is_file():
        return None
    import torch
    return torch.load(path, map_location="cpu", weights_only=True)


def compare_state(a: dict, b: dict, tensors_a, tensors_b) -> list[str]:
    lines = []
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            lines.append(f"  {name}: only in {'A' if name in a else 'B'}")
            continue
        ta, tb = a[name], b[name]
        if (ta["dtype"], ta["shape"]) != (tb["dtype"], tb["shape"]):
            lines.append(f"  {name}: {ta['dtype']}{ta['shape']} vs {tb['dtype']}{tb['shape']}")
            continue
        if ta["sha256"] == tb["sha256"]:
            continue
        if tensors_a is not None and tensors_b is not None and name in tensors_a and name in tensors_b:
            import torch
            diff = (tensors_a[name].to(torch.float64) - tensors_b[name].to(torch.float64)).abs()
            size = f"max |diff| {float(diff.max()):.3g}"
        else:  # from the stored statistics alone
            size = f"max |diff| >= {max_abs_lower_bound(ta, tb):.3g}"
        lines.append(f"  {name}: differs: {size} "
                     f"(sum {ta['sum']:.6g} vs {tb['sum']:.6g}, abs-sum {ta['abs_sum']:.6g} vs {tb['abs_sum']:.6g})")
    return lines


def compare_series(a: dict, b: dict) -> list[str]:
    lines = []
    for tag in sorted(set(a) | set(b)):
        if tag not in a or tag not in b:
            lines.append(f"  {tag}: only in {'A' if tag in a else 'B'}")
            continue
        sa, sb = a[tag], b[tag]
        steps_a, steps_b = [s for s, _ in sa], [s for s, _ in sb]
        if steps_a != steps_b:
            lines.append(f"  {tag}: steps differ ({len(sa)} points {steps_a[:3]}... vs {len(sb)} points "
                         f"{steps_b[:3]}...)")
            continue
        diffs = [float_diff(va, vb) for (_, va), (_, vb) in zip(sa, sb)]
        if any(d != 0 for d in diffs):
            first = next(i for i, d in enumerate(diffs) if d != 0)
            lines.append(f"  {tag}: differs: max |diff| {max(diffs):.3g}, first at step {steps_a[first]} "
                         f"({sa[first][1]!r} vs {sb[first][1]!r})")
    return lines


def compare_metrics(a: dict, b: dict) -> list[str]:
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            lines.append(f"  metric {key}: only in {'A' if key in a else 'B'}")
        elif not same_float(a[key], b[key]):
            lines.append(f"  metric {key}: {a[key]!r} vs {b[key]!r} (|diff| {float_diff(a[key], b[key]):.3g})")
    return lines


def compare_main(path_a: str, path_b: str, only: list[str] | None = None) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (path_a, path_b))
    pa, pb = a["presets"], b["presets"]
    if only:  # the named presets alone (e.g. B was recorded with --only)
        keep = set(select({**{k: [] for k in pa}, **{k: [] for k in pb}}, only))
        pa, pb = ({k: v for k, v in p.items() if k in keep} for p in (pa, pb))
    print(f"A: {path_a} (commit {a['meta'].get('commit', '?')[:10]}, {a['meta'].get('iterations')} iterations)")
    print(f"B: {path_b} (commit {b['meta'].get('commit', '?')[:10]}, {b['meta'].get('iterations')} iterations)")
    differing = 0
    for name in list(pa) + [n for n in pb if n not in pa]:
        if name not in pa or name not in pb:
            print(f"{name}: only in {'A' if name in pa else 'B'}")
            differing += 1
            continue
        ra, rb = pa[name], pb[name]
        lines = []
        if "error" in ra or "error" in rb:
            if ra.get("error") != rb.get("error"):
                lines.append(f"  error: {ra.get('error')!r} vs {rb.get('error')!r}")
        else:
            if ra.get("overrides") != rb.get("overrides"):
                lines.append(f"  (overrides differ: {ra.get('overrides')} vs {rb.get('overrides')})")
            lines += compare_state(ra["state_dict"], rb["state_dict"], load_tensors(ra.get("tensors")),
                                   load_tensors(rb.get("tensors")))
            lines += compare_series(ra["train_scalars"], rb["train_scalars"])
            lines += compare_metrics(ra["metrics"], rb["metrics"])
        # overrides alone differing (e.g. a new switch for the image metrics) is reported but is not a difference
        real = [line for line in lines if not line.startswith("  (overrides")]
        if real:
            differing += 1
            print(f"{name}: differs")
        else:
            state = "failed in both, same error" if "error" in ra else "identical"
            print(f"{name}: {state}")
        for line in lines:
            print(line)
    print(f"{differing} of {len(set(pa) | set(pb))} presets differ")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="record every (or each --only) preset into this JSON file")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="compare two records (with --only: those presets alone)")
    parser.add_argument("--data-dir", help="data.data_dir for the MNIST presets (holds MNIST/raw)")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--only", nargs="+", metavar="PRESET",
                        help="preset keys (e.g. 'experiment=mnist_dcgan', 'mnist_dcgan', 'data=mnist model=cgan')")
    parser.add_argument("--tensors-dir", help="also save each final state_dict as DIR/<preset>.pt")
    parser.add_argument("--list", action="store_true", help="print the preset keys and exit")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_overrides", help=argparse.SUPPRESS)
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        child_main(args)
        return 0
    if args.list:
        print("\n".join(all_runs()))
        return 0
    if args.compare:
        return compare_main(*args.compare, only=args.only)
    if not args.out:
        parser.error("give --out FILE, --compare A B or --list")
    if args.data_dir:
        sys.path.insert(0, str(REPO))  # also run as a script (the per-preset children are)
        from benchmarks.data_dir import check_data_dir

        check_data_dir(args.data_dir, ("train",), "the MNIST presets need", otherwise="")
        args.data_dir = str(Path(args.data_dir).resolve())
    if args.tensors_dir:
        args.tensors_dir = str(Path(args.tensors_dir).resolve())
    return record_main(args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    from gan_lightning.errors import ConfigError

    try:
        sys.exit(main())
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)  # one line, not a traceback
        sys.exit(2)
