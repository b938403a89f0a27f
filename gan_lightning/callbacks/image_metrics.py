"""Every N epochs and at the end: FID, KID, IS, precision/recall/density/coverage, mode coverage and
KL(p(y) || uniform) of G against the real data, and for a conditional GAN the share of samples the classifier puts
in the class they were asked for."""
from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from gan_lightning.callbacks.writer import tensorboard_writer
from gan_lightning.data import to_model_range
from gan_lightning.errors import is_int, require, require_int
from gan_lightning.metrics.channelwise import ChannelwiseClassifier
from gan_lightning.metrics.classifier import load_or_train
from gan_lightning.metrics.image_quality import image_quality, inception_fid
from gan_lightning.sampling import balanced_labels, generate_many
from gan_lightning.stop_request import sigterm_stops_at_once


def real_reference(num_images: int, num_samples: int, seed: int) -> torch.Tensor:
    """The indices of the training images a generator is compared with: ``num_samples`` of them, drawn with
    ``seed`` (``python -m benchmarks.reference`` compares other real images with the same set)."""
    return torch.randperm(num_images, generator=torch.Generator().manual_seed(seed))[:num_samples]


class ImageMetrics(L.Callback):
    """Measures ``num_samples`` generated images (eval mode, EMA generator when there is one) against as many real
    training images (a conditional GAN's samples: every class equally often, ``metrics/label_accuracy`` says how
    many the classifier puts in their requested class), in the feature space of the project's classifier
    (``DigitClassifier``, trained on the data set's own training images on first use and cached, keyed by the
    exact training images). Logs ``metrics/<name>`` to TensorBoard at the current iteration and keeps
    the latest values in ``self.metrics`` (returned by ``train()``, written to metrics.json and the hparams view).
    Runs on rank zero; does nothing on data that are not images. ``inception_fid=True`` adds the standard
    InceptionV3 FID (``pip install -e '.[inception]'`` and a network for the weights; off by default).

    Data whose samples are drawn rather than stored (Stacked MNIST) give their real images through
    ``reference_images(n, seed)``, as many as asked; the others are capped at their number of training images.
    Samples with more channels than the training digits are classified a digit per channel
    (``ChannelwiseClassifier``). The DataModule's ``num_modes`` and ``min_mode_samples``, when it has them, set
    the mode count's classes and rule (otherwise 10 classes, each counted from 2 % of the samples).
    """

    def __init__(self, every_n_epochs: int = 5, num_samples: int = 10_000, classifier_epochs: int = 2,
                 cache_dir: str | None = None, seed: int = 0, inception_fid: bool = False) -> None:
        key = "callbacks.image_metrics."
        require_int(key + "every_n_epochs", every_n_epochs, minimum=0)  # 0: at the end only
        require_int(key + "num_samples", num_samples, minimum=6)  # FID: a covariance; density, coverage: 5-NN balls
        require_int(key + "classifier_epochs", classifier_epochs)
        require(is_int(seed), key + "seed", seed, "must be an integer")
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.classifier_epochs = classifier_epochs
        self.cache_dir = cache_dir
        self.seed = seed
        self.inception_fid = inception_fid
        self.metrics: dict[str, float] = {}
        self._classifier = None
        self._real: torch.Tensor | None = None
        self._mode_rule: dict = {}  # image_quality's num_classes and min_samples, from the DataModule
        self._measured_at: int | None = None
        self._due = False  # an epoch end asked for a measurement, made once its checkpoint is written

    def _prepare(self, trainer: L.Trainer) -> bool:
        images = getattr(trainer.datamodule, "images", None)  # an image DataModule's (N, C, H, W) training split
        if images is None or images.dim() != 4:
            return False
        if self._classifier is None:
            datamodule = trainer.datamodule
            images, labels = images.cpu(), datamodule.labels.cpu()  # kept on the training device
            held_out = datamodule.read_split("test") if hasattr(datamodule, "read_split") else None
            digits, info = load_or_train(
                images, labels, *(held_out or (None, None)), cache_dir=self.cache_dir,
                epochs=self.classifier_epochs, log=rank_zero_info)
            self.metrics["metrics/classifier_accuracy"] = info["held_out_accuracy"]
            if hasattr(datamodule, "reference_images"):
                real = datamodule.reference_images(self.num_samples, self.seed)
            else:
                self.num_samples = min(self.num_samples, len(images))
                real = images[real_reference(len(images), self.num_samples, self.seed)]
            self._real = to_model_range(real)
            channels = real.shape[1] // images.shape[1]
            self._classifier = digits if channels == 1 else ChannelwiseClassifier(digits, channels)
            if hasattr(datamodule, "num_modes"):
                self._mode_rule = {"num_classes": datamodule.num_modes, "min_samples": datamodule.min_mode_samples}
        return True

    def measure(self, trainer: L.Trainer, pl_module) -> None:
        """Measure now, stopping at once on SIGTERM (minutes of work, the first time with the classifier's
        training, which Lightning would not interrupt)."""
        self._due = False
        with sigterm_stops_at_once(already_requested=trainer.received_sigterm):
            self._measure(trainer, pl_module)

    @torch.no_grad()
    def _measure(self, trainer: L.Trainer, pl_module) -> None:
        if pl_module.iteration == self._measured_at or not self._prepare(trainer):
            return
        self._measured_at = pl_module.iteration
        classes = pl_module.hparams.get("num_classes", 0)
        labels = balanced_labels(self.num_samples, classes) if classes else None
        fake = generate_many(pl_module, self.num_samples, self.seed, labels=labels)
        classifier = self._classifier.to(pl_module.device)
        scores = image_quality(classifier, self._real, fake, requested_labels=labels, **self._mode_rule)
        if self.inception_fid:  # the standard Inception FID: needs torch-fidelity and downloadable weights
            scores["inception_fid"] = inception_fid(self._real, fake, device=pl_module.device)
        writer = tensorboard_writer(trainer)
        for name, value in scores.items():
            self.metrics[f"metrics/{name}"] = value
            if writer is not None:
                writer.add_scalar(f"metrics/{name}", value, pl_module.iteration)
        rank_zero_info("Image metrics at iteration {}: {}".format(
            pl_module.iteration, ", ".join(f"{k}={v:.4g}" for k, v in scores.items())))

    # An epoch's measurement is made after its checkpoint (Lightning runs checkpoint callbacks last at an epoch's
    # end): at the next epoch's start, or at the end of training. A stop while measuring then loses no training.
    @rank_zero_only
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every_n_epochs > 0 and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._due = True

    @rank_zero_only
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._due:
            self.measure(trainer, pl_module)

    @rank_zero_only
    def on_train_end(self, trainer, pl_module) -> None:
        epochs = trainer.current_epoch  # completed epochs of the whole run, a resumed one included
        if self.every_n_epochs > 1 and not self.metrics and epochs < self.every_n_epochs:
            # A quick run: measuring (and, the first time, training the classifier) would cost more than it trained.
            rank_zero_info(f"Image metrics skipped: the run has {epochs} complete epoch(s), fewer than "
                           f"callbacks.image_metrics.every_n_epochs={self.every_n_epochs}; set it to 1 to measure "
                           "at the end of short runs, or remove them with ~callbacks.image_metrics")
            return
        self.measure(trainer, pl_module)
