"""Loss formulas and the shapes of the classic nets."""
from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn

from gan_lightning.nets import (
    MLP,
    BatchDiscriminator,
    DCGANDiscriminator,
    DCGANGenerator,
    LabelConditioned,
    Moments,
    SquaredDeviations,
)
from gan_lightning.objective import discriminator_loss, generator_loss, gradient_penalty, r1_penalty


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


# ---------------------------------------------------------------------- hinge, Wasserstein, least squares, penalty
def test_d_losses_on_known_outputs():
    real, fake = torch.tensor([[2.0], [0.5], [-1.0]]), torch.tensor([[-3.0], [0.0], [1.5]])
    # hinge: mean relu(1 - D(x)) = (0 + 0.5 + 2) / 3, mean relu(1 + D(G(z))) = (0 + 1 + 2.5) / 3; always added
    assert discriminator_loss(real, fake, kind="hinge").item() == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert discriminator_loss(real, fake, reduction="mean", kind="hinge").item() == pytest.approx(6 / 3)
    # wasserstein: E[D(G(z))] - E[D(x)] = -0.5 - 0.5
    assert discriminator_loss(real, fake, kind="wasserstein").item() == pytest.approx(-1.0)
    # least squares: ((2-1)^2 + 0.25 + 4) / 3 and (9 + 0 + 2.25) / 3, averaged by default, added with "sum"
    real_term, fake_term = 5.25 / 3, 11.25 / 3
    assert discriminator_loss(real, fake, kind="least_squares").item() == pytest.approx((real_term + fake_term) / 2)
    assert discriminator_loss(real, fake, reduction="sum", kind="least_squares").item() == pytest.approx(
        real_term + fake_term)
    # bce stays the default kind
    assert torch.equal(discriminator_loss(real, fake), discriminator_loss(real, fake, kind="bce"))


def test_g_losses_on_known_outputs():
    fake = torch.tensor([[-3.0], [0.0], [1.5]])
    assert generator_loss(fake, "hinge").item() == pytest.approx(0.5)  # -E[D(G(z))]
    assert generator_loss(fake, "wasserstein").item() == pytest.approx(0.5)
    assert generator_loss(fake, "least_squares").item() == pytest.approx((16 + 1 + 0.25) / 3)


def test_gradient_penalty_on_a_linear_critic():
    """D(x) = w . x has gradient w everywhere: the penalty is (||w|| - 1)^2 at any interpolate, 0 for a unit w,
    and its gradient reaches w (D's update descends it)."""
    critic = nn.Linear(4, 1, bias=False)
    real, fake = torch.randn(32, 4), torch.randn(32, 4) + 3
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 0.0, -4.0, 0.0]]))  # norm 5
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx(16.0)
    penalty.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert torch.allclose(critic.weight.grad, 2 * 4 * critic.weight.detach() / 5)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.0, 0.8, 0.0]]))
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_penalty_is_taken_between_real_and_fake():
    """The critic sees each interpolate on the segment from G(z) to x (images: one eps per sample)."""
    seen = []

    def critic(x):
        seen.append(x.detach())
        return x.flatten(1).sum(1, keepdim=True)

    real, fake = torch.zeros(64, 1, 2, 2), torch.ones(64, 1, 2, 2)
    gradient_penalty(critic, real, fake)
    between = seen[0]
    assert between.shape == real.shape and between.min() >= 0 and between.max() <= 1
    assert torch.equal(between, between[:, :, :1, :1].expand_as(between))  # one eps per sample
    assert between.flatten(1)[:, 0].std() > 0.2  # eps drawn per sample, uniform on (0, 1)


