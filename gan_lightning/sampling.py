"""Latent vectors and batches of generated samples: what training, grids, metrics and the sample command draw."""
from __future__ import annotations

import torch

LATENT_DISTRIBUTIONS = ("normal", "uniform", "uniform_symmetric")


def draw_latent(n: int, latent_dim: int, distribution: str, device: torch.device | str | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` latent vectors from N(0, 1) ("normal"), U(0, 1) ("uniform") or U(-1, 1) ("uniform_symmetric")."""
    shape = (n, latent_dim)
    if distribution == "normal":
        return torch.randn(shape, generator=generator, device=device)
    z = torch.rand(shape, generator=generator, device=device)
    return z * 2 - 1 if distribution == "uniform_symmetric" else z


def class_rows(n: int, num_classes: int) -> tuple[torch.Tensor, int]:
    """Labels for a grid of ``n`` images with one row per class, and the row length: ceil(n / num_classes) of class
    0, then of class 1, ... (the last row shorter when ``n`` is not a multiple)."""
    per_row = -(-n // num_classes)
    return torch.arange(n) // per_row, per_row


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """Labels 0, 1, ..., num_classes - 1, 0, 1, ...: every class equally often (as far as ``n`` allows)."""
    return torch.arange(n) % num_classes


@torch.no_grad()
def generate_many(model, n: int, seed: int, use_ema: bool = True, chunk: int = 1000,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` samples of ``model`` (a GAN) from latents seeded by ``seed``, in eval mode, as float32 on the CPU.

    A conditional GAN draws sample i of class ``labels[i]`` (default: ``balanced_labels``). Drawn ``chunk`` at a
    time, so memory does not grow with ``n``; the same seed gives the same samples."""
    classes = model.hparams.get("num_classes", 0)
    if classes and labels is None:
        labels = balanced_labels(n, classes)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    parts = []
    for start in range(0, n, chunk):
        z = model.sample_latent(min(chunk, n - start), generator=generator)
        y = labels[start : start + len(z)].to(model.device) if labels is not None else None
        parts.append(model.generate(z, use_ema, y).float().cpu())
    return torch.cat(parts)
