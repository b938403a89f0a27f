"""Side "limit" of the benchmark, on CUDA: what the hardware does with the project's iteration. The same module,
nets and optimizers as side bare (``bare.without_trainer``), the real samples drawn on the device inside the
iteration (random rows of the resident digits, or the Gaussian's samples), and ``GAN.iteration_step`` recorded
once per phase as a CUDA graph (``CapturedPhases`` of ``CapturedIteration``) and replayed: no loader, no host read
(the finiteness fold and the statistics stay on the device, unread). Side A ÷ limit is how much of the GPU the
project uses."""
from __future__ import annotations

import lightning as L
import torch
from omegaconf import DictConfig

from gan_lightning.execution.cuda_graph import CapturedIteration, CapturedPhases


def limit_loop(module: L.LightningModule, images: torch.Tensor | None, labels: torch.Tensor | None, cfg: DictConfig,
               iterations: int, tick, capture: type[CapturedIteration] = CapturedIteration) -> None:
    """``iterations`` replays; ``images``/``labels``: the training digits in [-1, 1] and their classes on the module's
    device (None: the Gaussian)."""
    device, plan = module.device, module.execution
    n = cfg.data.batch_size * module.hparams.d_steps

    def real_batch():  # one loader batch's worth, as the plan hands it to the iteration (layout, labels)
        if images is not None:
            index = torch.randint(len(images), (n,), device=device)
            batch = images[index], labels[index]
        else:
            batch = torch.randn(n, *cfg.data.sample_shape, device=device) * cfg.data.std + cfg.data.mean
        ((real, real_labels),) = plan.iterations(module, batch)
        return real, real_labels

    captured = CapturedPhases(lambda due: module.iteration_step(*real_batch(), due), capture)
    for _ in range(iterations):
        captured(module.regularisers_due())
        module.iteration += 1
        tick()
