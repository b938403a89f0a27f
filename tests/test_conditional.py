"""The class-conditional GAN: labels reach D with their images, G(z, y) obeys y, grids and the sample command."""
from __future__ import annotations

import lightning as L
import pytest
import torch
from PIL import Image

from gan_lightning.checkpoint import load_gan
from gan_lightning.errors import ConfigError
from gan_lightning.sample import main
from gan_lightning.train import train
from tests.conftest import compose_cfg, event_tags, write_mnist


class LabelRecorder(L.Callback):
    """Records each batch's labels and, per call, the labels the real nets' embeddings receive (forward hooks)."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []
        self.d_calls: list[torch.Tensor] = []
        self.g_calls: list[torch.Tensor] = []

    def on_train_start(self, trainer, pl_module) -> None:
        for net, calls in ((pl_module.discriminator, self.d_calls), (pl_module.generator, self.g_calls)):
            net.embedding.register_forward_hook(lambda module, args, out, calls=calls: calls.append(args[0].clone()))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch[1].clone())


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    """A mnist_cgan run of 2 iterations on 256 random 'digits' (with labels), measured at the end; shared by the
    tests of this file (its feature classifier goes to a temporary cache, as conftest's fixture does per test)."""
    root = tmp_path_factory.mktemp("cgan")
    data_dir = write_mnist(root / "data", n=256)
    run = root / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAN_LIGHTNING_CACHE", str(root / "cache"))
        metrics = train(compose_cfg(run, ["experiment=mnist_cgan", f"data.data_dir={data_dir}",
                                          "trainer.limit_train_batches=2", "trainer.max_epochs=1",
                                          "callbacks.image_metrics.every_n_epochs=1",
                                          "callbacks.image_metrics.num_samples=200"]))
    return run, data_dir, metrics


def test_real_labels_reach_d_with_their_images_and_fake_labels_reach_g_and_d(tmp_path):
    data_dir = write_mnist(tmp_path / "data", n=64)
    cfg = compose_cfg(tmp_path / "run", ["experiment=mnist_cgan", f"data.data_dir={data_dir}", "data.batch_size=8",
                                         "model.d_steps=2", "model.reuse_fake=false", "trainer.limit_train_batches=1",
                                         "~callbacks.image_metrics"])
    recorder = LabelRecorder()
    train(cfg, [recorder])
    (labels,) = recorder.batches
    real_chunks = labels.tensor_split(2)
    # Per D update: D(real, its labels), then D(fake, the labels G was given); then G's update judges its own.
    calls = recorder.d_calls
    assert len(calls) == 2 * 2 + 1
    assert torch.equal(calls[0], real_chunks[0]) and torch.equal(calls[2], real_chunks[1])
    generated = recorder.g_calls  # one G forward per D update, one for the G update, then the final grid's
    assert len(generated) == 4 and torch.equal(generated[3], torch.arange(10).repeat_interleave(10))
    assert torch.equal(calls[1], generated[0]) and torch.equal(calls[3], generated[1])
    assert torch.equal(calls[4], generated[2])
    assert all(((g >= 0) & (g < 10)).all() for g in generated)


def test_conditional_run_logs_label_accuracy_and_a_row_per_digit(cgan_run):
    run, _, metrics = cgan_run
    assert 0 <= metrics["metrics/label_accuracy"] <= 1
    assert {"metrics/fid", "metrics/modes"} <= metrics.keys()
    assert "metrics/label_accuracy" in event_tags(run)["scalars"]
    model = load_gan(run / "checkpoints" / "last.ckpt")
    assert torch.equal(model.fixed_y, torch.arange(10).repeat_interleave(10))  # grid row k = digit k


def test_sample_label_draws_that_class_through_g(cgan_run):
    """label=K feeds K to G for every sample: the saved samples are G(z, K) for the seeded z, and differ from
    G(z, J)."""
    run, _, _ = cgan_run
    ckpt = run / "checkpoints" / "last.ckpt"
    grid, tensor = main([f"ckpt={ckpt}", "label=3", "num_images=16", "num_samples=20", "seed=5"])
    assert grid.name == "samples_seed5_label3.png" and tensor.name == "samples_20_seed5_label3.pt"
    model = load_gan(ckpt)
    z = model.sample_latent(20, generator=torch.Generator().manual_seed(5))
    expected = model.generate(z, labels=torch.full((20,), 3))
    assert torch.allclose(torch.load(tensor), expected)
    assert not torch.allclose(expected, model.generate(z, labels=torch.full((20,), 7)))
    # Without label=: one row per class.
    (grid_all,) = main([f"ckpt={ckpt}", "num_images=20"])
    assert Image.open(grid_all).size == (2 * 28 + 3 * 2, 10 * 28 + 11 * 2)


@pytest.mark.parametrize(("args", "message"), [
    (["label=10"], "label=10: the checkpoint's GAN has classes 0 to 9"),
    (["label=-1"], "label=-1: must be a class number >= 0"),
])
def test_sample_refuses_a_label_outside_the_classes(cgan_run, args, message):
    run, _, _ = cgan_run
    with pytest.raises(ConfigError, match=message):
        main([f"ckpt={run / 'checkpoints' / 'last.ckpt'}", *args])


def test_sample_refuses_a_label_for_an_unconditional_gan(tmp_path):
    train(compose_cfg(tmp_path, ["data.batches_per_epoch=2"]))
    with pytest.raises(ConfigError, match="label=1: the checkpoint's GAN is not conditional"):
        main([f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", "label=1"])
