"""Class-conditional nets: an unconditional net with the label joined to its input (a learnt embedding or one-hot
planes)."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

JOINS = ("flat", "channels")


class LabelConditioned(nn.Module):
    """G(z, y) when ``net`` builds a generator, D(x, y) when it builds a discriminator; two ways to join the label:

    - ``join="flat"`` (PyTorch-GAN's cgan.py): ``net(concat(flatten(x), embedding(y)))``. The inner net is built
      for the joined size: ``in_shape=[size]`` (the MLPs) or, with ``size_arg="latent_dim"``, ``latent_dim=size``
      (the DCGAN generator, whose latent is then z and the embedding);
    - ``join="channels"`` (the usual conditional DCGAN D): the one-hot label as ``num_classes`` constant planes
      after the image's channels, ``net(concat(x, planes))``, built for ``in_shape=[C + num_classes, H, W]``; no
      embedding. A learnt 10-d embedding in its place trained far worse on MNIST (README, "Image quality").

    ``net`` is a ``_partial_`` net in the config. cgan.py embeds the 10 digits in 10 dimensions, for G and for D.
    """

    def __init__(self, net: Callable[..., nn.Module], num_classes: int, in_shape: Sequence[int],
                 embedding_dim: int | None = None, join: str = "flat", size_arg: str = "in_shape") -> None:
        super().__init__()
        if join not in JOINS:
            raise ValueError(f"join={join!r}: one of {', '.join(JOINS)}")
        if join == "channels" and len(in_shape) != 3:
            raise ValueError(f"join='channels' needs (C, H, W) inputs, got in_shape {list(in_shape)}")
        if size_arg not in ("in_shape", "latent_dim") or (size_arg == "latent_dim" and join != "flat"):
            raise ValueError(f"size_arg={size_arg!r}: in_shape, or latent_dim with join='flat'")
        if join == "channels" and embedding_dim:
            raise ValueError("join='channels' takes the one-hot label, not an embedding: leave embedding_dim unset")
        self.num_classes, self.join = num_classes, join
        if join == "channels":
            self.embedding = None
            self.net = net(in_shape=[in_shape[0] + num_classes, *in_shape[1:]])
        else:
            self.embedding = nn.Embedding(num_classes, embedding_dim or num_classes)
            size = math.prod(in_shape) + self.embedding.embedding_dim
            self.net = net(latent_dim=size) if size_arg == "latent_dim" else net(in_shape=[size])

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.join == "channels":
            one_hot = nn.functional.one_hot(labels, self.num_classes).to(x.dtype)
            planes = one_hot[:, :, None, None].expand(-1, -1, *x.shape[2:])
            return self.net(torch.cat([x, planes], dim=1))
        return self.net(torch.cat([x.flatten(1), self.embedding(labels).to(x.dtype)], dim=1))
