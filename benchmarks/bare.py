"""The project's own iteration with Lightning taken away: side "bare" of the benchmark, and the body of side
"limit".

Same data path (the DataModule's uint8 batches, scaled to [-1, 1] on the device), same update order, losses and
finiteness check as ``GAN.training_step``, but plain ``backward()``/``step()`` calls and no Lightning loop,
hooks, logging, progress bar, sample grids or checkpoints. Side A minus this loop is what the framework path and
what it does for the user cost per iteration. (No R1, gradient penalty, labels, EMA or clipping: it refuses presets
that use them.)
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig
from torch import nn

from gan_lightning.finite_watch import FiniteWatch, all_finite
from gan_lightning.log_window import mean_of
from gan_lightning.objective.losses import discriminator_loss, generator_loss
from gan_lightning.sampling import draw_latent

Iteration = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def bare_iteration(generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, model: DictConfig,
                   device: torch.device) -> Iteration:
    """The GAN iteration as a function of the real batch: returns (D loss mean, G loss mean, all fakes finite),
    reading nothing back to the host."""
    for key in ("r1_gamma", "gp_lambda", "num_classes", "ema_half_life_images", "grad_clip_norm"):
        if model.get(key):
            raise ValueError(f"the bare loop does not implement model.{key}; benchmark presets without it")
    d_steps, g_steps, reuse = model.d_steps, model.g_steps, model.get("reuse_fake", False)

    def latent(n: int) -> torch.Tensor:
        return draw_latent(n, model.latent_dim, model.latent_distribution, device)

    def iteration(real: torch.Tensor):
        if model.get("channels_last") and real.dim() == 4:  # as GAN.training_step
            real = real.contiguous(memory_format=torch.channels_last)
        fake, d_losses, g_losses, fakes = None, [], [], []
        for i, chunk in enumerate(real.tensor_split(d_steps)):
            with torch.set_grad_enabled(reuse and i == d_steps - 1):
                fake = generator(latent(len(chunk)))
            generator.requires_grad_(False)
            loss = discriminator_loss(discriminator(chunk), discriminator(fake.detach()), model.real_label,
                                      model.d_loss_reduction, model.get("d_loss", "bce"))
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            generator.requires_grad_(True)
            d_losses.append(loss.detach())
            if model.check_finite:
                fakes.append(fake)
        discriminator.requires_grad_(False)
        for j in range(g_steps):
            reused = fake if reuse and j == 0 else generator(latent(len(chunk)))
            loss = generator_loss(discriminator(reused), model.g_loss)
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            g_losses.append(loss.detach())
        discriminator.requires_grad_(True)
        # reduced once, after the updates, as GAN.iteration_body does
        fake_finite = all_finite(fakes) if model.check_finite else torch.ones((), dtype=torch.bool, device=device)
        return mean_of(d_losses), mean_of(g_losses), fake_finite

    return iteration


def bare_loop(generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, batches, model: DictConfig,
              iterations: int, device: torch.device, tick, check_every: int = 20) -> None:
    """``iterations`` GAN iterations on ``batches`` (an iterator of real batches already on ``device``); the
    finiteness check reads the device every ``check_every`` iterations (the project's trainer.log_every_n_steps)."""
    iteration = bare_iteration(generator, discriminator, opt_g, opt_d, model, device)
    watch = FiniteWatch()
    for done in range(1, iterations + 1):
        d_loss, g_loss, fake_finite = iteration(next(batches))
        if model.check_finite:  # as the project: folded on the device, read every check_every iterations
            watch.add(fake_finite, torch.stack([d_loss, g_loss]))
            if done % check_every == 0 and watch.check() is not None:
                raise FloatingPointError("non-finite loss or G output")
        tick()
