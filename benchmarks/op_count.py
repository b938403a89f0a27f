"""``python -m benchmarks.op_count [overrides]`` (from the repository root): the tensor operations of one training
iteration, counted on the CPU, by phase (D updates, G updates, the bookkeeping around them) and by operation.

On a GPU with ``execution.cuda_graph=true`` a replayed iteration launches about one kernel per operation counted here,
and a few microseconds per kernel is what bounds small nets such as ``gaussian_moments``' (see README, "Speed →
GPU"): this count is how a change that removes kernels can be judged without a GPU. It runs the config the same
overrides give ``python -m gan_lightning.train``, eagerly, for two iterations, and counts the second (the first
creates the optimizers' state). Views and the profiler's record_function markers launch nothing and are left out.
The optimizer options in conf/optimizer/ say ``fused`` or ``foreach`` explicitly, so a GPU takes the same path as
the count; torch's own default (neither given) is foreach on CUDA but per-tensor on a CPU, which counts more.
"""
from __future__ import annotations

import sys
import tempfile
from collections import Counter
from collections.abc import Sequence

import lightning as L
from torch.utils._python_dispatch import TorchDispatchMode

from gan_lightning.compose import compose_config
from gan_lightning.train import train

HOST_ONLY = ("_record_function_enter_new", "_record_function_exit")
PHASES = ("d_update", "g_update", "bookkeeping")


class OpCounter(TorchDispatchMode):
    """Counts the non-view operations dispatched while active, by ``phase`` and by name."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = "bookkeeping"
        self.by_phase: Counter[str] = Counter()
        self.by_name: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not func.is_view and name not in HOST_ONLY:
            self.by_phase[self.phase] += 1
            self.by_name[name] += 1
        return func(*args, **(kwargs or {}))


class CountIteration(L.Callback):
    """Counts iteration ``at`` of the GAN (its ``iteration_step``: ``discriminator_step`` calls are the d_update
    phase, ``generator_step`` calls the g_update phase, the rest bookkeeping), then stops the run."""

    def __init__(self, at: int = 1) -> None:
        self.at = at
        self.counter = OpCounter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        counter, body = self.counter, pl_module.iteration_step

        def in_phase(phase: str, update):
            def run(*args, **kwargs):
                counter.phase = phase
                try:
                    return update(*args, **kwargs)
                finally:
                    counter.phase = "bookkeeping"
            return run

        def counted_body(*args, **kwargs):
            if pl_module.iteration != self.at:
                return body(*args, **kwargs)
            with counter:
                return body(*args, **kwargs)

        # instance attributes shadow the methods for this fit only
        pl_module.discriminator_step = in_phase("d_update", pl_module.discriminator_step)
        pl_module.generator_step = in_phase("g_update", pl_module.generator_step)
        pl_module.iteration_step = counted_body

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if pl_module.iteration > self.at:
            trainer.should_stop = True


def count_iteration(overrides: Sequence[str] = ()) -> OpCounter:
    """The counter after one iteration of the config ``overrides`` compose (eager, on the CPU, no logger)."""
    fixed = ["execution.cuda_graph=false", "execution.compile_nets=false", "execution.iterations_per_batch=1",
             "trainer.accelerator=cpu", "trainer.devices=1", "~logger", "trainer.max_epochs=-1",
             "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
             "callbacks.samples.every_n_iterations=0"]
    probe = CountIteration()
    with tempfile.TemporaryDirectory() as out:
        train(compose_config([*overrides, *fixed], out), extra_callbacks=[probe])
    if not probe.counter.by_phase:
        raise RuntimeError("the run ended before the counted iteration")
    return probe.counter


def report(counter: OpCounter, top: int = 15) -> str:
    total = sum(counter.by_phase.values())
    lines = [f"{total} operations in one iteration: "
             + ", ".join(f"{phase} {counter.by_phase[phase]}" for phase in PHASES)]
    lines += [f"{n:7d}  {name}" for name, n in counter.by_name.most_common(top)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    print(report(count_iteration(argv)))


if __name__ == "__main__":
    main()
