"""The whole GAN iteration recorded once as a CUDA graph and replayed (``execution.cuda_graph=true``).

A small GAN on a GPU spends its time launching kernels: the D and G updates of one iteration are a few hundred
small kernels, each a few microseconds of host work, while the GPU waits. A replay launches them all at once.
The iteration (``GAN.iteration_step``: the D and G updates, the regularisers, the EMA, fresh latents from CUDA's
graph-safe RNG, the sums behind the logged statistics and the finiteness fold) reads nothing back to the host and
keeps its state in tensors written in place, so it can be recorded as it is. An iteration whose Python differs
(a lazy regulariser due in some iterations only) is another phase: each phase is recorded once
(``CapturedPhases``), and every iteration replays the recording of its phase. ``tests/graph_emulator.py`` replays
it on a CPU the way a graph does (the recorded operations, no Python), which is how the tests check that.

It needs (``why_not_captured`` names what is missing, and the run goes on eagerly): a CUDA device; the direct
update path (one device, no gradient scaler, nothing listening on the step hooks: ``update_paths.py``); and
optimizers that keep their step count on the device (SGD, or created with ``capturable=True``, which
the execution plan asks for when it may).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

import lightning as L
import torch

from gan_lightning.execution.update_paths import why_not_direct

# Eager iterations on a side stream before recording: what is created lazily (Adam's moments, cuBLAS workspaces,
# cuDNN plans) must exist before the graph is recorded, or it would be created inside it.
WARMUP_ITERATIONS = 3


def capturable_option(factory) -> dict[str, bool]:
    """``{"capturable": True}`` for an optimizer class (or partial of one) that has that option, else ``{}``."""
    cls = getattr(factory, "func", factory)
    return {"capturable": True} if "capturable" in inspect.signature(cls).parameters else {}


def optimizer_is_capturable(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step()`` can be recorded: it reads no step count from the host."""
    if isinstance(optimizer, torch.optim.SGD):  # no step count; PyTorch's own whole-network capture example uses it
        return True
    # Every other torch optimizer refuses to be recorded without capturable=True (fused ones too).
    return all(group.get("capturable", False) for group in optimizer.param_groups)


def why_not_captured(module: L.LightningModule, trainer: L.Trainer) -> str | None:
    """None when the iteration can be recorded as a CUDA graph; else why not, in a few words."""
    if module.device.type != "cuda":
        return f"no CUDA device (the run trains on {module.device.type})"
    reason = why_not_direct(module, trainer)
    if reason is not None:
        return reason
    if getattr(trainer, "_detect_anomaly", False):
        return "trainer.detect_anomaly checks every backward on the host"
    if getattr(module, "lr_schedule", None) is not None:
        return "model.lr_schedule changes the learning rates, which a recorded graph would keep as recorded"
    for name, optimizer in zip(("g_optimizer", "d_optimizer"), trainer.optimizers):
        if not optimizer_is_capturable(optimizer):
            return (f"model.{name} ({type(optimizer).__name__}) keeps its step count on the host (use SGD, or an "
                    "optimizer with a capturable option)")
    return None


class CapturedIteration:
    """Calls ``body(*inputs)``: eagerly for the first ``warmup`` calls (on a side stream, as CUDA graphs require),
    then records it once into a graph and from then on copies each call's inputs into the recorded ones and replays.

    ``body`` must take and return tensors and read nothing back to the host. Inputs of another shape than the
    recorded ones (a last short batch) run eagerly, and the graph stays for the next full batch. The outputs are
    copies: the recorded ones are overwritten by the next replay.
    """

    def __init__(self, body: Callable[..., tuple[torch.Tensor, ...]], warmup: int = WARMUP_ITERATIONS) -> None:
        self.body, self.warmup = body, warmup
        self.eager_calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_inputs: tuple[torch.Tensor | None, ...] = ()
        self.static_outputs: tuple[torch.Tensor, ...] = ()

    def __call__(self, *inputs: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        if self.graph is None and self.eager_calls < self.warmup:
            self.eager_calls += 1
            return self.run_eagerly(inputs)
        if self.graph is None:
            self.static_inputs = tuple(None if x is None else x.clone() for x in inputs)
            self.record()
        elif not self.fits(inputs):
            return self.body(*inputs)
        else:
            for static, x in zip(self.static_inputs, inputs):
                if static is not None:
                    static.copy_(x)
        self.replay()
        return tuple(t.clone() for t in self.static_outputs)

    def fits(self, inputs) -> bool:
        return all((a is None and b is None) or (a is not None and b is not None and a.shape == b.shape
                                                 and a.dtype == b.dtype and a.device == b.device)
                   for a, b in zip(self.static_inputs, inputs))

    # The three steps that touch CUDA's graph API; everything above is plain Python.
    def run_eagerly(self, inputs) -> tuple[torch.Tensor, ...]:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            outputs = self.body(*inputs)
        torch.cuda.current_stream().wait_stream(side)
        return outputs

    def record(self) -> None:
        graph = torch.cuda.CUDAGraph()
        # (Lightning's autocast runs without its cache, so every cast of a weight is recorded as a kernel, not
        # taken from a cache as a constant: tests/test_gan_step.py checks the same property for the eager path.)
        # thread_local: CUDA calls from other threads (a DataLoader's pin-memory thread) do not break the recording.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.static_outputs = self.body(*self.static_inputs)
        self.graph = graph  # only once recorded: a failed recording leaves nothing to replay

    def replay(self) -> None:
        self.graph.replay()


class CapturedPhases:
    """One ``CapturedIteration`` per phase: ``call(phase, *inputs)`` runs ``body(*inputs, phase)`` through the
    recording of ``phase`` (a hashable value the body's Python depends on, such as the regularisers due in each D
    update). Every phase warms up and is recorded on its first calls, so the state it creates (a statistic's sum
    seen in this phase only) exists before its recording."""

    def __init__(self, body: Callable[..., tuple[torch.Tensor, ...]], capture=CapturedIteration) -> None:
        self.body, self.capture = body, capture
        self.phases: dict = {}

    def __call__(self, phase, *inputs: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        if phase not in self.phases:
            self.phases[phase] = self.capture(lambda *xs: self.body(*xs, phase))
        return self.phases[phase](*inputs)
