"""PacGAN's packing (Lin et al. 2018): D judges ``pack`` samples at once, joined along the channels, never one
alone. A generator that collapses onto a few modes makes packs whose members look alike, which real packs rarely
do, so a packed D sees a collapse that a one-sample D cannot. Packing changes only D's input: the losses average
D's outputs as before, one output per pack instead of per sample."""
from __future__ import annotations

import torch

from gan_lightning.errors import require


def pack_samples(x: torch.Tensor, pack: int) -> torch.Tensor:
    """(B, C, ...) -> (B / pack, pack * C, ...): consecutive samples side by side (a batch of G's samples or of
    shuffled real ones, never a mix of the two)."""
    if pack == 1:
        return x
    require(len(x) % pack == 0, "data.batch_size", len(x),
            f"model.discriminator.pack={pack} needs a batch that is a multiple of the pack")
    return x.reshape(len(x) // pack, pack * x.shape[1], *x.shape[2:])
