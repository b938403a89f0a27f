"""What the GAN and its callbacks take from a loader batch, and how images are scaled for the nets."""
from __future__ import annotations

from typing import Any

import torch


def real_samples(batch: Any) -> torch.Tensor:
    """The real samples of a batch: MNIST yields (images, labels), the Gaussian stream a bare tensor."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def real_labels(batch: Any) -> torch.Tensor:
    """The class labels of a batch, for a conditional GAN: MNIST batches carry them."""
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise ValueError("a conditional GAN (model.num_classes > 0) needs data with labels, such as data=mnist")
    return batch[1]


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> floats in [-1, 1], the range of G's tanh output (a new tensor)."""
    return images.float().div(127.5).sub_(1.0)
