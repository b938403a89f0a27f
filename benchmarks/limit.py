"""Side "limit" of the benchmark, on CUDA: what the hardware does with the same nets and optimizers. A plain loop
with the real samples drawn on the device (random rows of the resident digits, or the Gaussian's samples), no
finiteness check and no logging, the whole iteration recorded once as a CUDA graph and replayed. Side A ÷ limit
is how much of the GPU the project uses."""
from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from gan_lightning.bench.bare import bare_iteration
from gan_lightning.execution.cuda_graph import CapturedIteration


def limit_loop(generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, images: torch.Tensor | None,
               cfg: DictConfig, iterations: int, device: torch.device, tick,
               capture: type[CapturedIteration] = CapturedIteration) -> None:
    """``iterations`` replays; ``images``: the training digits in [-1, 1] on ``device`` (None: the Gaussian)."""
    iteration = bare_iteration(generator, discriminator, opt_g, opt_d, cfg.model, device)
    n = cfg.data.batch_size * cfg.model.d_steps

    def real_batch() -> torch.Tensor:
        if images is not None:
            return images[torch.randint(len(images), (n,), device=device)]
        return torch.randn(n, *cfg.data.sample_shape, device=device) * cfg.data.std + cfg.data.mean

    captured = capture(lambda: iteration(real_batch()))
    for _ in range(iterations):
        captured()
        tick()
