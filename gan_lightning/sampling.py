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


@torch.no_grad()
def generate_many(model, n: int, seed: int, use_ema: bool = True, chunk: int = 1000) -> torch.Tensor:
    """``n`` samples of ``model`` (a GAN) from latents seeded by ``seed``, in eval mode, as float32 on the CPU.

    Drawn ``chunk`` at a time, so memory does not grow with ``n``; the same seed gives the same samples."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    return torch.cat([model.generate(model.sample_latent(min(chunk, n - start), generator=generator), use_ema)
                      .float().cpu() for start in range(0, n, chunk)])
