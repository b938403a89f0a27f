"""The GAN step: one LightningModule, manual optimisation, ``d_steps`` D updates then ``g_steps`` G updates."""
from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn

from gan_lightning.losses import D_REDUCTIONS, G_LOSSES, discriminator_loss, generator_loss, r1_penalty

LATENT_DISTRIBUTIONS = ("normal", "uniform", "uniform_symmetric")
LOGGED = ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake")
# What Lightning runs around each manual backward and optimizer step, besides the precision plugin and strategy.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
Optimizer = Callable[..., torch.optim.Optimizer]


def draw_latent(n: int, latent_dim: int, distribution: str, device: torch.device | str | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` latent vectors from N(0, 1) ("normal"), U(0, 1) ("uniform") or U(-1, 1) ("uniform_symmetric")."""
    shape = (n, latent_dim)
    if distribution == "normal":
        return torch.randn(shape, generator=generator, device=device)
    z = torch.rand(shape, generator=generator, device=device)
    return z * 2 - 1 if distribution == "uniform_symmetric" else z


class GAN(L.LightningModule):
    """Generator ``G`` and discriminator ``D`` trained by the classic alternating loop (Goodfellow et al. 2014).

    One training iteration (= one batch from the DataModule) splits the real batch into ``d_steps`` chunks; each
    chunk feeds one D update with a fresh latent batch, then ``g_steps`` G updates follow, each with a fresh
    latent batch of the same size. The other network is frozen (``toggled_optimizer``) during each update.

    ``g_optimizer``/``d_optimizer`` are partially applied optimizer classes (Hydra ``_partial_``); the learning
    rates ``g_lr``/``d_lr`` are separate arguments so that a sweep sets them by short names.

    ``grad_clip_norm`` clips each network's gradient norm before its optimizer steps, in
    ``on_before_optimizer_step``, i.e. after mixed precision has unscaled the gradients.

    ``check_finite`` stops the run at the first iteration whose D loss, G loss or G output is NaN/inf (one
    device-to-host sync per iteration); the epoch-end ``last.ckpt`` written before it stays untouched.

    ``ema_half_life_images`` keeps ``generator_ema``, an exponential moving average of G's weights whose weight
    halves every that many images G has trained on (StyleGAN2's ema_kimg x 1000; per iteration
    beta = 0.5 ** (g_steps x global batch / half-life)). It has requires_grad off, is saved in checkpoints, and
    ``generate`` (grids, metrics, the sample command) uses it when present.

    ``reuse_fake`` lets the first G update of an iteration judge the batch that the last D update generated
    instead of a fresh one (G's graph is kept from that forward pass): one G forward pass per iteration fewer.
    The originals of the MLP, DCGAN and simple FC presets use one generated batch for both updates too.

    ``direct_steps`` calls ``loss.backward()`` and the optimizer's ``step()`` directly when nothing in Lightning acts
    on them: one device, 32-true or bf16-mixed (no gradient scaler), and no callback listening to the backward or
    optimizer-step hooks. The updates are the same, ``trainer.global_step`` still counts every step, and
    ``on_before_optimizer_step`` (gradient clipping) still runs; what goes is Lightning's hook dispatch, about
    0.5 ms per step on CPU (a quarter of the 1-D GAN's time). Otherwise every step goes through
    ``manual_backward`` and ``LightningOptimizer.step`` (gradient scaling, DDP, callbacks).

    ``self.iteration`` counts completed iterations. It is the x-axis of everything the project logs (scalars,
    grids, figures), unlike ``trainer.global_step``, which counts every optimizer step (d_steps + g_steps per
    iteration) in manual optimisation.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        g_optimizer: Optimizer,
        d_optimizer: Optimizer,
        g_lr: float,
        d_lr: float,
        latent_dim: int,
        latent_distribution: str = "normal",
        d_steps: int = 1,
        g_steps: int = 1,
        g_loss: str = "non_saturating",
        real_label: float = 1.0,
        d_loss_reduction: str = "mean",
        num_fixed_samples: int = 64,
        fixed_seed: int = 0,
        grad_clip_norm: float | None = None,
        check_finite: bool = True,
        ema_half_life_images: float | None = None,
        reuse_fake: bool = False,
        direct_steps: bool = True,
        r1_gamma: float = 0.0,
    ) -> None:
        super().__init__()
        if latent_distribution not in LATENT_DISTRIBUTIONS:
            raise ValueError(f"latent_distribution={latent_distribution!r}; expected one of {LATENT_DISTRIBUTIONS}")
        if g_loss not in G_LOSSES:
            raise ValueError(f"g_loss={g_loss!r}; expected one of {G_LOSSES}")
        if d_loss_reduction not in D_REDUCTIONS:
            raise ValueError(f"d_loss_reduction={d_loss_reduction!r}; expected one of {D_REDUCTIONS}")
        if d_steps < 1 or g_steps < 1:
            raise ValueError(f"d_steps and g_steps must be >= 1, got d_steps={d_steps}, g_steps={g_steps}")
        self.automatic_optimization = False
        # The nets and optimizer factories are in the Hydra config that train.py logs and checkpoints.
        self.save_hyperparameters(ignore=["generator", "discriminator", "g_optimizer", "d_optimizer"])
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.generator_ema = None
        if ema_half_life_images:
            self.generator_ema = copy.deepcopy(generator).requires_grad_(False)
        self.iteration = 0
        self._window_sum: torch.Tensor | None = None  # logged values summed since the last write
        self._window_count = 0
        self._direct_for: weakref.ref | None = None  # the trainer for which _direct was decided
        self._direct = False
        # The latent batch behind every logged grid: a buffer, so it moves with the module and survives checkpoints.
        fixed = self.sample_latent(num_fixed_samples, generator=torch.Generator().manual_seed(fixed_seed))
        self.register_buffer("fixed_z", fixed)

    # ----------------------------------------------------------------------------------------------- sampling
    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent vectors on this module's device (on the generator's device when one is given)."""
        device = generator.device if generator is not None else self.device
        return draw_latent(n, self.hparams.latent_dim, self.hparams.latent_distribution, device, generator)

    @torch.no_grad()
    def generate(self, z: torch.Tensor | None = None, use_ema: bool = True) -> torch.Tensor:
        """G(z) in eval mode (BatchNorm running statistics, no dropout), without autograd; ``fixed_z`` by default.

        Uses the EMA generator when there is one (unless ``use_ema`` is false).
        """
        z = self.fixed_z if z is None else z
        net = self.generator_ema if use_ema and self.generator_ema is not None else self.generator
        was_training = net.training
        net.eval()
        try:
            return net(z)
        finally:
            net.train(was_training)

    # ------------------------------------------------------------------------------------------------ training
    def configure_optimizers(self):
        opt_g = self.g_optimizer(self.generator.parameters(), lr=self.hparams.g_lr)
        opt_d = self.d_optimizer(self.discriminator.parameters(), lr=self.hparams.d_lr)
        return opt_g, opt_d

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        d_steps, g_steps = self.hparams.d_steps, self.hparams.g_steps
        if len(real) < d_steps:
            raise ValueError(f"a batch of {len(real)} real samples cannot feed d_steps={d_steps} D updates")
        opt_g, opt_d = self.optimizers()

        d_loss = d_real = d_fake = 0.0
        fake_finite = torch.ones((), dtype=torch.bool, device=real.device)
        for i, real_chunk in enumerate(real.tensor_split(d_steps)):
            keep_graph = self.hparams.reuse_fake and i == d_steps - 1
            loss, real_logits, fake_logits, fake = self._discriminator_step(opt_d, real_chunk, keep_graph)
            d_loss = d_loss + loss.detach()
            d_real = d_real + torch.sigmoid(real_logits.detach()).mean()
            d_fake = d_fake + torch.sigmoid(fake_logits.detach()).mean()
            if self.hparams.check_finite:
                fake_finite = fake_finite & torch.isfinite(fake).all()

        chunk_size = len(real) // d_steps
        g_loss = 0.0
        for j in range(g_steps):
            reused = fake if self.hparams.reuse_fake and j == 0 else None
            g_loss = g_loss + self._generator_step(opt_g, chunk_size, reused).detach()

        if self.hparams.check_finite:
            self._stop_if_not_finite(fake_finite, d_loss, g_loss)
        if self.generator_ema is not None:
            self._update_ema(images=g_steps * chunk_size * self.trainer.world_size)
        self.iteration += 1
        self._log_window_means(torch.stack([d_loss / d_steps, g_loss / g_steps, d_real / d_steps, d_fake / d_steps]),
                               batch_size=len(real))

    def _log_window_means(self, values: torch.Tensor, batch_size: int) -> None:
        """Log the means over the iterations since the last write, when Lightning writes (every
        ``trainer.log_every_n_steps`` iterations). The sums stay on the device, and ``self.log`` (about 1 ms a
        call on CPU) runs only then."""
        # .to: a window restored from a checkpoint was loaded on the CPU
        self._window_sum = values if self._window_sum is None else self._window_sum.to(values.device) + values
        self._window_count += 1
        every = self.trainer.log_every_n_steps
        if every == 0 or self.iteration % every:
            return
        means = self._window_sum / self._window_count
        self._window_sum, self._window_count = None, 0
        self.log_dict(dict(zip(LOGGED, means.unbind())), prog_bar=True, batch_size=batch_size)
        # "step" sets the logger's x-axis: the iteration, like every grid and figure (Lightning would use the
        # 0-based batch count).
        self.log("step", float(self.iteration), logger=True, batch_size=batch_size)

    @torch.no_grad()
    def _update_ema(self, images: int) -> None:
        beta = 0.5 ** (images / self.hparams.ema_half_life_images)
        ema_params, params = list(self.generator_ema.parameters()), list(self.generator.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)  # BatchNorm running statistics follow G's

    def _stop_if_not_finite(self, fake_finite, d_loss, g_loss) -> None:
        flags = torch.stack([fake_finite, torch.isfinite(d_loss), torch.isfinite(g_loss)]).tolist()
        if all(flags):
            return
        bad = [name for name, ok in zip(("G output", "train/d_loss", "train/g_loss"), flags) if not ok]
        raise FloatingPointError(
            f"non-finite {', '.join(bad)} at iteration {self.iteration} (epoch {self.current_epoch}, "
            f"d_loss={d_loss.item():.4g}, g_loss={g_loss.item():.4g}): training stopped; the last good "
            "checkpoint is the epoch-end last.ckpt written before this epoch"
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.hparams.grad_clip_norm:
            # Under 16-mixed Lightning unscales before this hook, except for optimizers that unscale inside their
            # own step (fused ones): unscale those here, so the norm is the true gradient norm. GradScaler.step then
            # knows they are unscaled and still skips the step on inf/NaN.
            scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
            if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
                scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.hparams.grad_clip_norm)

    def _discriminator_step(self, opt_d, real: torch.Tensor, keep_graph: bool = False):
        """One D update on ``real`` and G(fresh z); with ``keep_graph`` the returned fake batch keeps G's graph."""
        with torch.set_grad_enabled(keep_graph):
            fake = self.generator(self.sample_latent(len(real)))
        with self.toggled_optimizer(opt_d):
            if self.hparams.r1_gamma:
                real = real.detach().requires_grad_(True)
            real_logits = self.discriminator(real)
            fake_logits = self.discriminator(fake.detach())
            loss = discriminator_loss(
                real_logits, fake_logits, self.hparams.real_label, self.hparams.d_loss_reduction
            )
            if self.hparams.r1_gamma:
                loss = loss + self.hparams.r1_gamma / 2 * r1_penalty(real_logits, real)
            self._backward_and_step(opt_d, loss)
        return loss, real_logits, fake_logits, fake

    def _generator_step(self, opt_g, n: int, fake: torch.Tensor | None = None) -> torch.Tensor:
        """One G update through D on G(fresh z), or on ``fake`` (a batch that still carries G's graph)."""
        with self.toggled_optimizer(opt_g):
            if fake is None:
                fake = self.generator(self.sample_latent(n))
            fake_logits = self.discriminator(fake)
            loss = generator_loss(fake_logits, self.hparams.g_loss)
            self._backward_and_step(opt_g, loss)
        return loss

    def _backward_and_step(self, opt, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        if self._direct_for is None or self._direct_for() is not self.trainer:
            self._direct_for = weakref.ref(self.trainer)
            self._direct = self.hparams.direct_steps and self._nothing_acts_on_steps()
        if not self._direct:
            self.manual_backward(loss)
            opt.step()
            return
        loss.backward()
        # What LightningOptimizer.step does around the step: count it (global_step), profile. These are Lightning's
        # own (private) per-optimizer callbacks; tests pin global_step and the weights against Lightning's path.
        opt._on_before_step()
        self.on_before_optimizer_step(opt.optimizer)
        opt.optimizer.step()
        opt._on_after_step()

    def _nothing_acts_on_steps(self) -> bool:
        """True when Lightning's backward/step path would only call ``loss.backward()`` and ``optimizer.step()``."""
        trainer = self.trainer
        precision = trainer.precision_plugin
        plain = type(precision) is Precision or (type(precision) is MixedPrecision and precision.scaler is None)
        listening = [cb for cb in trainer.callbacks if any(is_overridden(h, cb, L.Callback) for h in STEP_HOOKS)]
        module_hooks = [h for h in ("backward", "on_before_backward", "on_after_backward")
                        if is_overridden(h, self, L.LightningModule)]
        return type(trainer.strategy) is SingleDeviceStrategy and plain and not listening and not module_hooks

    # -------------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_iteration"] = self.iteration
        checkpoint["gan_log_window"] = (self._window_sum, self._window_count)  # a resumed run logs the same means
        # The latent draws of the next epoch come from the global RNGs: save them so that a resumed run draws
        # the same z as an uninterrupted one (data order is already a function of seed and epoch).
        checkpoint["gan_rng"] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            checkpoint["gan_rng"]["cuda"] = torch.cuda.get_rng_state(self.device)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.iteration = checkpoint.get("gan_iteration", 0)
        self._window_sum, self._window_count = checkpoint.get("gan_log_window", (None, 0))
        rng = checkpoint.get("gan_rng", {})
        if "cpu" in rng:
            torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"], torch.cuda.current_device())
