"""Class-conditional nets: a label embedding joined to the input, as PyTorch-GAN's cgan.py does."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn


class LabelConditioned(nn.Module):
    """``net(concat(flatten(x), embedding(y)))``: G(z, y) when ``net`` is a generator, D(x, y) when a discriminator.

    ``net`` builds the inner net given its ``in_shape`` (a ``_partial_`` MLP in the config): it takes the
    flattened input of shape ``in_shape`` plus ``embedding_dim`` values per sample. cgan.py embeds the 10 digits in
    10 dimensions, for G and for D.
    """

    def __init__(self, net: Callable[..., nn.Module], num_classes: int, in_shape: Sequence[int],
                 embedding_dim: int | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embedding = nn.Embedding(num_classes, embedding_dim or num_classes)
        self.net = net(in_shape=[math.prod(in_shape) + self.embedding.embedding_dim])

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.flatten(1), self.embedding(labels).to(x.dtype)], dim=1))
