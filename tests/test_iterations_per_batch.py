"""model.iterations_per_batch: one loader batch carries K iterations, so Lightning's per-batch work is paid once per K.
The training itself must not change: the same iterations on the same samples, logged and checkpointed by iteration."""
from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from gan_lightning import cuda_graph
from gan_lightning.bench.clock import Stopwatch
from gan_lightning.data import GaussianDataModule
from gan_lightning.errors import ConfigError
from tests.conftest import compose_cfg
from tests.graph_emulator import EmulatedGraph

# 96 random digits at batch 8 with d_steps=2: 6 iterations an epoch, two epochs.
MNIST = ["experiment=mnist_mlp", "data.batch_size=8", "model.d_steps=2", "model.ema_half_life_images=200",
         "trainer.max_epochs=2", "~callbacks.image_metrics", "torch_threads=1"]


def _fit(tmp_path, overrides):
    cfg = compose_cfg(tmp_path, overrides)
    torch.manual_seed(0)
    datamodule, model = instantiate(cfg.data), instantiate(cfg.model)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    return trainer, model


def test_three_iterations_per_batch_train_exactly_as_one(tmp_path, mnist_dir):
    """K=3 against K=1 over two MNIST epochs: the same weights (EMA included), optimizer steps and iteration count,
    and the same means logged every 6 iterations (log_every_n_steps counts batches: 6 against 2)."""
    common = [*MNIST, f"data.data_dir={mnist_dir}"]
    one_trainer, one = _fit(tmp_path / "one", [*common, "trainer.log_every_n_steps=6"])
    trainer, model = _fit(tmp_path / "three", [*common, "model.iterations_per_batch=3",
                                               "trainer.log_every_n_steps=2"])
    assert model.iteration == one.iteration == 12 and trainer.global_step == one_trainer.global_step == 12 * 3
    assert trainer.callback_metrics.keys() == one_trainer.callback_metrics.keys()
    for name, value in one_trainer.callback_metrics.items():
        assert torch.equal(value, trainer.callback_metrics[name]), name
    for name, value in one.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name


def test_with_a_recorded_iteration_each_iteration_of_a_batch_is_a_replay(tmp_path, mnist_dir, monkeypatch):
    """model.cuda_graph with K=3, under the CPU emulation of CUDA graphs: one recording, then a replay per
    iteration (not per batch), and the weights of the eager K=1 run."""
    common = [*MNIST, f"data.data_dir={mnist_dir}", "trainer.max_epochs=1"]
    _, eager = _fit(tmp_path / "eager", common)
    monkeypatch.setattr("gan_lightning.gan.why_not_captured", lambda module, trainer: None)
    monkeypatch.setattr("gan_lightning.gan.CapturedIteration", EmulatedGraph)
    EmulatedGraph.log = []
    _, model = _fit(tmp_path / "graph", [*common, "model.iterations_per_batch=3", "model.cuda_graph=true"])
    warmup = cuda_graph.WARMUP_ITERATIONS
    assert EmulatedGraph.log == ["eager"] * warmup + ["record"] + ["replay"] * (6 - warmup)
    for name, value in eager.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name


def test_a_stream_draws_k_iterations_at_once_and_keeps_its_epoch_length(tmp_path):
    """The 1-D Gaussian: data.batches_per_epoch still counts iterations (4 batches of 5 make its 20), and a length
    that is not a multiple of K is refused, naming the key."""
    trainer, model = _fit(tmp_path / "run", ["model.iterations_per_batch=5", "data.batches_per_epoch=20",
                                             "trainer.max_epochs=2", "torch_threads=1"])
    steps = model.hparams.d_steps + model.hparams.g_steps
    assert model.iteration == 40 and trainer.global_step == 40 * steps and trainer.num_training_batches == 4
    with pytest.raises(ConfigError, match=r"data.batches_per_epoch=22: counts iterations: use a multiple of "
                                          r"model.iterations_per_batch=5"):
        GaussianDataModule(batches_per_epoch=22, iterations_per_batch=5)


def test_a_data_module_cut_for_another_k_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"data.iterations_per_batch=1: must equal model.iterations_per_batch=2"):
        _fit(tmp_path, ["model.iterations_per_batch=2", "data.iterations_per_batch=1"])


def test_the_benchmark_clock_counts_the_iterations_of_each_batch():
    """Side A ticks once per loader batch with the iterations it held; a timed window must start and end at batch
    ends, or the per-iteration time would be off."""
    clock = Stopwatch(torch.device("cpu"), iterations=12, warmup=4)
    for _ in range(3):
        clock.tick(4)
    assert set(clock.marks) == {4, 12} and clock.seconds_per_iteration >= 0
    with pytest.raises(ValueError, match="iteration 4 ends inside a batch of 6 iterations"):
        Stopwatch(torch.device("cpu"), iterations=12, warmup=4).tick(6)
