"""DataModules: real samples for D.

The contract between the data and the GAN step, stated here once: one loader batch = one training iteration and
holds ``d_steps x data.batch_size`` real samples (the execution plan sets each DataModule's ``d_steps`` from
``model.d_steps`` before the loader is made). The step splits it into ``d_steps`` chunks, so every D update
sees ``data.batch_size`` fresh real samples, and each G update draws a latent batch of that size. An epoch is one
pass over MNIST or Fashion-MNIST (the last incomplete batch is dropped), ``data.triples_per_epoch`` fresh triples of
Stacked MNIST (likewise), or ``data.batches_per_epoch`` iterations of a synthetic stream (the 1-D Gaussian, the 2-D
mixtures); ``trainer.max_epochs`` and ``trainer.limit_train_batches`` therefore count iterations.

With ``execution.iterations_per_batch`` = K > 1 (the plan calls the DataModule's ``shape_batches``) one loader
batch holds K iterations' samples, which the step takes in order, so Lightning's per-batch work is paid once per K
iterations. The
MNIST order is unchanged (the last incomplete K-iteration batch of an epoch is dropped); a stream draws K iterations'
samples at once (``data.batches_per_epoch``, still in iterations, must be a multiple of K). ``limit_train_batches``
and ``trainer.log_every_n_steps`` then count loader batches of K iterations.
"""
from gan_lightning.data.batches import real_labels, real_samples, to_model_range
from gan_lightning.data.fashion_mnist import FashionMNISTDataModule
from gan_lightning.data.gaussian import GaussianDataModule, GaussianStream
from gan_lightning.data.idx import IDXError, read_idx
from gan_lightning.data.mixture import MixtureDataModule, MixtureStream, mixture_centers
from gan_lightning.data.mnist import MNISTDataModule, MNISTNotFoundError
from gan_lightning.data.stacked_mnist import StackedMNISTDataModule

__all__ = [
    "FashionMNISTDataModule",
    "GaussianDataModule",
    "GaussianStream",
    "IDXError",
    "read_idx",
    "MixtureDataModule",
    "MixtureStream",
    "mixture_centers",
    "MNISTDataModule",
    "MNISTNotFoundError",
    "StackedMNISTDataModule",
    "real_labels",
    "real_samples",
    "to_model_range",
]
