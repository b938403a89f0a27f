"""Loss formulas and the shapes of the classic nets."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_lightning.losses import discriminator_loss, generator_loss, r1_penalty
from gan_lightning.nets import MLP, BatchDiscriminator, DCGANDiscriminator, DCGANGenerator, Moments, SquaredDeviations


def test_generator_losses_match_their_formulas():
    logits = torch.tensor([[-2.0], [0.0], [3.0]])
    d = torch.sigmoid(logits)
    assert torch.allclose(generator_loss(logits, "non_saturating"), -torch.log(d).mean())
    assert torch.allclose(generator_loss(logits, "minimax"), torch.log(1 - d).mean())


def test_label_smoothing_is_one_sided():
    real, fake = torch.tensor([[1.5]]), torch.tensor([[-0.5]])
    p_real, p_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected_real = -(0.9 * torch.log(p_real) + 0.1 * torch.log(1 - p_real))
    expected_fake = -torch.log(1 - p_fake)  # fake target stays 0
    assert torch.allclose(discriminator_loss(real, fake, 0.9, "sum"), expected_real + expected_fake)
    assert torch.allclose(discriminator_loss(real, fake, 0.9, "mean"), (expected_real + expected_fake) / 2)


def test_pytorch_gan_mlp_generator_matches_the_original_layout():
    g = MLP([100], [128, 256, 512, 1024], [1, 28, 28], batch_norm=[False, True, True, True],
            batch_norm_eps=0.8, out_activation="tanh")
    norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [m.num_features for m in norms] == [256, 512, 1024] and all(m.eps == 0.8 for m in norms)
    assert g(torch.randn(5, 100)).shape == (5, 1, 28, 28)
    # Linear 100-128, 128-256 + BN, 256-512 + BN, 512-1024 + BN, 1024-784 (weights + biases + BN scale/shift).
    expected = (100 * 128 + 128) + (128 * 256 + 256 + 512) + (256 * 512 + 512 + 1024) + (512 * 1024 + 1024 + 2048)
    expected += 1024 * 784 + 784
    assert sum(p.numel() for p in g.parameters()) == expected == 1_510_032


def test_dcgan_nets_shapes_and_init():
    torch.manual_seed(0)
    g, d = DCGANGenerator(100), DCGANDiscriminator()
    images = g(torch.randn(4, 100))
    assert images.shape == (4, 1, 28, 28) and images.abs().max() <= 1
    assert d(images).shape == (4, 1)
    conv = g.net[0].weight
    assert abs(conv.std().item() - 0.02) < 0.002 and abs(conv.mean().item()) < 0.002


def test_moments_features():
    x = torch.randn(100_000, 1) * 2 + 3
    mean, std, skew, kurt = Moments()(x)[0]
    assert math.isclose(mean, 3, abs_tol=0.03) and math.isclose(std, 2, abs_tol=0.03)
    assert abs(skew) < 0.05 and abs(kurt) < 0.1


def test_batch_discriminator_names_a_batch_size_mismatch():
    d = BatchDiscriminator(SquaredDeviations(), MLP([200], [50, 50], [1], activation="elu"))
    assert d(torch.randn(100, 1)).shape == (1, 1)
    with pytest.raises(ValueError, match="batch size"):
        d(torch.randn(64, 1))


def test_nets_refuse_samples_of_the_wrong_kind():
    with pytest.raises(ValueError, match="1-D samples"):
        Moments()(torch.randn(8, 1, 28, 28))
    with pytest.raises(ValueError, match="28, 28"):
        DCGANGenerator(100, out_shape=[1])


def test_r1_penalty_is_the_mean_squared_input_gradient_and_trains_d():
    """For D(x) = w . x the input gradient is w for every sample, so R1 = ||w||^2; its gradient reaches w."""
    d = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
    real = torch.randn(16, 3).requires_grad_(True)
    penalty = r1_penalty(d(real), real)
    assert penalty.item() == pytest.approx(1 + 4 + 0.25)
    penalty.backward()
    assert torch.allclose(d.weight.grad, 2 * d.weight)  # d||w||^2 / dw
