"""The GAN as a schedule: one LightningModule, manual optimisation, ``d_steps`` D updates then ``g_steps`` G updates.

What each update computes is the objective's (``gan_lightning.objective``); how the iterations run (update path,
compilation, CUDA graph, layout, iterations per loader batch) is the execution plan's (``gan_lightning.execution``).
The path of one iteration: ``training_step`` -> ``iteration_step`` -> ``discriminator_step`` x d_steps ->
``generator_step`` x g_steps -> the EMA and the statistics.

Rules for editing ``iteration_step`` and what it calls, so that it can be recorded as a CUDA graph: read nothing
back to the host (no ``.item()``, no ``if tensor``), keep no state in Python (write tensors in place), and branch
only on settings and on ``due`` (the phase). ``tests/test_cuda_graph.py`` replays it on a CPU to check.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn

from gan_lightning.checkpoint import saved_checkpoint
from gan_lightning.ema import ema_beta, update_ema
from gan_lightning.errors import is_number, require, require_int
from gan_lightning.execution import ExecutionPlan, split_with_labels
from gan_lightning.finite_watch import FiniteWatch, all_finite
from gan_lightning.log_window import LogWindow, iteration_means
from gan_lightning.lr_schedule import LRSchedule
from gan_lightning.objective import Objective
from gan_lightning.sampling import LATENT_DISTRIBUTIONS, class_rows, draw_latent

# Iterations between finiteness checks when nothing is logged (otherwise they come with each log write).
CHECK_EVERY_WITHOUT_LOGGING = 50
FIXED_SEED = 0  # the seed of the latent batch behind every logged grid
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
        objective: Objective | None = None,
        num_classes: int = 0,
        reuse_fake: bool = False,
        ema_half_life_images: float | None = None,
        grad_clip_norm: float | None = None,
        num_fixed_samples: int = 64,
        lr_schedule: LRSchedule | None = None,
    ) -> None:
        super().__init__()
        self.check_settings(locals())
        self.automatic_optimization = False
        # The nets, objective and optimizer factories are in the Hydra config that train.py logs and checkpoints.
        self.save_hyperparameters(ignore=["generator", "discriminator", "g_optimizer", "d_optimizer", "objective",
                                          "lr_schedule"])
        self.generator = generator
        self.discriminator = discriminator
        self.objective = objective if objective is not None else Objective()
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.lr_schedule = lr_schedule
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if ema_half_life_images else None
        self.iteration = 0
        self.world_size = 1  # processes that train together (set in setup): the EMA counts all their images
        self.window = LogWindow()
        self.finite = FiniteWatch()
        self.execution = ExecutionPlan()  # replaced by the fit's plan in its setup hook
        # What the training updates call: G and D, or the same nets behind torch.compile (execution.compile_nets).
        # A tuple, so that compiled wrappers are not registered as submodules (the checkpoint keys stay the same).
        self.training_nets: tuple[nn.Module, nn.Module] = (generator, discriminator)
        # The latent batch behind every logged grid: a buffer, so it moves with the module and survives checkpoints.
        fixed = self.sample_latent(num_fixed_samples, generator=torch.Generator().manual_seed(FIXED_SEED))
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
        for key in ("d_steps", "g_steps", "latent_dim", "num_fixed_samples"):
            require_int(f"model.{key}", s.get(key))
        require_int("model.num_classes", s["num_classes"], minimum=0)
        require(s["num_classes"] == 0 or s["num_fixed_samples"] % s["num_classes"] == 0, "model.num_fixed_samples",
                s["num_fixed_samples"], f"a conditional grid has one row per class: use a multiple of "
                f"model.num_classes={s['num_classes']}")
        for key in ("g_lr", "d_lr"):
            require(is_number(s.get(key)) and s[key] > 0, f"model.{key}", s.get(key), "a learning rate must be > 0")
        for key in ("grad_clip_norm", "ema_half_life_images"):
            value = s[key]
            require(value is None or (is_number(value) and value >= 0), f"model.{key}", value, "must be >= 0")
        require(s["latent_distribution"] in LATENT_DISTRIBUTIONS, "model.latent_distribution",
                s["latent_distribution"], f"expected one of {', '.join(LATENT_DISTRIBUTIONS)}")
        require(isinstance(s["reuse_fake"], bool), "model.reuse_fake", s["reuse_fake"], "must be true or false")
        for key in ("g_optimizer", "d_optimizer"):
            if callable(s.get(key)):
                cls_ = getattr(s[key], "func", s[key])  # a functools.partial from Hydra's _partial_
                name = f"{getattr(cls_, '__module__', '')}.{getattr(cls_, '__qualname__', cls_)}"
                require(inspect.isclass(cls_) and issubclass(cls_, torch.optim.Optimizer), f"model.{key}._target_",
                        name, "is not a torch.optim.Optimizer")

    # ------------------------------------------------------------------------------------------- the algorithm
    def training_step(self, batch: Any, batch_idx: int) -> None:
        """Algorithm 1 of Goodfellow et al. (2014), for each iteration the loader batch holds (one, unless the
        execution plan packs several into a batch)."""
        for real, labels in self.execution.iterations(self, batch):
            self.execution.run(self.iteration_step, real, labels, self.regularisers_due())
            self.iteration += 1
            self.step_lr_schedules("iteration")
            self.execution.count_steps(self.hparams.d_steps + self.hparams.g_steps)
            self.after_iteration(len(real))

    def iteration_step(self, real: torch.Tensor, labels: torch.Tensor | None,
                       due: tuple[tuple[str, ...], ...]) -> tuple[()]:
        """One iteration: ``d_steps`` D updates, each on its own chunk of ``real`` (with the regularisers ``due``
        in it), then ``g_steps`` G updates, the EMA, and the statistics into the log window."""
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        reports, fakes = [], []
        for k, (real_chunk, label_chunk) in enumerate(split_with_labels(real, labels, hp.d_steps)):
            keep_graph = hp.reuse_fake and k == hp.d_steps - 1  # G's first update may judge this fake batch
            fake, fake_labels, report = self.discriminator_step(opt_d, real_chunk, label_chunk, due[k], keep_graph)
            reports.append(report)
            fakes.append(fake)
        for j in range(hp.g_steps):
            reused = (fake, fake_labels) if hp.reuse_fake and j == 0 else None
            reports.append(self.generator_step(opt_g, real_chunk, label_chunk, reused))
        if self.generator_ema is not None:
            images = hp.g_steps * (len(real) // hp.d_steps) * self.world_size
            update_ema(self.generator_ema, self.generator, ema_beta(images, hp.ema_half_life_images))
        self.record(iteration_means(reports), fakes)
        return ()

    def discriminator_step(self, opt_d, real: torch.Tensor, labels: torch.Tensor | None, due: tuple[str, ...] = (),
                           keep_graph: bool = False):
        """One D update on ``real`` (with its ``labels`` when conditional) against G(fresh z); returns the fake
        batch (with G's graph when ``keep_graph``), its labels and the objective's statistics."""
        fake_labels = self.sample_labels(len(real))
        with torch.set_grad_enabled(keep_graph):
            fake = self.run_generator(self.sample_latent(len(real)), fake_labels)
        with frozen(self.generator):
            loss, report = self.objective.discriminator_loss(self.run_discriminator, real, labels, fake, fake_labels,
                                                             due)
            self.execution.update(opt_d, loss)
        return fake, fake_labels, report

    def generator_step(self, opt_g, real: torch.Tensor, labels: torch.Tensor | None,
                       reused: tuple[torch.Tensor, torch.Tensor | None] | None = None):
        """One G update through D on G(fresh z), or on ``reused`` (a fake batch that still carries G's graph).
        ``real`` is there for the objectives that judge G's batch against real samples (relativistic)."""
        with frozen(self.discriminator):
            if reused is None:
                fake_labels = self.sample_labels(len(real))
                fake = self.run_generator(self.sample_latent(len(real)), fake_labels)
            else:
                fake, fake_labels = reused
            loss, report = self.objective.generator_loss(self.run_discriminator, fake, fake_labels, real, labels)
            self.execution.update(opt_g, loss)
        return report

    def regularisers_due(self) -> tuple[tuple[str, ...], ...]:
        """For each D update of the next iteration, the regularisers the objective applies in it: the phase of the
        iteration (lazy regularisers are due every ``interval`` D updates, counted over the whole run)."""
        first = self.iteration * self.hparams.d_steps
        return tuple(self.objective.due(first + k) for k in range(self.hparams.d_steps))

    def record(self, means: dict[str, torch.Tensor], fakes: list[torch.Tensor]) -> None:
        """The iteration's statistics into the log window, and its finiteness into the watch (both on the
        device: ``after_iteration`` reads them)."""
        self.window.add(means)
        if self.execution.check_finite:  # read by stop_if_not_finite
            self.finite.add(all_finite(fakes), torch.stack([means["d_loss"], means["g_loss"]]))

    # A conditional GAN's nets take the class labels as a second argument: G(z, y), D(x, y). Without ``net``, the
    # nets the training updates call (compiled with execution.compile_nets).
    def run_generator(self, z: torch.Tensor, labels: torch.Tensor | None = None, net: nn.Module | None = None):
        net = self.training_nets[0] if net is None else net
        return net(z) if labels is None else net(z, labels)

    def run_discriminator(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        net = self.training_nets[1]
        return net(x) if labels is None else net(x, labels)

    # ------------------------------------------------------------------------------------------ around the steps
    def configure_callbacks(self):
        # The default execution plan when the Trainer was given none (train() gives the configured one).
        has_plan = any(isinstance(c, ExecutionPlan) for c in self.trainer.callbacks)
        return [] if has_plan else [ExecutionPlan()]

    def setup(self, stage: str) -> None:
        self.world_size = self.trainer.world_size

    def optimizer_recipes(self):
        """(config key, optimizer factory, net, learning rate) of G's and D's optimizers, in that order."""
        return (("model.g_optimizer", self.g_optimizer, self.generator, self.hparams.g_lr),
                ("model.d_optimizer", self.d_optimizer, self.discriminator, self.hparams.d_lr))

    def configure_optimizers(self):
        optimizers = [factory(net.parameters(), lr=lr, **self.execution.configure_optimizer_kwargs(self, factory))
                      for _, factory, net, lr in self.optimizer_recipes()]
        if self.lr_schedule is None:
            return tuple(optimizers)
        length = self.lr_schedule_length()
        return optimizers, [self.lr_schedule.build(optimizer, length) for optimizer in optimizers]

    def lr_schedule_length(self) -> int:
        """The steps the lr schedule spans when it does not say: the run's epochs, or its iterations."""
        trainer, schedule = self.trainer, self.lr_schedule
        if schedule.total is not None:
            return schedule.total
        require(trainer.max_epochs not in (None, -1), "trainer.max_epochs", trainer.max_epochs,
                "an lr schedule spans the run's epochs: set them, or the schedule's length (model.lr_schedule.total)")
        if schedule.interval == "epoch":
            return trainer.max_epochs
        if trainer.train_dataloader is None:  # num_training_batches needs the loader (as estimated_stepping_batches)
            trainer.fit_loop.setup_data()
        iterations = int(trainer.max_epochs * trainer.num_training_batches * self.execution.iterations_per_batch)
        if trainer.max_steps not in (None, -1):  # Lightning's steps count every optimizer step of an iteration
            iterations = min(iterations, trainer.max_steps // (self.hparams.d_steps + self.hparams.g_steps))
        return iterations

    def step_lr_schedules(self, interval: str) -> None:
        """Step G's and D's lr schedules at the end of an iteration or an epoch, as the schedule's interval says."""
        if self.lr_schedule is not None and self.lr_schedule.interval == interval:
            for scheduler in self.lr_schedulers():
                scheduler.step()

    def on_train_epoch_end(self) -> None:
        self.step_lr_schedules("epoch")
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
        finiteness check and a write of the window's means as ``train/<statistic>`` (the only times the host reads
        the device in the steady state). Lightning writes what was logged at the end of the batches it counts to
        log_every_n_steps, so the write comes in the last iteration of such a batch."""
        every = self.trainer.log_every_n_steps * self.execution.iterations_per_batch
        if self.iteration % (every or CHECK_EVERY_WITHOUT_LOGGING) == 0:
            self.stop_if_not_finite()
        if every == 0 or self.iteration % every:
            return
        # Host tensors: Lightning converts the progress bar's values to numbers after every batch until the epoch
        # ends, which on a GPU would be a sync per iteration if they stayed on the device.
        means = {f"train/{name}": value for name, value in self.window.pop_means().items()}
        if self.lr_schedule is not None:  # the learning rates the schedule set (host numbers)
            g_opt, d_opt = self.optimizers()
            means.update({"train/g_lr": torch.tensor(float(g_opt.param_groups[0]["lr"])),
                          "train/d_lr": torch.tensor(float(d_opt.param_groups[0]["lr"]))})
        self.log_dict(means, prog_bar=True, batch_size=batch_size)
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
        self.window.load_state(checkpoint.get("gan_log_window", {}))
        rng = checkpoint.get("gan_rng", {})
        if "cpu" in rng:
            torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"], torch.cuda.current_device())


@contextlib.contextmanager
def frozen(net: nn.Module):
    """``net``'s parameters without gradients for the duration (the other net's update must not reach them);
    each parameter's own setting is restored after."""
    saved = [(p, p.requires_grad) for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, requires_grad in saved:
            p.requires_grad_(requires_grad)
