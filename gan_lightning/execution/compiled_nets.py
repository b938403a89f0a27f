"""G and D called through ``torch.compile`` in the training updates (``execution.compile_nets=true``).

Compiling fuses each net's elementwise work (BatchNorm, activations, their backward) into fewer kernels: on a GPU,
fewer launches per iteration, and inside the CUDA graph of ``execution.cuda_graph`` a shorter replay. The first
iterations pay the compilation (tens of seconds). Sampling (grids, metrics, the EMA generator) stays eager: it runs
rarely, and in eval mode it would be compiled again.

``torch.compile`` wraps the nets without changing them, so checkpoints hold the same keys as an eager run's and
either kind of run resumes the other. Where it cannot be used, ``why_not_compiled`` says why and the run goes on
eagerly.
"""
from __future__ import annotations

import os
import shutil

import lightning as L
import torch


def cpu_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU code generator (inductor) is configured to call ($CXX, else g++), when it
    is on PATH."""
    from torch._inductor import config

    return next((name for name in config.cpp.cxx if name and shutil.which(name)), None)


def gpu_c_compiler() -> str | None:
    """The C compiler Triton (torch.compile's GPU kernels) builds its launchers with ($CC, else gcc or clang), when it
    is on PATH."""
    return next((name for name in (os.environ.get("CC"), "gcc", "clang") if name and shutil.which(name)), None)


def why_not_compiled(module: L.LightningModule) -> str | None:
    """None when the training updates can call compiled nets; else why not, in a few words."""
    regularisers = list(getattr(module.objective, "regularisers", {}))
    if regularisers:
        return (f"the regularisers ({', '.join(regularisers)}) backpropagate through D's input gradient (a double "
                "backward), which torch.compile does not support")
    if module.device.type == "cpu" and cpu_compiler() is None:
        return "torch.compile's CPU code needs the C++ compiler it is set for ($CXX, else g++) and it is not on PATH"
    if module.device.type == "cuda" and gpu_c_compiler() is None:
        return "torch.compile's GPU kernels (Triton) need a C compiler ($CC, gcc or clang) and none is on PATH"
    return None


def compile_net(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` behind torch.compile: the same parameters and buffers, the forward compiled on its first calls.

    Static shapes: the training batches keep one size, and G and D may share a forward (``MLP``), whose inputs
    differ in rank; dynamo would otherwise merge their shapes and compile D for any size."""
    return torch.compile(net, dynamic=False)
