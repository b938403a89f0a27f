"""A CUDA graph's semantics on the CPU, for testing what ``execution.cuda_graph`` records where there is no GPU.

A CUDA graph keeps the kernels of one call and the memory they touched; a replay runs those kernels again on the same
memory, and no Python. ``OpTape`` does the same with the ATen operations of one call: recording keeps each operation
with the very tensors it read and wrote, and a replay re-runs them, writing every result into the tensor recorded for
it. Python that ran while recording (a counter, a branch, a tensor re-bound to an attribute) does not run again, as on
a GPU, so a body that keeps state in Python gives other numbers than the eager loop, and a test comparing the two
fails.

Also as CUDA's capture: recording changes no state (operations that write their arguments write copies) and draws
no random numbers (the CPU generator is restored), and a read back to the host while recording is an error.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from gan_lightning.execution import ExecutionPlan
from gan_lightning.execution.cuda_graph import CapturedIteration, CapturedPhases

HOST_READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.equal.default,
              torch.ops.aten.is_nonzero.default,
              # outputs whose size depends on values: CUDA syncs to learn it
              torch.ops.aten.nonzero.default, torch.ops.aten.masked_select.default, torch.ops.aten._unique2.default,
              torch.ops.aten.unique_consecutive.default}
# Reads to the host that a CPU tensor serves without dispatching an operation (on a GPU: a copy the capture refuses).
HOST_METHODS = {torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu, torch.Tensor.item, torch.Tensor.__bool__,
                torch.Tensor.__float__, torch.Tensor.__int__, torch.Tensor.__index__}


class RefuseHostReads(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in HOST_METHODS:
            raise RuntimeError(f"Tensor.{func.__name__} reads a value back to the host while recording (a graph "
                               "cannot)")
        return func(*args, **(kwargs or {}))


# Operations that write arguments their schema does not mark: BatchNorm's running mean and variance.
UNMARKED_WRITES = {torch.ops.aten.native_batch_norm.default: [3, 4]}


def written_arguments(func) -> list[int]:
    """Positions of the arguments ``func`` writes (``Tensor(a!)`` in its schema: ``add_``, ``out=``)."""
    marked = [i for i, arg in enumerate(func._schema.arguments)
              if arg.alias_info is not None and arg.alias_info.is_write]
    return marked + UNMARKED_WRITES.get(func, [])


class OpTape(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in HOST_READS:
            raise RuntimeError(f"{func} reads a value back to the host while recording (a graph cannot)")
        if func.namespace == "profiler":
            return func(*args, **kwargs)
        written = written_arguments(func)
        if not written:
            out = func(*args, **kwargs)
        else:  # write into copies: recording changes nothing, as CUDA's capture runs no kernel
            names = [a.name for a in func._schema.arguments]
            originals = {}  # id(copy) -> the argument it stands for

            def copy_of(position: int, value):
                if position not in written:
                    return value
                if isinstance(value, (list, tuple)):  # foreach operations write lists of tensors
                    return type(value)(copy_of(position, v) for v in value)
                if isinstance(value, torch.Tensor):
                    copy = value.clone()
                    originals[id(copy)] = value
                    return copy
                return value

            result = func(*[copy_of(i, a) for i, a in enumerate(args)],
                          **{k: copy_of(names.index(k), v) for k, v in kwargs.items()})
            out = tree_map(lambda t: originals.get(id(t), t), result)
        self.ops.append((func, args, kwargs, out, bool(written)))
        return out

    @torch.no_grad()
    @torch.autocast("cpu", enabled=False)  # the recorded operations already have their dtypes
    def replay(self) -> None:
        for func, args, kwargs, out, writes in self.ops:
            if func.is_view:  # the recorded view still shows its base, whose values the replay rewrites
                continue
            new = func(*args, **kwargs)
            for recorded, fresh in zip(tree_flatten(out)[0], tree_flatten(new)[0]):
                if isinstance(recorded, torch.Tensor) and not (writes and recorded is fresh):
                    if recorded.data_ptr() != fresh.data_ptr():
                        recorded.copy_(fresh)


class EmulatedGraph(CapturedIteration):
    """``CapturedIteration`` with CUDA's graph API replaced by ``OpTape``; ``log`` lists what each call did."""

    log: list[str] = []

    def run_eagerly(self, inputs):
        EmulatedGraph.log.append("eager")
        return self.body(*inputs)

    def record(self) -> None:
        EmulatedGraph.log.append("record")
        tape, rng = OpTape(), torch.get_rng_state()
        with tape, RefuseHostReads():
            self.static_outputs = self.body(*self.static_inputs)
        torch.set_rng_state(rng)
        self.graph = tape

    def replay(self) -> None:
        EmulatedGraph.log.append("replay")
        self.graph.replay()


def emulate(body: Callable, warmup: int = 0) -> EmulatedGraph:
    return EmulatedGraph(body, warmup=warmup)


class EmulatedCapturePlan(ExecutionPlan):
    """The execution plan with each phase of the iteration recorded and replayed by ``EmulatedGraph``, on a CPU.

    Chosen through the config, so that every other ``execution.*`` setting applies as the user's run would:
    ``fit(compose_cfg(dir, [..., *EMULATED_CAPTURE]))``. The plan's own ``why_not_captured`` refuses a CPU (and
    optimizers that keep their step count on the host, which CPU runs have): the one requirement that matters to
    the emulator, the direct update path (a replay runs no Python, so the plan counts the steps), is checked here.
    """

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)  # the update path, the nets; on a CPU the iteration stays eager
        if self.cuda_graph:
            assert self.update.name == "direct", f"recording needs the direct update path, not {self.update.name}"
            self.captured = CapturedPhases(pl_module.iteration_step, capture=EmulatedGraph)


# Overrides that record the iteration under the emulator (execution.cuda_graph=true, served by the plan above).
EMULATED_CAPTURE = ["execution.cuda_graph=true", f"execution._target_={__name__}.{EmulatedCapturePlan.__name__}"]
