"""PacGAN's packed discriminator (model.discriminator.pack): D judges consecutive samples together."""
from __future__ import annotations

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.nets import MLP, DCGANDiscriminator
from gan_lightning.nets.packed import pack_samples
from gan_lightning.train import train
from tests.conftest import compose_cfg


def test_pack_samples_puts_consecutive_samples_side_by_side():
    x = torch.arange(12.0).reshape(6, 2)  # samples (0, 1), (2, 3), ...
    packed = pack_samples(x, 3)
    assert packed.tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    images = torch.randn(4, 3, 28, 28)
    stacked = pack_samples(images, 2)
    assert stacked.shape == (2, 6, 28, 28)
    assert torch.equal(stacked[1, 3:], images[3])  # the second pack's second image: channels 3-5
    assert pack_samples(x, 1) is x


def test_packed_discriminators_give_one_output_per_pack():
    mlp = MLP(in_shape=[2], hidden=[16], out_shape=[1], pack=4)
    assert mlp.net[0].in_features == 8
    assert mlp(torch.randn(12, 2)).shape == (3, 1)
    dcgan = DCGANDiscriminator(in_shape=[3, 28, 28], features=8, pack=2)
    assert dcgan.net[0].in_channels == 6
    assert dcgan(torch.randn(6, 3, 28, 28)).shape == (3, 1)
    # the output depends on every member of the pack
    x = torch.randn(4, 2, requires_grad=True)
    mlp(x).sum().backward()
    assert (x.grad.abs().sum(dim=1) > 0).all()


def test_a_batch_that_is_not_a_multiple_of_the_pack_is_one_line():
    with pytest.raises(ConfigError, match=r"data.batch_size=10: model.discriminator.pack=3 needs a batch that is a"):
        MLP(in_shape=[2], hidden=[16], out_shape=[1], pack=3)(torch.randn(10, 2))
    with pytest.raises(ConfigError, match=r"model.discriminator.pack=0: must be an integer >= 1"):
        MLP(in_shape=[2], hidden=[16], out_shape=[1], pack=0)


def test_a_packed_gan_trains_through_train(tmp_path):
    cfg = compose_cfg(tmp_path, ["experiment=ring_gan", "model.discriminator.pack=2", "data.batches_per_epoch=3",
                                 "data.batch_size=64"])
    metrics = train(cfg)
    assert 0 <= metrics["metrics/modes_covered"] <= 8
    weights = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert weights["discriminator.net.0.weight"].shape == (128, 4)  # D's first layer reads pairs of 2-D samples


def _linear_pack_critic(pack: int, width: int = 2) -> torch.nn.Module:
    """A packed D that is linear in the pack, with weights of norm 1: 1-Lipschitz in what it judges."""
    critic = MLP(in_shape=[width], hidden=[], out_shape=[1], pack=pack)
    with torch.no_grad():
        weight = torch.randn(1, pack * width)
        critic.net[0].weight.copy_(weight / weight.norm())
    return critic


def test_gradient_penalties_take_one_gradient_per_pack():
    """R1/R2 and WGAN-GP on a packed D: the gradient of each output with respect to its whole pack. A per-sample
    norm would split the pack's unit gradient into pieces of norm about 1 / sqrt(pack)."""
    from gan_lightning.objective.regularisers import gradient_penalty, input_gradient_norm2

    critic = _linear_pack_critic(pack=4)
    real = torch.randn(16, 2, requires_grad=True)
    assert input_gradient_norm2(critic(real), real).item() == pytest.approx(1.0)
    fake = torch.randn(16, 2)
    assert gradient_penalty(critic, real, fake, pack=4).item() == pytest.approx(0.0, abs=1e-10)
    (grad,) = torch.autograd.grad(critic(real).sum(), real)
    per_sample = grad.norm(dim=1)  # what a per-sample penalty would hold to 1
    assert per_sample.pow(2).sum().item() == pytest.approx(4.0) and per_sample.max().item() < 1


def test_wgan_gp_interpolates_between_whole_packs():
    """One eps per pack: every member of an interpolated pack sits at the same point between its real and fake."""
    seen = []

    def critic(x):
        seen.append(x.detach())
        return x.reshape(len(x) // 2, -1).sum(1, keepdim=True)

    from gan_lightning.objective.regularisers import gradient_penalty

    real, fake = torch.ones(8, 2), torch.zeros(8, 2)
    gradient_penalty(critic, real, fake, pack=2)
    eps = seen[0][:, 0]  # x_hat = eps * 1 + (1 - eps) * 0
    assert torch.equal(eps[0::2], eps[1::2]) and len(set(eps[0::2].tolist())) == 4
