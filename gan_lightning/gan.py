"""The GAN step: one LightningModule, manual optimisation, ``d_steps`` D updates then ``g_steps`` G updates."""
from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from gan_lightning.checkpoint import saved_checkpoint
from gan_lightning.compiled_nets import compile_net, why_not_compiled
from gan_lightning.cuda_graph import CapturedIteration, capturable_option, why_not_captured
from gan_lightning.data import real_labels, real_samples
from gan_lightning.ema import ema_beta, update_ema
from gan_lightning.errors import is_int, is_number, require, require_int
from gan_lightning.finite_watch import FiniteWatch, all_finite
from gan_lightning.log_window import WindowSums, joined, mean_of
from gan_lightning.losses import (
    D_LOSSES,
    D_READINGS,
    D_REDUCTIONS,
    G_LOSSES,
    TWO_TARGET_LOSSES,
    discriminator_loss,
    gradient_penalty,
    r1_penalty,
)
from gan_lightning.sampling import LATENT_DISTRIBUTIONS, class_rows, draw_latent
from gan_lightning.update_paths import choose_update_path

LOGGED = ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake")
# Iterations between finiteness checks when nothing is logged (otherwise they come with each log write).
CHECK_EVERY_WITHOUT_LOGGING = 50
Optimizer = Callable[..., torch.optim.Optimizer]


