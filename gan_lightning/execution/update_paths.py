"""How one optimizer update (zero grads, backward, step) is executed: the seam between the GAN schedule in
``gan.py`` and the machinery that runs it. The execution plan picks a path once per fit (``choose_update_path``) and
the GAN calls it for every update.
"""
from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden

# Hooks Lightning runs around each manual backward and optimizer step, besides the precision plugin and strategy.
CALLBACK_STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
MODULE_BACKWARD_HOOKS = ("backward", "on_before_backward", "on_after_backward")


class LightningUpdate:
    """Lightning's manual-optimisation path: ``manual_backward`` (loss scaling, DDP) and ``LightningOptimizer.step``
    (the precision plugin's step, the callbacks' and the module's step hooks, step counting, profiling)."""

    name = "lightning"

    def __init__(self, module: L.LightningModule) -> None:
        self.module = module

    def __call__(self, optimizer: LightningOptimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.module.manual_backward(loss)
        optimizer.step()

    counts_steps = True  # LightningOptimizer.step counts each step in the loop's progress


class DirectUpdate:
    """``loss.backward()`` and the torch optimizer's ``step()`` called directly, for when nothing in Lightning would
    act on them (``choose_update_path`` checks). The updates are the same bit for bit; what goes is Lightning's
    hook dispatch, about 0.5 ms per step on CPU (a quarter of the 1-D GAN's time). The module's
    ``on_before_optimizer_step`` (gradient clipping) still runs. The steps are not counted here (a replayed CUDA
    graph runs no Python): the execution plan counts them after each iteration."""

    name = "direct"
    counts_steps = False

    def __init__(self, module: L.LightningModule) -> None:
        self.module = module

    def __call__(self, optimizer, loss: torch.Tensor) -> None:
        optimizer = getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer, or a torch optimizer
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.module.on_before_optimizer_step(optimizer)
        optimizer.step()


def why_not_direct(module: L.LightningModule, trainer: L.Trainer) -> str | None:
    """None when Lightning's path would only call ``loss.backward()`` and ``optimizer.step()``; else the reason."""
    precision = trainer.precision_plugin
    if not (type(precision) is Precision or (type(precision) is MixedPrecision and precision.scaler is None)):
        return f"precision {trainer.precision} scales or wraps the steps"
    if type(trainer.strategy) is not SingleDeviceStrategy:
        return f"strategy {type(trainer.strategy).__name__} acts on backward"
    if not isinstance(trainer.profiler, PassThroughProfiler):
        return "a profiler times the steps"
    listening = [type(cb).__name__ for cb in trainer.callbacks
                 if any(is_overridden(hook, cb, L.Callback) for hook in CALLBACK_STEP_HOOKS)]
    if listening:
        return f"callback {', '.join(listening)} listens to the backward/step hooks"
    overridden = [hook for hook in MODULE_BACKWARD_HOOKS if is_overridden(hook, module, L.LightningModule)]
    if overridden:
        return f"the module overrides {', '.join(overridden)}"
    return None


def choose_update_path(module: L.LightningModule, trainer: L.Trainer, allow_direct: bool):
    """The path for this fit and a few words on why."""
    if not allow_direct:
        return LightningUpdate(module), "execution.direct_steps=false"
    reason = why_not_direct(module, trainer)
    if reason is not None:
        return LightningUpdate(module), reason
    return DirectUpdate(module), "one device, no gradient scaler, nothing on the step hooks"
