"""Stacked MNIST: triples of the MNIST files' digits as 3x28x28 images, seeded per epoch and split across ranks; its
1,000-mode count and KL; both presets through the real train()."""
from __future__ import annotations

import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from torch import nn

from gan_lightning.callbacks import ImageMetrics
from gan_lightning.data import StackedMNISTDataModule
from gan_lightning.errors import ConfigError
from gan_lightning.metrics.channelwise import ChannelwiseClassifier
from gan_lightning.metrics.classifier import DigitClassifier
from gan_lightning.metrics.image_quality import image_quality
from gan_lightning.nets import DCGANDiscriminator, DCGANGenerator
from gan_lightning.train import train
from tests.conftest import compose_cfg, event_tags, fit, write_mnist

# A GAN small enough for seconds of CPU: the DCGAN nets with 4 features.
TINY_DCGAN = ["model.generator.features=4", "model.discriminator.features=4"]


def traceable(root, n: int = 40, **kwargs) -> StackedMNISTDataModule:
    """The DataModule on ``n`` random digits whose pixel (0, 0) is replaced by the digit's index, so that every
    channel of a batch names the digit it was taken from."""
    dm = StackedMNISTDataModule(data_dir=str(write_mnist(root, n=n)), download=False, **kwargs)
    dm.setup("fit")
    dm.images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return dm


