"""The project's own iteration with Lightning taken away: side "bare" of the benchmark.

Same data path (the DataModule's uint8 loader, scaled to [-1, 1] after the transfer), same update order and
losses as ``GAN.training_step``, but plain ``backward()``/``step()`` calls and no logging, hooks, progress bar
or checkpoints. Side A minus this loop is what the framework path costs per iteration.
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from gan_lightning.losses import discriminator_loss, generator_loss


def sample_latent(n: int, latent_dim: int, distribution: str, device: torch.device) -> torch.Tensor:
    if distribution == "normal":
        return torch.randn(n, latent_dim, device=device)
    z = torch.rand(n, latent_dim, device=device)
    return z * 2 - 1 if distribution == "uniform_symmetric" else z


def bare_loop(generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, batches, model: DictConfig,
              iterations: int, device: torch.device, tick) -> None:
    """``iterations`` GAN iterations on ``batches`` (an iterator of real batches already on ``device``)."""
    d_steps, g_steps, reuse = model.d_steps, model.g_steps, model.get("reuse_fake", False)

    def latent(n: int) -> torch.Tensor:
        return sample_latent(n, model.latent_dim, model.latent_distribution, device)

    for _ in range(iterations):
        real = next(batches)
        fake = None
        for i, chunk in enumerate(real.tensor_split(d_steps)):
            with torch.set_grad_enabled(reuse and i == d_steps - 1):
                fake = generator(latent(len(chunk)))
            generator.requires_grad_(False)
            loss = discriminator_loss(discriminator(chunk), discriminator(fake.detach()), model.real_label,
                                      model.d_loss_reduction)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            generator.requires_grad_(True)
        discriminator.requires_grad_(False)
        for j in range(g_steps):
            reused = fake if reuse and j == 0 else generator(latent(len(chunk)))
            loss = generator_loss(discriminator(reused), model.g_loss)
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
        discriminator.requires_grad_(True)
        tick()
