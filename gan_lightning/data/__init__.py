"""DataModules: real samples for D.

The contract between the data and the GAN step, stated here once: one loader batch = one training iteration and
holds ``d_steps x data.batch_size`` real samples (each DataModule receives ``d_steps``, which
``conf/data/*.yaml`` set to ``${model.d_steps}``). The step splits it into ``d_steps`` chunks, so every D update
sees ``data.batch_size`` fresh real samples, and each G update draws a latent batch of that size. An epoch is one
pass over MNIST (the last incomplete batch is dropped) or ``data.batches_per_epoch`` iterations of a synthetic
stream (the 1-D Gaussian, the 2-D mixtures); ``trainer.max_epochs`` and ``trainer.limit_train_batches`` therefore
count iterations.
"""
from gan_lightning.data.batches import real_labels, real_samples, to_model_range
from gan_lightning.data.gaussian import GaussianDataModule, GaussianStream
from gan_lightning.data.idx import IDXError, read_idx
from gan_lightning.data.mixture import MixtureDataModule, MixtureStream, mixture_centers
from gan_lightning.data.mnist import MNISTDataModule, MNISTNotFoundError

__all__ = [
    "GaussianDataModule",
    "GaussianStream",
    "IDXError",
    "read_idx",
    "MixtureDataModule",
    "MixtureStream",
    "mixture_centers",
    "MNISTDataModule",
    "MNISTNotFoundError",
    "real_labels",
    "real_samples",
    "to_model_range",
]
