"""Timing and FLOP counting that both sides share: a tick at the end of every training iteration (or of every
loader batch, counting the iterations it held)."""
from __future__ import annotations

import time

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Timestamps the ends of iterations ``warmup`` and ``iterations``: the steady-state window.

    Only those two ticks synchronise a GPU, so the timed loop runs as it would untimed.
    """

    def __init__(self, device: torch.device, iterations: int, warmup: int) -> None:
        if not 0 < warmup < iterations:
            raise ValueError(f"need 0 < warmup ({warmup}) < iterations ({iterations})")
        self.device, self.iterations, self.warmup = device, iterations, warmup
        self.count = 0
        self.marks: dict[int, float] = {}

    def tick(self, iterations: int = 1) -> None:
        before, self.count = self.count, self.count + iterations
        for mark in (self.warmup, self.iterations):
            if before < mark <= self.count:
                if mark != self.count:
                    raise ValueError(f"iteration {mark} ends inside a batch of {iterations} iterations: time a "
                                     "multiple of execution.iterations_per_batch (warm-up included)")
                synchronize(self.device)
                self.marks[mark] = time.perf_counter()

    @property
    def seconds_per_iteration(self) -> float:
        if self.iterations not in self.marks:
            raise RuntimeError(f"the loop ran {self.count} of {self.iterations} iterations")
        return (self.marks[self.iterations] - self.marks[self.warmup]) / (self.iterations - self.warmup)


class FlopTick:
    """Counts the matmul/conv FLOPs (torch.utils.flop_counter) of the iteration after tick ``after`` (per iteration,
    when that tick ends a batch of several)."""

    def __init__(self, after: int = 1) -> None:
        self.after = after
        self.count = 0
        self.flops: int | None = None
        self._mode: FlopCounterMode | None = None

    def tick(self, iterations: int = 1) -> None:
        self.count += 1
        if self.count == self.after:
            self._mode = FlopCounterMode(display=False)
            self._mode.__enter__()
        elif self.count == self.after + 1 and self._mode is not None:
            self._mode.__exit__(None, None, None)
            # None when nothing was counted: iterations replayed from a CUDA graph dispatch no operation to count
            # (with execution.iterations_per_batch the counted batch may hold replays only).
            self.flops = self._mode.get_total_flops() // iterations or None
            self._mode = None


class TickEachIteration(L.Callback):
    """Side A's clock: calls ``tick(iterations)`` when Lightning finishes a training batch (one GAN iteration, or
    ``execution.iterations_per_batch``)."""

    def __init__(self, tick) -> None:
        self.tick = tick

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.tick(pl_module.execution.iterations_per_batch)


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 5,
                min_seconds: float = 0.05) -> float:
    """Measured FLOP/s of a large square matmul on ``device`` (best of ``repeats``), with the current threads. The
    size doubles from 256 up to 8192 (GPU) or 2048 (CPU) until one product takes ``min_seconds``: a dtype the CPU
    has no kernels for (bf16 without AVX512-BF16 or AMX: 12 s for one 2048 product) is measured small."""
    n, cap = 256, 8192 if device.type == "cuda" else 2048
    while n < cap and _best_product_seconds(n, device, dtype, repeats=1) < min_seconds:
        n *= 2
    return 2 * n**3 / _best_product_seconds(n, device, dtype, repeats)


def _best_product_seconds(n: int, device: torch.device, dtype: torch.dtype, repeats: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)  # warm-up: kernels, caches, thread pool
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best