class GAN(L.LightningModule):
    """Generator ``G`` and discriminator ``D`` trained by the alternating loop of Goodfellow et al. (2014).

    The settings are described in ``conf/model/_base.yaml``, the batch contract in ``gan_lightning.data``.
    ``self.iteration`` counts completed iterations: the x-axis of everything the project logs (unlike
    ``trainer.global_step``, which counts every optimizer step in manual optimisation).
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
        d_loss: str = "bce",
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
        gp_lambda: float = 0.0,
        num_classes: int = 0,
        cuda_graph: bool = False,
        compile_nets: bool = False,
        channels_last: bool = False,
        iterations_per_batch: int = 1,
    ) -> None:
        super().__init__()
        self.check_settings(locals())
        self.automatic_optimization = False
        # The nets and optimizer factories are in the Hydra config that train.py logs and checkpoints.
        self.save_hyperparameters(ignore=["generator", "discriminator", "g_optimizer", "d_optimizer"])
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.g_loss = G_LOSSES[g_loss]
        self.d_reading = D_READINGS[d_loss]
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if ema_half_life_images else None
        self.iteration = 0
        self.window = WindowSums()
        self.finite = FiniteWatch()
        self.update = None  # how an update runs (gan_lightning.update_paths), chosen when a fit starts
        self.captured: CapturedIteration | None = None  # the iteration as a CUDA graph (model.cuda_graph)
        # What the training updates call: G and D, or the same nets behind torch.compile (model.compile_nets). A
        # tuple, so that the compiled wrappers are not registered as submodules (the checkpoint keys stay the same).
        self.training_nets: tuple[nn.Module, nn.Module] = (generator, discriminator)
        # The latent batch behind every logged grid: a buffer, so it moves with the module and survives checkpoints.
        fixed = self.sample_latent(num_fixed_samples, generator=torch.Generator().manual_seed(fixed_seed))
        self.register_buffer("fixed_z", fixed)
        if num_classes:  # the grid's labels: one row per class (registered only for conditional GANs)
            self.register_buffer("fixed_y", class_rows(num_fixed_samples, num_classes)[0])

    # ------------------------------------------------------------------------------------------------ settings
    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """Each GAN setting checked once, here where it is used; the message names its config key (model.*).

        ``train()`` also calls this on the config before the nets are built, so that a bad size is named before a
        net fails on it (settings not given take the constructor's defaults; optimizers are checked once built).
        """
        defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        s = {**defaults, **settings}
        for key in ("d_steps", "g_steps", "latent_dim", "num_fixed_samples", "iterations_per_batch"):
            require_int(f"model.{key}", s.get(key))
        require_int("model.num_classes", s["num_classes"], minimum=0)
        require(s["num_classes"] == 0 or s["num_fixed_samples"] % s["num_classes"] == 0, "model.num_fixed_samples",
                s["num_fixed_samples"], f"a conditional grid has one row per class: use a multiple of "
                f"model.num_classes={s['num_classes']}")
        require(is_int(s["fixed_seed"]), "model.fixed_seed", s["fixed_seed"], "must be an integer")
        for key in ("g_lr", "d_lr"):
            require(is_number(s.get(key)) and s[key] > 0, f"model.{key}", s.get(key), "a learning rate must be > 0")
        for key in ("r1_gamma", "gp_lambda", "grad_clip_norm", "ema_half_life_images"):
            value = s[key]
            require(value is None or (is_number(value) and value >= 0), f"model.{key}", value, "must be >= 0")
        require(is_number(s["real_label"]) and 0 < s["real_label"] <= 1, "model.real_label", s["real_label"],
                "the target for real samples must be in (0, 1] (0.9 is one-sided label smoothing)")
        require(s["real_label"] == 1 or s["d_loss"] in TWO_TARGET_LOSSES, "model.real_label", s["real_label"],
                f"label smoothing needs a loss with targets ({', '.join(TWO_TARGET_LOSSES)}), not "
                f"model.d_loss={s['d_loss']}")
        for key, allowed in (("g_loss", G_LOSSES), ("d_loss", D_LOSSES), ("d_loss_reduction", D_REDUCTIONS),
                             ("latent_distribution", LATENT_DISTRIBUTIONS)):
            require(s[key] in allowed, f"model.{key}", s[key], f"expected one of {', '.join(allowed)}")
        for key in ("check_finite", "reuse_fake", "direct_steps", "cuda_graph", "compile_nets",
                    "channels_last"):
            require(isinstance(s[key], bool), f"model.{key}", s[key], "must be true or false")
        for key in ("g_optimizer", "d_optimizer"):
            if callable(s.get(key)):
                cls_ = getattr(s[key], "func", s[key])  # a functools.partial from Hydra's _partial_
                name = f"{getattr(cls_, '__module__', '')}.{getattr(cls_, '__qualname__', cls_)}"
                require(inspect.isclass(cls_) and issubclass(cls_, torch.optim.Optimizer), f"model.{key}._target_",
                        name, "is not a torch.optim.Optimizer")

    # ------------------------------------------------------------------------------------------- the algorithm
    def training_step(self, batch: Any, batch_idx: int) -> None:
        """``iterations_per_batch`` iterations, each on its share of the batch (``gan_lightning.data``)."""
        hp = self.hparams
        real, labels = real_samples(batch), real_labels(batch) if hp.num_classes else None
        if len(real) < hp.d_steps * hp.iterations_per_batch:
            raise ValueError(f"a batch of {len(real)} real samples cannot feed {hp.iterations_per_batch} iteration(s) "
                             f"of d_steps={hp.d_steps} D updates")
        if hp.channels_last and real.dim() == 4:  # images in the nets' layout (configure_model)
            real = real.contiguous(memory_format=torch.channels_last)
        for real_share, label_share in split_with_labels(real, labels, hp.iterations_per_batch):
            (self.captured or self.iteration_body)(real_share, label_share)
            self.update.count_steps(hp.d_steps + hp.g_steps)
            self.iteration += 1
            self.after_iteration(len(real_share))

    def iteration_body(self, real: torch.Tensor, labels: torch.Tensor | None) -> tuple[()]:
        """One iteration: ``d_steps`` D updates, ``g_steps`` G updates, the EMA, and the iteration's (D loss, G loss,
        D(x), D(G(z))) means and finiteness folded into the log window and the finiteness watch. Reads nothing back
        to the host and keeps no state in Python (the window and the watch write their tensors in place), so that
        ``cuda_graph.py`` can record it: a replay then runs all of it."""
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        # The updates' outputs are kept and reduced once after the loops, not folded in after each update: with
        # d_steps = g_steps = 20 that is ~250 kernels fewer per replayed iteration.
        d_losses, real_outs, fake_outs, fakes = [], [], [], []
        for i, (real_chunk, label_chunk) in enumerate(split_with_labels(real, labels, hp.d_steps)):
            keep_graph = hp.reuse_fake and i == hp.d_steps - 1  # G's first update may judge this fake batch
            loss, real_out, fake_out, fake, fake_labels = self.discriminator_update(opt_d, real_chunk, label_chunk,
                                                                                    keep_graph)
            d_losses.append(loss.detach())
            real_outs.append(real_out.detach())
            fake_outs.append(fake_out.detach())
            if hp.check_finite:
                fakes.append(fake)

        batch_size = len(real) // hp.d_steps
        g_losses = []
        for j in range(hp.g_steps):
            reused = (fake, fake_labels) if hp.reuse_fake and j == 0 else (None, None)
            g_losses.append(self.generator_update(opt_g, batch_size, *reused).detach())

        if self.generator_ema is not None:
            images = hp.g_steps * batch_size * self.trainer.world_size
            update_ema(self.generator_ema, self.generator, ema_beta(images, hp.ema_half_life_images))
        # Mean D loss and G loss over the updates; mean D(x) and D(G(z)) over every output of the D updates. In
        # float32: under bf16/16-mixed the losses and outputs can be half precision.
        means = torch.stack([mean_of(d_losses), mean_of(g_losses), self.d_reading(joined(real_outs).float()).mean(),
                             self.d_reading(joined(fake_outs).float()).mean()])
        if hp.check_finite:  # read by stop_if_not_finite
            self.finite.add(all_finite(fakes), means[:2])
        self.window.add(means)
        return ()

    def discriminator_update(self, opt_d, real: torch.Tensor, labels: torch.Tensor | None = None,
                             keep_graph: bool = False):
        """One D update on ``real`` (with its ``labels`` when conditional) and G(fresh z); with ``keep_graph`` the
        returned fake batch keeps G's graph."""
        hp = self.hparams
        fake_labels = self.sample_labels(len(real))
        with torch.set_grad_enabled(keep_graph):
            fake = self.run_generator(self.sample_latent(len(real)), fake_labels)
        with self.toggled_optimizer(opt_d):  # G frozen
            if hp.r1_gamma:
                real = real.detach().requires_grad_(True)
            real_out = self.run_discriminator(real, labels)
            fake_out = self.run_discriminator(fake.detach(), fake_labels)
            loss = discriminator_loss(real_out, fake_out, hp.real_label, hp.d_loss_reduction, hp.d_loss)
            if hp.r1_gamma:
                loss = loss + hp.r1_gamma / 2 * r1_penalty(real_out, real)
            if hp.gp_lambda:  # interpolates judged with the real labels (all of them when unconditional)
                loss = loss + hp.gp_lambda * gradient_penalty(lambda x: self.run_discriminator(x, labels), real, fake)
            self.update(opt_d, loss)
        return loss, real_out, fake_out, fake, fake_labels

    def generator_update(self, opt_g, n: int, fake: torch.Tensor | None = None,
                         fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        """One G update through D on G(fresh z), or on ``fake`` (a batch that still carries G's graph)."""
        with self.toggled_optimizer(opt_g):  # D frozen
            if fake is None:
                fake_labels = self.sample_labels(n)
                fake = self.run_generator(self.sample_latent(n), fake_labels)
            loss = self.g_loss(self.run_discriminator(fake, fake_labels))
            self.update(opt_g, loss)
        return loss

    # A conditional GAN's nets take the class labels as a second argument: G(z, y), D(x, y). Without ``net``, the
    # nets the training updates call (compiled with model.compile_nets).
    def run_generator(self, z: torch.Tensor, labels: torch.Tensor | None = None, net: nn.Module | None = None):
        net = self.training_nets[0] if net is None else net
        return net(z) if labels is None else net(z, labels)

    def run_discriminator(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        net = self.training_nets[1]
        return net(x) if labels is None else net(x, labels)

    # ------------------------------------------------------------------------------------------ around the steps
    def configure_model(self) -> None:
        # model.channels_last: conv weights (and so activations) in NHWC, the layout oneDNN and cuDNN's tensor-core
        # kernels are fastest in. Here, before the Trainer moves the module (the layout moves with it) and wraps it
        # for DDP (whose gradient buckets take the parameters' strides).
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def configure_optimizers(self):
        return tuple(self.make_optimizer(factory, net, lr) for factory, net, lr in (
            (self.g_optimizer, self.generator, self.hparams.g_lr),
            (self.d_optimizer, self.discriminator, self.hparams.d_lr)))

    def make_optimizer(self, factory: Optimizer, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        """``factory(net's parameters, lr)``; with ``capturable=True`` when the iteration may be recorded as a CUDA
        graph and the optimizer class has that option (Adam, AdamW, RMSprop...: the step count stays on the GPU)."""
        kwargs = capturable_option(factory) if self.hparams.cuda_graph and self.device.type == "cuda" else {}
        return factory(net.parameters(), lr=lr, **kwargs)

    def on_train_start(self) -> None:
        # The loader batch holds as many iterations as the step takes from it (conf/data/*.yaml interpolate it).
        given = getattr(self.trainer.datamodule, "iterations_per_batch", None)
        require(given in (None, self.hparams.iterations_per_batch), "data.iterations_per_batch", given,
                f"must equal model.iterations_per_batch={self.hparams.iterations_per_batch} (the step would cut "
                "each batch into the wrong number of iterations)")
        for optimizer in self.trainer.optimizers:  # after a resume: the checkpoint may hold the other layout
            match_state_layout(optimizer)
        self.update, why = choose_update_path(self, self.trainer, self.hparams.direct_steps)
        rank_zero_info(f"Optimizer updates: {self.update.name} path ({why})")
        self.training_nets = (self.generator, self.discriminator)
        if self.hparams.compile_nets:
            reason = why_not_compiled(self)
            if reason is None:
                self.training_nets = (compile_net(self.generator), compile_net(self.discriminator))
                rank_zero_info("Nets: G and D compiled with torch.compile for the training updates (compiling takes "
                               "the first iterations; sampling stays eager)")
            else:
                rank_zero_info(f"Nets: eager, not compiled (model.compile_nets=true, but {reason})")
        self.captured = None
        if self.hparams.cuda_graph:
            reason = why_not_captured(self, self.trainer)
            if reason is None:
                self.captured = CapturedIteration(self.iteration_body)
                rank_zero_info(f"Iteration: recorded as a CUDA graph after {self.captured.warmup} eager iterations, "
                               "then replayed")
            else:
                rank_zero_info(f"Iteration: eager, not a CUDA graph (model.cuda_graph=true, but {reason})")

    def on_train_epoch_end(self) -> None:
        self.stop_if_not_finite()

    def on_train_end(self) -> None:
        self.stop_if_not_finite()
        self.stop_if_state_not_finite("at the end of training")

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.hparams.grad_clip_norm:
            # Under 16-mixed Lightning unscales before this hook, except for optimizers that unscale inside their
            # own step (fused ones): unscale those here, so the norm is the true gradient norm. GradScaler.step then
            # knows they are unscaled and still skips the step on inf/NaN.
            try:
                scaler = getattr(self.trainer.precision_plugin, "scaler", None)
            except RuntimeError:  # called outside a Trainer
                scaler = None
            if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
                scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.hparams.grad_clip_norm)

    def stop_if_not_finite(self) -> None:
        """Stop the run if a G output or loss was non-finite since the last check, naming the first such iteration
        (the host reads the device's verdicts here only: every log write, epoch end and checkpoint)."""
        found = self.finite.check()
        if found is None:
            return
        raise FloatingPointError(
            f"non-finite {', '.join(found.names)} at iteration {self.iteration - found.iterations_ago} "
            f"(epoch {self.current_epoch}, d_loss={found.d_loss:.4g}, g_loss={found.g_loss:.4g}, found at iteration "
            f"{self.iteration}): training stopped; {self._last_good()}"
        )

    def non_finite_state(self) -> list[str]:
        """Names of the parameters, buffers and optimizer states that hold NaN or inf (losses can stay finite
        while, say, Adam's second moments overflow)."""
        tensors = [*self.named_parameters(), *self.named_buffers()]
        for name, opt in zip(("g_optimizer", "d_optimizer"), self.trainer.optimizers):
            tensors += [(f"{name}.state.{key}", value) for state in opt.state.values() for key, value in state.items()]
        bad = [name for name, t in tensors if torch.is_tensor(t) and t.is_floating_point() and not t.isfinite().all()]
        return list(dict.fromkeys(bad))

    def stop_if_state_not_finite(self, when: str) -> None:
        bad = self.non_finite_state()
        if bad:
            names = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
            raise FloatingPointError(f"non-finite {names} at iteration {self.iteration} (found {when}): training "
                                     f"stopped without saving this state; {self._last_good()}")

    def _last_good(self) -> str:
        path = saved_checkpoint(self.trainer)
        return f"the last good checkpoint is {path}" if path else "no checkpoint was written before this"

    def after_iteration(self, batch_size: int) -> None:
        """Every ``trainer.log_every_n_steps`` loader batches (``iterations_per_batch`` iterations each): the
        finiteness check and a write of the window's means (the only times the host reads the device in the steady
        state). Lightning writes what was logged at the end of the batches it counts to log_every_n_steps, so the
        write comes in the last iteration of such a batch."""
        every = self.trainer.log_every_n_steps * self.hparams.iterations_per_batch
        if self.iteration % (every or CHECK_EVERY_WITHOUT_LOGGING) == 0:
            self.stop_if_not_finite()
        if every == 0 or self.iteration % every:
            return
        # Host copies, read once here: Lightning converts the progress bar's values to numbers after every batch
        # until the epoch ends, which on a GPU would be a sync per iteration if they stayed on the device.
        means = self.window.pop_means().to("cpu", copy=True)
        self.log_dict(dict(zip(LOGGED, means.unbind())), prog_bar=True, batch_size=batch_size)
        # "step" sets the logger's x-axis: the iteration, like every grid and figure (Lightning would use the
        # 0-based batch count). A host tensor, as above (a float would become a device tensor).
        self.log("step", torch.tensor(float(self.iteration)), logger=True, batch_size=batch_size)

    # --------------------------------------------------------------------------------------------- sampling
    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent vectors on this module's device (on the generator's device when one is given)."""
        device = generator.device if generator is not None else self.device
        return draw_latent(n, self.hparams.latent_dim, self.hparams.latent_distribution, device, generator)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """``n`` uniformly drawn class labels for a conditional GAN; None for an unconditional one."""
        if not self.hparams.num_classes:
            return None
        device = generator.device if generator is not None else self.device
        return torch.randint(self.hparams.num_classes, (n,), device=device, generator=generator)

    @torch.no_grad()
    def generate(self, z: torch.Tensor | None = None, use_ema: bool = True,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
        """G(z) in eval mode (BatchNorm running statistics, no dropout), without autograd; ``fixed_z`` (and, for a
        conditional GAN, ``fixed_y``: one row of the grid per class) by default.

        Uses the EMA generator when there is one (unless ``use_ema`` is false).
        """
        if z is None:
            z, labels = self.fixed_z, getattr(self, "fixed_y", None)
        if self.hparams.num_classes and labels is None:
            raise ValueError(f"this GAN is conditional ({self.hparams.num_classes} classes): give the labels")
        net = self.generator_ema if use_ema and self.generator_ema is not None else self.generator
        was_training = net.training
        net.eval()
        try:
            return self.run_generator(z, labels, net)
        finally:
            net.train(was_training)

    # ------------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint never holds non-finite state: raising here stops the run before the file is written.
        self.stop_if_not_finite()
        self.stop_if_state_not_finite("when saving a checkpoint")
        checkpoint["gan_iteration"] = self.iteration
        checkpoint["gan_log_window"] = self.window.state()  # a resumed run logs the same means
        # The latent draws of the next epoch come from the global RNGs: save them so that a resumed run draws
        # the same z as an uninterrupted one (data order is already a function of seed and epoch).
        checkpoint["gan_rng"] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            checkpoint["gan_rng"]["cuda"] = torch.cuda.get_rng_state(self.device)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.iteration = checkpoint.get("gan_iteration", 0)
        self.window.load_state(checkpoint.get("gan_log_window", (None, 0)))
        rng = checkpoint.get("gan_rng", {})
        if "cpu" in rng:
            torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"], torch.cuda.current_device())


def split_with_labels(real: torch.Tensor, labels: torch.Tensor | None, n: int):
    """``real`` in ``n`` consecutive chunks, each with its labels (None for an unconditional GAN)."""
    return zip(real.tensor_split(n), labels.tensor_split(n) if labels is not None else [None] * n)


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each optimizer state tensor its parameter's memory layout. A checkpoint written with another
    ``model.channels_last`` restores Adam's moments in NCHW strides for NHWC parameters (or the reverse), and a fused
    step walks parameter, gradient and moments as flat memory: on a CPU it would pair the wrong elements, on CUDA
    it refuses."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
