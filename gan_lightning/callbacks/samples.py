"""Log what G makes: a grid of G(fixed z) for images, a density figure plus mean/std for 1-D samples.

Everything is written to TensorBoard at ``step = pl_module.iteration`` (completed training iterations): a grid at
step 500 shows G after 500 iterations. Real samples are logged once, from the first batch of the run.
"""
from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from gan_lightning.callbacks.writer import tensorboard_writer
from gan_lightning.data import real_samples
from gan_lightning.errors import require_int
from gan_lightning.figures import density_figure, image_grid, scatter_figure
from gan_lightning.metrics import gaussian_distances, mode_coverage
from gan_lightning.sampling import class_rows


class SampleLogger(L.Callback):
    """Every ``every_n_iterations`` iterations and at the end of training, log G(fixed z) to TensorBoard.

    Images (N, C, H, W) become a grid under ``samples/fake`` (real ones once under ``samples/real``). 1-D samples
    (N, 1) become a figure ``samples/density`` of real and generated histograms, and scalars ``samples/mean`` and
    ``samples/std`` of the generated samples; when the data module names its target N(mean, std), also
    ``metrics/w1``, ``metrics/ks``, ``metrics/mean_error`` and ``metrics/std_error`` of G(fixed z) against it (the
    latest values are kept in ``self.metrics``, which ``train()`` returns). 2-D samples of a mixture (data=ring,
    grid) become a scatter figure ``samples/scatter`` over the real samples and the mode centres, and metrics
    ``metrics/modes_covered`` and ``metrics/high_quality_share`` (``gan_lightning.metrics.mixture``). A conditional
    GAN's grid has one row per class. G runs in eval mode without gradients (``GAN.generate``).
    """

    def __init__(self, every_n_iterations: int = 500, max_images: int = 64, bins: int = 100) -> None:
        require_int("callbacks.samples.every_n_iterations", every_n_iterations, minimum=0)  # 0: at the end only
        require_int("callbacks.samples.max_images", max_images)
        require_int("callbacks.samples.bins", bins)
        self.every_n_iterations = every_n_iterations
        self.max_images = max_images
        self.bins = bins
        self._real: torch.Tensor | None = None
        self._last_logged: int | None = None
        self.metrics: dict[str, float] = {}

    @rank_zero_only
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._real is not None:
            return
        self._real = real_samples(batch).detach().cpu()
        writer = tensorboard_writer(trainer)
        if writer is not None and self._real.dim() == 4:
            writer.add_image("samples/real", image_grid(self._real[: self.max_images]), pl_module.iteration)

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        every, done = self.every_n_iterations, pl_module.iteration
        # A batch of execution.iterations_per_batch iterations may pass a multiple of every_n_iterations: log at
        # its end.
        if every > 0 and done // every > (done - pl_module.execution.iterations_per_batch) // every:
            self.log_samples(trainer, pl_module)

    @rank_zero_only
    def on_train_end(self, trainer, pl_module) -> None:
        self.log_samples(trainer, pl_module)

    def log_samples(self, trainer: L.Trainer, pl_module) -> None:
        step = pl_module.iteration
        writer = tensorboard_writer(trainer)
        if writer is None or step == self._last_logged:
            return
        self._last_logged = step
        fake = pl_module.generate().float().cpu()
        datamodule = trainer.datamodule
        metrics = {}
        if fake.dim() == 4:
            classes = pl_module.hparams.get("num_classes", 0)
            if classes:  # one row per class: the whole fixed batch, num_fixed_samples / num_classes per row
                writer.add_image("samples/fake", image_grid(fake, class_rows(len(fake), classes)[1]), step)
            else:
                writer.add_image("samples/fake", image_grid(fake[: self.max_images]), step)
        elif fake.dim() == 2 and fake.shape[1] == 1:
            writer.add_scalar("samples/mean", fake.mean().item(), step)
            writer.add_scalar("samples/std", fake.std().item(), step)
            target = (datamodule.mean, datamodule.std) if hasattr(datamodule, "mean") else None
            if target is not None:
                metrics = gaussian_distances(fake, *target)
            if self._real is not None:
                figure = density_figure(self._real.flatten().numpy(), fake.flatten().numpy(), target, self.bins)
                writer.add_figure("samples/density", figure, step)
        elif fake.dim() == 2 and fake.shape[1] == 2 and hasattr(datamodule, "centers"):
            metrics = mode_coverage(fake, datamodule.centers, datamodule.std)
            real = self._real.numpy() if self._real is not None else None
            writer.add_figure("samples/scatter", scatter_figure(real, fake.numpy(), datamodule.centers.numpy()), step)
        for name, value in metrics.items():
            self.metrics[f"metrics/{name}"] = value
            writer.add_scalar(f"metrics/{name}", value, step)
        writer.flush()
