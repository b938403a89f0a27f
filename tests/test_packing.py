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
    with pytest.raises(ConfigError, match=r"pack=3 needs a batch size that is a multiple of the pack"):
        MLP(in_shape=[2], hidden=[16], out_shape=[1], pack=3)(torch.randn(10, 2))
    with pytest.raises(ConfigError, match=r"model.discriminator.pack=0: must be an integer >= 1"):
        MLP(in_shape=[2], hidden=[16], out_shape=[1], pack=0)


def test_a_packed_gan_trains_through_train(tmp_path):
    cfg = compose_cfg(tmp_path, ["experiment=ring_gan", "model.discriminator.pack=2", "data.batches_per_epoch=3",
                                 "data.batch_size=64"])
    metrics = train(cfg)
    assert 0 <= metrics["metrics/modes_covered"] <= 8
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
