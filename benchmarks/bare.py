"""The project's own schedule with Lightning taken away: side "bare" of the benchmark, and the module of side
"limit".

``without_trainer`` sets up the config's GAN (``cfg.model``), its execution plan (``cfg.execution``: the memory
layout, the loader batch's shape) and its optimizers (``configure_optimizers``) as a fit does, with the direct
update path (plain ``backward()``/``step()``). ``bare_loop`` then runs ``GAN.iteration_step`` for every iteration
the loader batches hold, with the finiteness check read as often as the project reads it: no Trainer, hooks,
logging, progress bar, sample grids or checkpoints. What is computed (the objective) and when (the schedule) is the
project's code, so side A minus this loop is what the Lightning path and what it does for the user cost per
iteration. The nets run eagerly: compilation and CUDA-graph replay are side A's (and side limit's) to show.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from gan_lightning.execution.update_paths import DirectUpdate
from gan_lightning.gan import CHECK_EVERY_WITHOUT_LOGGING


def without_trainer(cfg: DictConfig, device: torch.device, datamodule: L.LightningDataModule | None = None,
                    **execution: Any) -> L.LightningModule:
    """The config's GAN on ``device``, set up as a fit sets it up, for calling ``iteration_step`` directly.

    Seeded and built in ``train()``'s order (the same initial weights). ``execution`` overrides settings of the
    configured plan (side limit: ``cuda_graph=True``, for optimizers a CUDA graph can record). ``module.optimizers()``
    returns the torch optimizers, which under a Trainer come from the Trainer.
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = instantiate(cfg.model)
    plan = instantiate(cfg.execution, **execution)
    plan.prepare(module, datamodule)  # module.execution, the layout, the loader batch's shape: the plan's setup hook
    module.to(device)
    optimizers = module.configure_optimizers()
    module.optimizers = lambda: optimizers  # what GAN.iteration_step asks the Trainer for
    plan.update = DirectUpdate(module)
    return module


def bare_loop(module: L.LightningModule, batches: Iterator[Any], iterations: int, tick,
              check_every: int) -> None:
    """``iterations`` iterations of the project's schedule on the loader ``batches`` (already on the device, in the
    nets' range); the finiteness check reads the device every ``check_every`` iterations, as the project's does
    every ``trainer.log_every_n_steps`` loader batches."""
    plan = module.execution
    check_every = check_every or CHECK_EVERY_WITHOUT_LOGGING
    while module.iteration < iterations:
        for real, labels in plan.iterations(module, next(batches)):
            module.iteration_step(real, labels, module.regularisers_due())
            module.iteration += 1
            if module.iteration % check_every == 0:
                stop_if_not_finite(module)
            tick()
            if module.iteration == iterations:
                return


def stop_if_not_finite(module: L.LightningModule) -> None:
    found = module.finite.check()
    if found is not None:
        raise FloatingPointError(f"non-finite {', '.join(found.names)} at iteration "
                                 f"{module.iteration - found.iterations_ago}")
