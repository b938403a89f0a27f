"""Training scalars as means over a window of iterations: summed on the device, read by the host only when written.

``self.log`` costs about 1 ms a call on CPU and a device-to-host sync on GPU; summing instead costs one add. The sums
and the iteration count live in one tensor updated in place, so the add can be part of an iteration recorded as a
CUDA graph (a replay runs no Python: a count kept in Python, or a tensor re-bound, would stop at the recording).
"""
from __future__ import annotations

import torch


class WindowSums:
    def __init__(self) -> None:
        self.totals: torch.Tensor | None = None  # the sums of the values, then the iteration count

    def add(self, values: torch.Tensor) -> None:
        if self.totals is None or self.totals.device != values.device:  # the first add, or a window restored on the CPU
            self.totals = (torch.zeros(len(values) + 1, device=values.device) if self.totals is None
                           else self.totals.to(values.device))
        self.totals.add_(torch.cat([values.float(), values.new_ones(1, dtype=torch.float)]))

    def pop_means(self) -> torch.Tensor:
        """The means since the last pop; the window starts again."""
        means = self.totals[:-1] / self.totals[-1]
        self.totals.zero_()
        return means

    def state(self) -> tuple[torch.Tensor | None, int]:
        """(sums, count): what checkpoints hold (the host reads the count: checkpoints are a sync point anyway)."""
        count = 0 if self.totals is None else int(self.totals[-1])
        return (self.totals[:-1].clone() if count else None), count

    def load_state(self, state: tuple[torch.Tensor | None, int]) -> None:
        sums, count = state
        self.totals = None if sums is None else torch.cat([sums.float(), sums.new_full((1,), count, dtype=torch.float)])
