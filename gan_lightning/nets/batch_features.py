"""Discriminators that judge a whole batch at once, as in "GANs in 50 lines of code" (devnag).

The 1-D Gaussian problem is easy to solve if D sees the batch as a distribution: it reduces the batch to a
feature vector (4 moments, or the samples with their squared deviations) and an MLP head turns that into a
single logit for the whole batch.
"""
from __future__ import annotations

import torch
from torch import nn


def _one_dimensional(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 2 or x.shape[1] != 1:
        raise ValueError(
            f"batch-level discriminators judge 1-D samples of shape (B, 1), got {tuple(x.shape)}: use them with "
            "data=gaussian"
        )
    return x.flatten()


class Moments(nn.Module):
    """(B, 1) samples -> (1, 4): mean, std, skewness and excess kurtosis of the batch (population moments)."""

    out_features = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _one_dimensional(x)
        mean = x.mean()
        diffs = x - mean
        std = diffs.pow(2).mean().sqrt()
        z = diffs / std
        skew = z.pow(3).mean()
        excess_kurtosis = z.pow(4).mean() - 3.0
        return torch.stack([mean, std, skew, excess_kurtosis]).unsqueeze(0)


class SquaredDeviations(nn.Module):
    """(B, 1) samples -> (1, 2B): the samples followed by their squared deviations from the batch mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _one_dimensional(x)
        # The original computes the mean on detached data: the deviations carry no gradient through it.
        deviations = (x - x.detach().mean()).pow(2)
        return torch.cat([x, deviations]).unsqueeze(0)


class BatchDiscriminator(nn.Module):
    """D(batch) = head(features(batch)): one logit of shape (1, 1) for the whole batch."""

    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        expected = getattr(self.head, "in_shape", None)
        if expected is not None and tuple(features.shape[1:]) != tuple(expected):
            raise ValueError(
                f"{type(self.features).__name__} of a batch of {x.shape[0]} gives {features.shape[1]} features "
                f"but the head expects {expected[0]}: set the batch size to match the discriminator's input"
            )
        return self.head(features)
