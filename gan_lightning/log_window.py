"""Training scalars as means over a window of iterations: summed on the device, read by the host only when written.

``self.log`` costs about 1 ms a call on CPU and a device-to-host sync on GPU; summing instead costs one add. The sums
and the iteration count are tensors updated in place, so the adds can be part of an iteration recorded as a CUDA graph
(a replay runs no Python: a count kept in Python, or a tensor re-bound, would stop at the recording).
"""
from __future__ import annotations

import torch


# One update per iteration is the common case (d_steps = g_steps = 1): no stack or concatenation (a copy) then.
def mean_of(scalars: list[torch.Tensor]) -> torch.Tensor:
    """The float32 mean of a list of 0-d tensors (an iteration's losses, one per update)."""
    return scalars[0].float() if len(scalars) == 1 else torch.stack(scalars).float().mean()


def joined(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The tensors concatenated along their first dimension (one tensor: itself)."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


class WindowSums:
    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.count: torch.Tensor | None = None  # iterations summed, as a float tensor beside the sums

    def add(self, values: torch.Tensor) -> None:
        if self.sums is None:  # float32 whatever the values' precision: a bf16 count stops at 256
            self.sums = torch.zeros_like(values, dtype=torch.float32)
            self.count = torch.zeros((), dtype=torch.float32, device=values.device)
        elif self.sums.device != values.device:  # a window restored from a checkpoint was loaded on the CPU
            self.sums, self.count = self.sums.to(values.device), self.count.to(values.device)
        self.sums.add_(values)
        self.count.add_(1)

    def pop_means(self) -> torch.Tensor:
        """The means since the last pop; the window starts again."""
        means = self.sums / self.count
        self.sums.zero_()
        self.count.zero_()
        return means

    def state(self) -> tuple[torch.Tensor | None, int]:
        """(sums, count): what checkpoints hold (the host reads the count: checkpoints are a sync point anyway)."""
        count = 0 if self.count is None else int(self.count)
        return (self.sums.clone() if count else None), count

    def load_state(self, state: tuple[torch.Tensor | None, int]) -> None:
        sums, count = state
        self.sums, self.count = (None, None) if sums is None else (sums.clone(), sums.new_full((), count))
