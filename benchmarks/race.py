"""Time to quality for the 1-D presets: wall time from the start of ``train()`` to the first logged
``metrics/w1`` below a threshold (W1 of G(fixed z), 10,000 samples, against the exact N(4, 1.25)).

W1 is measured when the SampleLogger logs (every 250 iterations in gaussian_moments, 100 in gaussian_fast), so
a time is the first such check under the threshold; the event file's wall-clock stamps give the times.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from benchmarks.sides import quiet
from gan_lightning.compose import compose_config


def race(preset: str, seed: int | None = None, threshold: float = 0.05, overrides: list[str] = ()) -> dict:
    """Train ``preset`` as a user would (its full length) and return when W1 first fell below ``threshold``."""
    from gan_lightning.train import train

    with tempfile.TemporaryDirectory() as out:
        extra = [f"seed={seed}"] if seed is not None else []
        cfg = compose_config([f"experiment={preset}", "trainer.enable_progress_bar=false", *extra, *overrides], out)
        with quiet():
            start = time.time()
            metrics = train(cfg)
            wall = time.time() - start
        (events,) = Path(out).rglob("events.out.tfevents.*")
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        w1 = acc.Scalars("metrics/w1")
    first = next((e for e in w1 if e.value < threshold), None)
    return {"preset": preset, "seed": cfg.seed, "iterations": w1[-1].step, "wall_s": wall,
            "final_w1": metrics["metrics/w1"], "final_mean_error": metrics["metrics/mean_error"],
            "final_std_error": metrics["metrics/std_error"], "threshold": threshold,
            "reached_at_iteration": first.step if first else None,
            "reached_after_s": first.wall_time - start if first else None}


def race_table(results: list[dict]) -> str:
    """Markdown rows, then for each seed how many times sooner ``gaussian_fast`` got there than the other preset
    (">=" where the other never did: its whole run's wall time is then a lower bound)."""
    threshold = results[0]["threshold"] if results else 0.05
    lines = [f"| preset | seed | iterations | wall s | final W1 | first W1 < {threshold} at iteration | after s |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        at, after = r["reached_at_iteration"], r["reached_after_s"]
        lines.append(f"| {r['preset']} | {r['seed']} | {r['iterations']} | {r['wall_s']:.1f} | {r['final_w1']:.3f} "
                     f"| {at if at is not None else 'not reached'} "
                     f"| {f'{after:.1f}' if after is not None else 'never'} |")
    by_seed: dict = {}
    for r in results:
        by_seed.setdefault(r["seed"], {})[r["preset"]] = r
    for seed, pair in by_seed.items():
        fast, slow = pair.get("gaussian_fast"), pair.get("gaussian_moments")
        if not fast or not slow or fast["reached_after_s"] is None:
            continue
        slow_time = slow["reached_after_s"] if slow["reached_after_s"] is not None else slow["wall_s"]
        bound = "" if slow["reached_after_s"] is not None else ">= "
        ratio = slow_time / fast["reached_after_s"]
        lines.append(f"\nseed {seed}: gaussian_fast reached W1 < {threshold} {bound}{ratio:.1f}x sooner than "
                     "gaussian_moments")
    return "\n".join(lines)
