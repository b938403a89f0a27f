"""DataModules: real samples for D. A loader batch holds d_steps x batch_size samples, one chunk per D update."""
from gan_lightning.data.gaussian import GaussianDataModule, GaussianStream
from gan_lightning.data.idx import IDXError, read_idx
from gan_lightning.data.mnist import MNISTDataModule, MNISTNotFoundError

__all__ = [
    "GaussianDataModule",
    "GaussianStream",
    "IDXError",
    "read_idx",
    "MNISTDataModule",
    "MNISTNotFoundError",
]