def digit_indices(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, 28, 28) uint8 stacked images of ``traceable`` digits -> (B, 3) indices of their digits."""
    return images[:, :, 0, 0].long()


def epoch(loader, number: int) -> list:
    _set_sampler_epoch(loader, number)  # as Lightning does at every epoch start (with the resumed epoch)
    return list(loader)


def test_batches_are_three_digits_of_the_split_with_the_triples_label_scaled_like_mnist(tmp_path):
    dm = traceable(tmp_path, batch_size=8, triples_per_epoch=70)
    dm.d_steps = 2  # set by the execution plan from model.d_steps
    assert dm.images.shape == (40, 1, 28, 28)  # the digits, which the image metrics' classifier learns
    batches = list(dm.train_dataloader())
    assert len(batches) == 70 // 16  # d_steps x batch_size triples per batch, the last partial batch dropped
    for images, labels in batches:
        assert images.dtype == torch.uint8 and images.shape == (16, 3, 28, 28) and labels.shape == (16,)
        index = digit_indices(images)
        assert torch.equal(images, dm.images[index].flatten(1, 2))  # channel j is digit index[:, j] unchanged
        digits = dm.labels[index]
        assert torch.equal(labels, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])
        assert labels.min() >= 0 and labels.max() < 1000

    images, labels = batches[0]
    images[0], images[1] = 0, 255
    scaled, same_labels = dm.on_after_batch_transfer((images, labels), 0)
    assert scaled.dtype == torch.float32 and same_labels is labels
    assert torch.all(scaled[0] == -1.0) and torch.all(scaled[1] == 1.0)
    assert scaled.min() >= -1 and scaled.max() <= 1


def test_each_epoch_draws_its_own_triples_and_a_resumed_run_draws_the_same(tmp_path):
    dm = traceable(tmp_path, batch_size=8, triples_per_epoch=64, seed=3)
    loader = dm.train_dataloader()
    epoch0, epoch1 = epoch(loader, 0), epoch(loader, 1)
    assert len(epoch0) == len(epoch1) == 8
    assert not torch.equal(epoch0[0][0], epoch1[0][0])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch(loader, 0), epoch0))  # the same epoch again

    # A new DataModule and loader (a resumed run) told it is at epoch 1 yields epoch 1's triples...
    again = traceable(tmp_path / "again", batch_size=8, triples_per_epoch=64, seed=3).train_dataloader()
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(epoch(again, 1), epoch1))
    # ...and another seed other triples.
    other = traceable(tmp_path / "other", batch_size=8, triples_per_epoch=64, seed=4).train_dataloader()
    assert not torch.equal(epoch(other, 1)[0][0], epoch1[0][0])


def test_lightning_sets_the_epoch_so_training_sees_each_epochs_triples(tmp_path):
    """Through a real fit of two epochs: the batches trained on are the loader's epoch 0 and epoch 1 draws."""
    seen: list[torch.Tensor] = []

    class Recorder(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            seen.append(batch[1].clone())

    root = write_mnist(tmp_path / "data", n=40)
    cfg = compose_cfg(tmp_path / "run", ["data=stacked_mnist", f"data.data_dir={root}", "data.batch_size=8",
                                         "data.triples_per_epoch=16", "trainer.max_epochs=2", *TINY_DCGAN])
    fit(cfg, Recorder())
    dm = StackedMNISTDataModule(data_dir=str(root), batch_size=8, triples_per_epoch=16, seed=cfg.data.seed,
                                download=False)
    dm.setup("fit")
    loader = dm.train_dataloader()
    expected = [labels for number in (0, 1) for _, labels in epoch(loader, number)]
    assert len(seen) == len(expected) == 4
    assert all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_ranks_split_one_draw_without_sharing_a_triple(tmp_path):
    """Under DDP rank r takes every second triple of the epoch's draw: no triple on both ranks, the same number of
    whole batches on each (a rank with one batch more would hang the others), the same draw whatever the ranks."""
    dm = traceable(tmp_path, batch_size=8, triples_per_epoch=70, seed=1)
    everything = torch.cat([digit_indices(images) for images, _ in epoch(dm.train_dataloader(), 2)])
    full_draw = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        batches = epoch(dm.train_dataloader(), 2)
        assert len(batches) == 70 // 2 // 8 == 4
        full_draw.append(torch.cat([digit_indices(images) for images, _ in batches]))
    interleaved = torch.stack(full_draw, 1).flatten(0, 1)  # rank 0's first, rank 1's first, rank 0's second, ...
    assert torch.equal(interleaved, everything[: len(interleaved)])


def test_bad_settings_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^data.sample_shape=\[1, 28, 28\]: Stacked MNIST images are \[3, 28, 28\]$"):
        StackedMNISTDataModule(sample_shape=[1, 28, 28])
    with pytest.raises(ConfigError, match=r"^data.triples_per_epoch=0: must be an integer >= 1$"):
        StackedMNISTDataModule(triples_per_epoch=0)
    dm = StackedMNISTDataModule(data_dir=str(write_mnist(tmp_path, n=100)), batch_size=64, triples_per_epoch=32,
                                download=False)
    with pytest.raises(ConfigError, match=r"^data.batch_size=64: one iteration takes batch_size x d_steps = 64 "
                                          r"images, but data.triples_per_epoch is 32$"):
        dm.setup("fit")


def test_dcgan_nets_make_and_judge_three_channel_images_and_name_other_shapes():
    fake = DCGANGenerator(16, out_shape=(3, 28, 28), features=4)(torch.randn(5, 16))
    assert fake.shape == (5, 3, 28, 28)
    assert DCGANDiscriminator(in_shape=(3, 28, 28), features=4)(fake).shape == (5, 1)
    with pytest.raises(ValueError, match=r"built for \(C, 28, 28\) images, got sample shape \[3, 32, 32\]"):
        DCGANGenerator(16, out_shape=(3, 32, 32))


# ------------------------------------------------------------------------------------------------ the metrics
class KnownDigits(nn.Module):
    """A stand-in digit classifier whose answer is known: the digit is the value at pixel (0, 0) (0-9), given as
    near-certain logits; its 128 features are that one-hot (scaled) and 118 of the image's pixels, so that the
    FID/KID/PRDC features of different images differ."""

    num_features = 128

    def __init__(self) -> None:
        super().__init__()
        self.device_anchor = nn.Parameter(torch.zeros(()))  # image_quality reads the device from a parameter

    def features(self, x: torch.Tensor) -> torch.Tensor:
        digit = nn.functional.one_hot(x[:, 0, 0, 0].round().long(), 10).float() * 20
        return torch.cat([digit, x.flatten(1)[:, 1:119].float()], 1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return features[:, :10]


def images_of(triples: torch.Tensor, seed: int) -> torch.Tensor:
    """(n, 3) digit triples -> (n, 3, 28, 28) images that KnownDigits reads as those triples (noise elsewhere)."""
    images = torch.rand(len(triples), 3, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    images[:, :, 0, 0] = triples.float()
    return images


ALL_TRIPLES = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))  # (1000, 3), 000 first


def stacked_quality(fake_triples: torch.Tensor, **kwargs) -> dict[str, float]:
    real = images_of(ALL_TRIPLES[::20], seed=0)  # few: KID's subsets are as large as the smaller set
    classifier = ChannelwiseClassifier(KnownDigits(), channels=3)
    return image_quality(classifier, real, images_of(fake_triples, seed=1), num_classes=1000, **kwargs)


def test_every_triple_once_is_1000_modes_and_kl_zero():
    labels = ALL_TRIPLES[:, 0] * 100 + ALL_TRIPLES[:, 1] * 10 + ALL_TRIPLES[:, 2]
    scores = stacked_quality(ALL_TRIPLES, min_samples=1, requested_labels=labels)
    assert scores["modes"] == 1000
    assert scores["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert scores["max_class_share"] == pytest.approx(1 / 1000)
    assert scores["label_accuracy"] == 1.0  # the head's class index is the triple's label 100 d0 + 10 d1 + d2


def test_ten_triples_are_ten_modes_and_kl_log_100():
    fake = ALL_TRIPLES[torch.arange(1000) % 10 * 111]  # 000, 111, ..., 999, 100 samples each
    scores = stacked_quality(fake, min_samples=1)
    assert scores["modes"] == 10
    assert scores["kl_uniform"] == pytest.approx(math.log(100))
    assert scores["max_class_share"] == pytest.approx(0.1)


def test_a_mode_counts_from_its_first_sample_under_the_papers_rule_not_under_the_share_rule():
    """Ten triples with 99 samples each and ten with one each: the papers' rule (at least one sample) counts 20
    modes; the 2 % share rule of the 10-class MNIST count would keep only the ten large ones."""
    fake = torch.cat([ALL_TRIPLES[torch.arange(990) % 10 * 111], ALL_TRIPLES[1:11]])
    assert stacked_quality(fake, min_samples=1)["modes"] == 20
    assert stacked_quality(fake)["modes"] == 10


def test_the_channelwise_classifier_reads_each_channel_with_the_digit_classifier():
    torch.manual_seed(0)
    digits = DigitClassifier().eval()
    channelwise = ChannelwiseClassifier(digits, channels=3)
    images = torch.rand(6, 3, 28, 28) * 2 - 1
    features = channelwise.features(images)
    assert features.shape == (6, 384) and channelwise.num_features == 384 and channelwise.num_classes == 1000
    per_channel = [digits.features(images[:, c : c + 1]) for c in range(3)]
    assert torch.allclose(features, torch.cat(per_channel, 1), atol=1e-6)  # one batch of 18 vs three of 6
    log_p = channelwise.head(features)
    assert log_p.shape == (6, 1000) and torch.allclose(log_p.exp().sum(1), torch.ones(6))
    argmax = [digits.head(f).argmax(1) for f in per_channel]
    assert torch.equal(log_p.argmax(1), argmax[0] * 100 + argmax[1] * 10 + argmax[2])
    expected = sum(digits.head(f).log_softmax(1)[:, [0, 4, 2][c]] for c, f in enumerate(per_channel))
    assert torch.allclose(log_p[:, 42], expected, atol=1e-5)  # the triple (0, 4, 2)


def test_image_metrics_compare_with_as_many_drawn_triples_as_asked_beyond_the_digits(tmp_path):
    """25,600 samples against 60,000 digits is fine on real MNIST; here 150 samples against 60 digits: the real
    triples are drawn (not capped at the digits' number), and the modes are counted over the 1,000 triples."""
    root = write_mnist(tmp_path / "data", n=60)
    cfg = compose_cfg(tmp_path / "run", ["data=stacked_mnist", f"data.data_dir={root}", "data.batch_size=8",
                                         "data.triples_per_epoch=16", *TINY_DCGAN])
    metrics = ImageMetrics(every_n_epochs=1, num_samples=150, classifier_epochs=1)
    fit(cfg, metrics)
    assert metrics.num_samples == 150 and metrics._real.shape == (150, 3, 28, 28)
    assert 1 <= metrics.metrics["metrics/modes"] <= 150
    # A distribution over at most 150 of 1,000 classes is at least log(1000 / 150) from uniform.
    assert metrics.metrics["metrics/kl_uniform"] >= math.log(1000 / 150) - 1e-9


# ------------------------------------------------------------------------------------------------ the presets
@pytest.mark.parametrize("preset", ["stacked_mnist_dcgan", "stacked_mnist_best"])
def test_stacked_mnist_preset_trains_and_measures_the_modes(preset, tmp_path):
    data_dir = write_mnist(tmp_path / "data", n=200)
    cfg = compose_cfg(tmp_path / "run", [f"experiment={preset}", f"data.data_dir={data_dir}",
                                         "data.triples_per_epoch=128", "callbacks.image_metrics.every_n_epochs=1",
                                         "callbacks.image_metrics.num_samples=64"])
    assert cfg.data.batch_size == 64 and cfg.name == preset
    metrics = train(cfg)

    assert {"train/d_loss", "train/g_loss", "metrics/fid", "metrics/modes", "metrics/kl_uniform"} <= metrics.keys()
    assert metrics["metrics/kl_uniform"] >= math.log(1000 / 64) - 1e-9  # 64 samples over 1,000 modes
    assert {"samples/real", "samples/fake"} <= set(event_tags(tmp_path / "run")["images"])
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_the_data_option_brings_the_papers_sample_count_and_the_dcgan():
    cfg = compose_cfg(None, ["data=stacked_mnist"])
    assert cfg.callbacks.image_metrics.num_samples == 25_600
    assert cfg.data.triples_per_epoch == 128_000 and list(cfg.data.sample_shape) == [3, 28, 28]
    assert cfg.model.generator._target_ == "gan_lightning.nets.DCGANGenerator"
