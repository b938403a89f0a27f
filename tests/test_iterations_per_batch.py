"""execution.iterations_per_batch: one loader batch carries K iterations, so Lightning's per-batch work is paid once
per K. The training itself must not change: the same iterations on the same samples, logged and checkpointed by
iteration."""
from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from benchmarks.clock import Stopwatch
from gan_lightning.errors import ConfigError
from gan_lightning.execution import ExecutionPlan
from gan_lightning.execution.cuda_graph import WARMUP_ITERATIONS
from tests.conftest import compose_cfg, fit
from tests.graph_emulator import EMULATED_CAPTURE, EmulatedGraph

# 96 random digits at batch 8 with d_steps=2: 6 iterations an epoch, two epochs.
MNIST = ["experiment=mnist_mlp", "data.batch_size=8", "model.d_steps=2", "model.ema_half_life_images=200",
         "trainer.max_epochs=2", "~callbacks.image_metrics"]


def _fit(tmp_path, overrides):
    return fit(compose_cfg(tmp_path, overrides), seed=0)


def test_three_iterations_per_batch_train_exactly_as_one(tmp_path, mnist_dir):
    """K=3 against K=1 over two MNIST epochs: the same weights (EMA included), optimizer steps and iteration count,
    and the same means logged every 6 iterations (log_every_n_steps counts batches: 6 against 2)."""
    common = [*MNIST, f"data.data_dir={mnist_dir}"]
    one_trainer, one = _fit(tmp_path / "one", [*common, "trainer.log_every_n_steps=6"])
    trainer, model = _fit(tmp_path / "three", [*common, "execution.iterations_per_batch=3",
                                               "trainer.log_every_n_steps=2"])
    assert trainer.num_training_batches == 2 and one_trainer.num_training_batches == 6
    assert model.iteration == one.iteration == 12 and trainer.global_step == one_trainer.global_step == 12 * 3
    assert trainer.callback_metrics.keys() == one_trainer.callback_metrics.keys()
    for name, value in one_trainer.callback_metrics.items():
        assert torch.equal(value, trainer.callback_metrics[name]), name
    for name, value in one.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name


def test_with_a_recorded_iteration_each_iteration_of_a_batch_is_a_replay(tmp_path, mnist_dir):
    """execution.cuda_graph with K=3, under the CPU emulation of CUDA graphs: one recording, then a replay per
    iteration (not per batch), and the weights of the eager K=1 run."""
    common = [*MNIST, f"data.data_dir={mnist_dir}", "trainer.max_epochs=1"]
    _, eager = _fit(tmp_path / "eager", common)
    EmulatedGraph.log = []
    _, model = _fit(tmp_path / "graph", [*common, "execution.iterations_per_batch=3", *EMULATED_CAPTURE])
    assert EmulatedGraph.log == ["eager"] * WARMUP_ITERATIONS + ["record"] + ["replay"] * (6 - WARMUP_ITERATIONS)
    for name, value in eager.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name


def test_a_stream_draws_k_iterations_at_once_and_keeps_its_epoch_length(tmp_path):
    """The 1-D Gaussian: data.batches_per_epoch still counts iterations (4 batches of 5 make its 20), and a length
    that is not a multiple of K is refused, naming the keys."""
    trainer, model = _fit(tmp_path / "run", ["execution.iterations_per_batch=5", "data.batches_per_epoch=20",
                                             "trainer.max_epochs=2"])
    steps = model.hparams.d_steps + model.hparams.g_steps
    assert model.iteration == 40 and trainer.global_step == 40 * steps and trainer.num_training_batches == 4
    with pytest.raises(ConfigError, match=r"data.batches_per_epoch=22: counts iterations: use a multiple of "
                                          r"execution.iterations_per_batch=5"):
        _fit(tmp_path / "refused", ["execution.iterations_per_batch=5", "data.batches_per_epoch=22"])


def test_a_batch_cut_for_another_k_is_refused(tmp_path):
    """The plan cuts the project's data modules for its K and d_steps (data and execution cannot disagree in the
    config); a loader batch too small for K iterations of d_steps D updates (from a data module the plan could not
    cut) is refused, naming both, not trained on as smaller iterations."""
    trainer, _ = _fit(tmp_path / "run", ["execution.iterations_per_batch=2", "model.d_steps=3",
                                         "data.batch_size=4", "data.batches_per_epoch=2"])
    assert (trainer.datamodule.iterations_per_batch, trainer.datamodule.d_steps) == (2, 3)
    model = instantiate(compose_cfg(tmp_path / "model", ["model.d_steps=3"]).model)
    with pytest.raises(ValueError, match=r"a batch of 5 real samples cannot feed 2 iteration\(s\) of d_steps=3 D "
                                         r"updates"):
        list(ExecutionPlan(iterations_per_batch=2).iterations(model, torch.zeros(5, 1)))


def test_the_benchmark_clock_counts_the_iterations_of_each_batch():
    """Side A ticks once per loader batch with the iterations it held; a timed window must start and end at batch
    ends, or the per-iteration time would be off."""
    clock = Stopwatch(torch.device("cpu"), iterations=12, warmup=4)
    for _ in range(3):
        clock.tick(4)
    assert set(clock.marks) == {4, 12} and clock.seconds_per_iteration >= 0
    with pytest.raises(ValueError, match="iteration 4 ends inside a batch of 6 iterations"):
        Stopwatch(torch.device("cpu"), iterations=12, warmup=4).tick(6)
