"""The generator EMA (StyleGAN2's G_ema): an exponential moving average of G's weights, used for sampling."""
from __future__ import annotations

import torch
from torch import nn


def ema_beta(images: int, half_life_images: float) -> float:
    """The weight the average keeps after G trained on ``images`` more images: it halves every half-life."""
    return 0.5 ** (images / half_life_images)


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * net for the weights; buffers (BatchNorm statistics) are copied from net."""
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - beta)
    for ema_buffer, buffer in zip(ema.buffers(), net.buffers()):
        ema_buffer.copy_(buffer)
