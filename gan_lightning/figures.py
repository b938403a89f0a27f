"""Pictures of samples: an image grid and a 1-D density figure (for TensorBoard and the sample command)."""
from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid


def image_grid(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """(N, C, H, W) images in [-1, 1] -> one (C, H', W') grid in [0, 1]."""
    nrow = nrow or math.ceil(math.sqrt(len(images)))
    return make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)


def density_figure(real: np.ndarray | None, fake: np.ndarray, target: tuple[float, float] | None,
                   bins: int = 100, fake_label: str = "G(fixed z)") -> Figure:
    """Histograms of real (if given) and generated 1-D samples over a shared range, with the target density."""
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    both = fake if real is None else np.concatenate([real, fake])
    lo, hi = both.min(), both.max()
    edges = np.linspace(lo, hi, bins + 1) if hi > lo else bins
    if real is not None:
        ax.hist(real, bins=edges, density=True, alpha=0.5, label=f"real (n={len(real)})")
    ax.hist(fake, bins=edges, density=True, alpha=0.5, label=f"{fake_label} (n={len(fake)})")
    if target is not None:
        mean, std = target
        x = np.linspace(min(lo, mean - 4 * std), max(hi, mean + 4 * std), 400)
        ax.plot(x, np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi)), "k--", label="target")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def scatter_figure(real: np.ndarray | None, fake: np.ndarray, centers: np.ndarray | None = None,
                   fake_label: str = "G(fixed z)") -> Figure:
    """2-D samples as points: real (if given) under generated, with the mode centres marked."""
    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_subplot()
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.3, label=f"real (n={len(real)})")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.5, label=f"{fake_label} (n={len(fake)})")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=40, marker="x", c="k", label="modes")
        span = np.abs(centers).max() * 1.5
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig
