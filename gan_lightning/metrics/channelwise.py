"""A digit classifier applied to each channel of multi-digit images (Stacked MNIST: one digit per channel)."""
from __future__ import annotations

import torch
from torch import nn

from gan_lightning.metrics.classifier import DigitClassifier


class ChannelwiseClassifier(nn.Module):
    """``digits`` (a classifier of single-channel digits) read on each of ``channels`` channels, with the interface
    ``image_quality`` uses: ``features`` joins the channels' features (channels x 128: the FID/KID space) and
    ``head`` gives the log-probabilities of the ``digit_classes ** channels`` digit tuples, log p(d0) + log p(d1) +
    ..., the tuple (d0, d1, d2) at index 100 d0 + 10 d1 + d2 (the Stacked MNIST label). The tuple's argmax is the
    tuple of the channels' argmaxes, and the Inception-style score's softmax of it is the product of the channels'
    probabilities: the channels are classified independently."""

    def __init__(self, digits: DigitClassifier, channels: int, digit_classes: int = 10) -> None:
        super().__init__()
        self.digits = digits
        self.channels, self.digit_classes = channels, digit_classes
        self.num_features = channels * digits.num_features
        self.num_classes = digit_classes**channels

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, C, H, W) images -> (n, C x 128) features, channel 0's first."""
        n, channels = x.shape[:2]
        if channels != self.channels:
            raise ValueError(f"expected images of {self.channels} channels, got shape {list(x.shape)}")
        return self.digits.features(x.reshape(n * channels, 1, *x.shape[2:])).view(n, self.num_features)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """(n, C x 128) features -> (n, 10 ** C) log-probabilities of the digit tuples."""
        n = len(features)
        per_channel = self.digits.head(features.view(n * self.channels, -1)).log_softmax(-1)
        per_channel = per_channel.view(n, self.channels, self.digit_classes)
        joint = per_channel[:, 0]
        for channel in range(1, self.channels):  # index so far x 10 + this channel's digit
            joint = (joint[:, :, None] + per_channel[:, channel, None, :]).flatten(1)
        return joint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