def _largest_singular_values(net: nn.Module) -> list[float]:
    weights = [m.weight for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return [torch.linalg.matrix_norm(w.detach().flatten(1), ord=2).item() for w in weights]


def test_spectral_norm_bounds_each_layer_of_the_mlp_discriminator():
    torch.manual_seed(0)
    normed = MLP([1, 28, 28], [512, 256], [1], spectral_norm=True)
    with torch.no_grad():  # weights far from norm 1, so the normalisation has work to do
        for layer in normed.net:
            if isinstance(layer, nn.Linear):
                layer.parametrizations.weight.original.mul_(5)
    assert min(torch.linalg.matrix_norm(layer.parametrizations.weight.original, ord=2).item()
               for layer in normed.net if isinstance(layer, nn.Linear)) > 2
    x = torch.randn(8, 1, 28, 28)
    for _ in range(30):  # one power iteration per training forward
        normed(x)
    assert _largest_singular_values(normed) == pytest.approx([1.0, 1.0, 1.0], abs=0.02)
    # 1-Lipschitz layers and LeakyReLU: |D(x) - D(y)| <= ||x - y||
    normed.eval()
    y = torch.randn(8, 1, 28, 28)
    assert ((normed(x) - normed(y)).abs().flatten() <= (x - y).flatten(1).norm(dim=1) * 1.02).all()
    assert "parametrizations.weight.original" in "".join(normed.state_dict())


def test_spectral_norm_dcgan_discriminator_without_batch_norm():
    torch.manual_seed(0)
    d = DCGANDiscriminator(spectral_norm=True, batch_norm=False)
    assert not [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(nn.utils.parametrize.is_parametrized(m, "weight") for m in d.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(4, 1, 28, 28)
    for _ in range(30):
        d(x)
    # The parametrization divides the (reshaped) kernel by its largest singular value.
    assert _largest_singular_values(d) == pytest.approx([1.0, 1.0, 1.0], abs=0.02)
    assert d(x).shape == (4, 1)


def test_label_conditioned_dcgan_nets_join_the_label_as_latent_entries_and_as_one_hot_planes():
    torch.manual_seed(0)
    g = LabelConditioned(partial(DCGANGenerator, out_shape=(1, 28, 28), features=8), 10, [100], size_arg="latent_dim")
    d = LabelConditioned(partial(DCGANDiscriminator, features=8), 10, (1, 28, 28), join="channels").eval()
    assert g.net.net[0].in_channels == 110  # z and the 10-d embedding are the DCGAN generator's latent
    assert d.net.net[0].in_channels == 11 and d.embedding is None  # the image's channel and 10 one-hot planes
    z, labels = torch.randn(4, 100), torch.tensor([0, 3, 3, 9])
    x = g(z, labels)
    assert x.shape == (4, 1, 28, 28)
    # What D's first conv takes: the image, then in every pixel the one-hot label.
    seen = []
    d.net.net[0].register_forward_hook(lambda module, args, out: seen.append(args[0]))
    out = d(x, labels)
    assert out.shape == (4, 1)
    assert torch.equal(seen[0][:, :1], x)
    planes = seen[0][:, 1:]
    assert torch.equal(planes.amax(dim=(2, 3)), planes.amin(dim=(2, 3)))  # constant over the image
    assert torch.equal(planes[:, :, 0, 0], nn.functional.one_hot(labels, 10).float())
    # Each net obeys the label: another label, another output for the same z / image.
    other = torch.tensor([1, 4, 5, 2])
    assert not torch.allclose(g(z, other), x) and not torch.allclose(d(x, other), out)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"join": "planes"}, "join='planes': one of flat, channels"),
    ({"join": "channels", "in_shape": [100]}, r"join='channels' needs \(C, H, W\) inputs"),
    ({"join": "channels", "size_arg": "latent_dim"}, "size_arg='latent_dim': in_shape, or latent_dim with join='flat'"),
    ({"join": "channels", "embedding_dim": 10}, "join='channels' takes the one-hot label, not an embedding"),
])
def test_label_conditioned_refuses_a_join_its_input_cannot_take(kwargs, message):
    settings = {"net": DCGANDiscriminator, "num_classes": 10, "in_shape": (1, 28, 28)} | kwargs
    with pytest.raises(ValueError, match=message):
        LabelConditioned(**settings)
