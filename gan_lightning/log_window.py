"""Training statistics as means over a window of iterations: summed on the device, read by the host only when written.

``self.log`` costs about 1 ms a call on CPU and a device-to-host sync on GPU; summing instead costs one add. Each
statistic (by name: d_loss, g_loss, d_real, d_fake, r1, ...) has a sum and a count, tensors updated in place, so
that the adds can be part of an iteration recorded as a CUDA graph (a replay runs no Python: a count kept in Python,
or a tensor re-bound, would stop at the recording). A statistic reported in some iterations only (a lazy
regulariser's) is averaged over the iterations that reported it.
"""
from __future__ import annotations

import torch


def mean_of(scalars: list[torch.Tensor]) -> torch.Tensor:
    """The float32 mean of a list of 0-d tensors (one statistic over an iteration's updates); a single one as it is
    (no stack: a copy)."""
    return scalars[0].float() if len(scalars) == 1 else torch.stack(scalars).float().mean()


def joined(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The tensors concatenated along their first dimension (one tensor: itself)."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def iteration_means(reports: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per statistic, its mean over the updates of an iteration that reported it (in the order first reported)."""
    names = dict.fromkeys(name for report in reports for name in report)
    return {name: mean_of([report[name] for report in reports if name in report]) for name in names}


class LogWindow:
    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}  # float32 whatever the values' precision: a bf16 count stops at 256
        self.counts: dict[str, torch.Tensor] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            if name not in self.sums or self.sums[name].device != value.device:  # new, or restored on the CPU
                old_sum, old_count = self.sums.get(name), self.counts.get(name)
                self.sums[name] = torch.zeros((), dtype=torch.float32, device=value.device)
                self.counts[name] = torch.zeros((), dtype=torch.float32, device=value.device)
                if old_sum is not None:
                    self.sums[name].copy_(old_sum)
                    self.counts[name].copy_(old_count)
            self.sums[name].add_(value)
            self.counts[name].add_(1)

    def pop_means(self) -> dict[str, torch.Tensor]:
        """The means since the last pop as 0-d host tensors, read in one copy (statistics not reported since are
        left out); the window starts again."""
        if not self.sums:
            return {}
        names = list(self.sums)
        sums, counts = torch.stack([self.sums[n] for n in names]), torch.stack([self.counts[n] for n in names])
        host = torch.stack([sums / counts.clamp(min=1), counts]).to("cpu", copy=True)
        for name in names:
            self.sums[name].zero_()
            self.counts[name].zero_()
        return {name: mean for name, mean, count in zip(names, host[0].unbind(), host[1].tolist()) if count}

    def state(self) -> dict[str, tuple[torch.Tensor, int]]:
        """name -> (sum, count): what checkpoints hold (the host reads the counts: a checkpoint syncs anyway)."""
        return {name: (self.sums[name].clone(), int(self.counts[name])) for name in self.sums}

    def load_state(self, state) -> None:
        """A state of ``state()``; also the older (sums of d_loss, g_loss, d_real, d_fake; count) pair."""
        if isinstance(state, tuple | list):
            sums, count = state
            state = {} if sums is None else {name: (s, count) for name, s in zip(OLD_NAMES, sums.unbind())}
        self.sums = {name: s.clone().float().reshape(()) for name, (s, _) in state.items()}
        self.counts = {name: torch.tensor(float(c), device=self.sums[name].device) for name, (_, c) in state.items()}


OLD_NAMES = ("d_loss", "g_loss", "d_real", "d_fake")  # the fixed statistics of checkpoints written before names
