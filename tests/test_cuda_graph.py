"""execution.cuda_graph: where it cannot record (a CPU, ...) it says why in one line and trains eagerly; the
record-once / replay control flow, run here with a CPU emulation of CUDA's graph API (``graph_emulator.py``: a replay
runs the recorded operations and no Python), trains exactly as the eager iteration, with one recording per phase of
the iteration (a lazy regulariser's); on a GPU (when there is one) the real graph gives the eager losses."""
from __future__ import annotations

import logging

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from gan_lightning.execution.cuda_graph import WARMUP_ITERATIONS, optimizer_is_capturable, why_not_captured
from tests.conftest import compose_cfg, fit
from tests.graph_emulator import EMULATED_CAPTURE, EmulatedGraph


def test_record_once_then_replay_with_each_calls_inputs():
    """Two eager calls, one recording, then replays that run the recorded operations on each call's inputs (copied
    into the recorded ones) and return copies of the outputs (a graph rewrites its outputs at every replay)."""
    EmulatedGraph.log = []
    captured = EmulatedGraph(lambda x, y: (x * 2,), warmup=2)
    outputs = [captured(torch.full((4,), float(value)), None)[0] for value in range(1, 6)]
    for value, out in zip(range(1, 6), outputs):
        assert torch.equal(out, torch.full((4,), 2.0 * value))
    assert EmulatedGraph.log == ["eager", "eager", "record", "replay", "replay", "replay"]
    # A batch of another shape runs eagerly; the graph stays for the next full one.
    (out,) = captured(torch.ones(3), None)
    assert torch.equal(out, torch.full((3,), 2.0)) and EmulatedGraph.log[-1] == "replay"
    (out,) = captured(torch.full((4,), 7.0), None)
    assert EmulatedGraph.log[-1] == "replay" and torch.equal(out, torch.full((4,), 14.0))


def test_the_emulated_graph_runs_no_python_on_replay():
    """What the GAN tests below rely on: Python state kept by the body (here a tensor re-bound each call, which a
    graph would leave pointing at the recorded result) goes wrong under the emulator, as on a GPU; state written in
    place into the same tensor stays right; a read back to the host is refused while recording."""
    rebound, in_place = {"sum": torch.zeros(())}, torch.zeros(())

    def body(x):
        rebound["sum"] = rebound["sum"] + x.sum()
        in_place.add_(x.sum())
        return ()

    captured = EmulatedGraph(body, warmup=1)
    for _ in range(5):
        captured(torch.ones(2))
    assert in_place.item() == 10.0 and rebound["sum"].item() == 4.0  # eagerly both would be 10
    reads = EmulatedGraph(lambda x: (x * x.sum().item(),), warmup=0)
    with pytest.raises(RuntimeError, match="reads a value back to the host"):
        reads(torch.ones(2))


def test_which_optimizers_can_be_recorded():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert optimizer_is_capturable(torch.optim.SGD(params, lr=0.1, momentum=0.9))
    assert optimizer_is_capturable(torch.optim.Adam(params, capturable=True))
    assert not optimizer_is_capturable(torch.optim.Adam(params, fused=True))  # torch refuses it while recording
    assert not optimizer_is_capturable(torch.optim.Adam(params))


# The 1-D GAN with d_steps=2, g_steps=3 and the EMA, 8 iterations; R1 in every D update.
GAUSSIAN = ["model.d_steps=2", "model.g_steps=3", "data.batch_size=50", "data.batches_per_epoch=8",
            "model.ema_half_life_images=500"]
R1 = ["+regulariser=r1", "model.objective.regularisers.r1.gamma=1.0"]


def _fit(tmp_path, overrides, base=(*GAUSSIAN, *R1)):
    return fit(compose_cfg(tmp_path, [*base, *overrides]), seed=0)


def assert_same_training(trainer, model, reference_trainer, reference):
    """The same logged means (the last write of each) and the same weights, EMA included, bit for bit."""
    assert trainer.callback_metrics.keys() == reference_trainer.callback_metrics.keys()
    for name, value in reference_trainer.callback_metrics.items():
        assert torch.equal(value, trainer.callback_metrics[name]), name
    for name, value in reference.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name


def test_on_a_cpu_cuda_graph_says_why_not_and_trains_eagerly(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        trainer, model = _fit(tmp_path / "graph", ["execution.cuda_graph=true"])
    assert model.execution.captured is None
    assert "iteration eager, not a CUDA graph (no CUDA device (the run trains on cpu))" in caplog.text
    eager_trainer, eager = _fit(tmp_path / "eager", [])
    assert_same_training(trainer, model, eager_trainer, eager)


@pytest.mark.parametrize("variant", [
    R1,  # with the EMA (from GAUSSIAN)
    ["model.reuse_fake=true", "model.objective.loss=wasserstein", "+regulariser=[r1,gradient_penalty]",
     "model.objective.regularisers.r1.gamma=1.0", "model.objective.regularisers.gp.weight=1.0"],
    [*R1, "trainer.precision=bf16-mixed"],
], ids=["r1-ema", "reuse-gp", "bf16"])
def test_the_replayed_iteration_trains_exactly_as_the_eager_one(variant, tmp_path):
    """The GAN's side of the graph path: warm-up, recording, a replay per iteration, steps counted for replays
    that run no Python. Under the emulator, the weights (EMA included), the logged means and global_step equal the
    eager run's, with d_steps=2 and g_steps=3."""
    windows = ["trainer.log_every_n_steps=3", *variant]  # logged means over 3 iterations: sums kept across replays
    eager_trainer, eager = _fit(tmp_path / "eager", windows, base=GAUSSIAN)
    EmulatedGraph.log = []
    trainer, model = _fit(tmp_path / "graph", [*windows, *EMULATED_CAPTURE], base=GAUSSIAN)
    assert model.execution.update.name == "direct" and len(model.execution.captured.phases) == 1
    assert EmulatedGraph.log == ["eager"] * WARMUP_ITERATIONS + ["record"] + ["replay"] * (8 - WARMUP_ITERATIONS)
    assert trainer.global_step == eager_trainer.global_step == 8 * 5
    assert_same_training(trainer, model, eager_trainer, eager)


def test_each_phase_of_a_lazy_regulariser_is_recorded_once_and_replays_as_eager(tmp_path):
    """R1 every 4 D updates (d_steps=1): iterations with and without it run different Python, so they are two
    phases, each warmed up, recorded once and replayed; 20 iterations give R1's phase its 3 warm-up calls, a
    recording and a replay. The emulated run trains as the eager one bit for bit, and logs train/r1 (every window
    of 4 iterations holds one R1 update)."""
    lazy = ["data=ring", "model.d_steps=1", "data.batch_size=32", "data.batches_per_epoch=20",
            "trainer.log_every_n_steps=4", "+regulariser=r1", "model.objective.regularisers.r1.interval=4"]
    eager_trainer, eager = _fit(tmp_path / "eager", lazy, base=())
    EmulatedGraph.log = []
    trainer, model = _fit(tmp_path / "graph", [*lazy, *EMULATED_CAPTURE], base=())
    phases = model.execution.captured.phases
    assert set(phases) == {(("r1",),), ((),)}  # the regularisers due in each D update of an iteration
    assert all(recording.graph is not None for recording in phases.values())
    # Each phase: its warm-up calls, then a recording; every later call (the recording's own included) a replay.
    assert EmulatedGraph.log.count("eager") == 2 * WARMUP_ITERATIONS and EmulatedGraph.log.count("record") == 2
    assert EmulatedGraph.log.count("replay") == 20 - 2 * WARMUP_ITERATIONS
    assert trainer.global_step == eager_trainer.global_step == 20 * 2
    assert "train/r1" in trainer.callback_metrics
    assert_same_training(trainer, model, eager_trainer, eager)


@pytest.mark.parametrize("experiment", ["mnist_mlp", "mnist_dcgan"])
def test_the_replayed_mnist_iteration_trains_exactly_as_the_eager_one(experiment, tmp_path, mnist_dir):
    """The MNIST presets under the emulator: BatchNorm's running statistics, fused Adam, and for DCGAN convolutions
    in channels-last; the digits are cut from the resident split outside the recorded iteration."""
    common = [f"experiment={experiment}", f"data.data_dir={mnist_dir}", "data.batch_size=8", "model.d_steps=2",
              "trainer.log_every_n_steps=2", "callbacks.image_metrics=null"]  # 96 digits: 6 iterations
    if experiment == "mnist_dcgan":
        common += ["model.generator.features=8", "model.discriminator.features=8"]
    eager_trainer, eager = _fit(tmp_path / "eager", common, base=())
    EmulatedGraph.log = []
    trainer, model = _fit(tmp_path / "graph", [*common, *EMULATED_CAPTURE], base=())
    assert model.execution.nhwc == (experiment == "mnist_dcgan")
    assert EmulatedGraph.log == ["eager"] * WARMUP_ITERATIONS + ["record"] + ["replay"] * (6 - WARMUP_ITERATIONS)
    assert_same_training(trainer, model, eager_trainer, eager)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_on_a_gpu_the_graph_gives_the_eager_losses(tmp_path, precision):
    """200 iterations recorded once and replayed against the same 200 eager (the 1-D GAN's SGD needs no
    capturable option, so both runs have the same optimizers): the same losses, written every 20 iterations, within
    1e-3 (the kernels are the same; the tolerance covers cuBLAS choosing others inside a graph)."""
    common = ["trainer=gpu", f"trainer.precision={precision}", "data.batches_per_epoch=200",
              "trainer.log_every_n_steps=20"]
    eager_trainer, eager = _fit(tmp_path / "eager", common)
    trainer, model = _fit(tmp_path / "graph", [*common, "execution=cuda_graph"])
    assert eager.execution.captured is None
    phases = model.execution.captured.phases
    assert len(phases) == 1 and all(recording.graph is not None for recording in phases.values())
    for name in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"):
        reference, replayed = eager_trainer.callback_metrics[name], trainer.callback_metrics[name]
        assert torch.allclose(reference, replayed, rtol=1e-3, atol=1e-4), (name, reference, replayed)


class OnBackward(L.Callback):
    def on_before_backward(self, trainer, pl_module, loss) -> None:
        pass


def test_what_keeps_the_iteration_from_being_recorded(tmp_path):
    """The checks behind the one-line fallback, on a GAN that reports a CUDA device (nothing is moved: the checks
    only read settings)."""
    cfg = compose_cfg(tmp_path, [])
    model = instantiate(cfg.model)
    model._device = torch.device("cuda", 0)

    def reason(optimizer=torch.optim.SGD, **trainer_args):
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, **trainer_args)
        trainer.strategy.connect(model)
        trainer.strategy.optimizers = [optimizer(net.parameters(), lr=0.1)
                                       for net in (model.generator, model.discriminator)]
        return why_not_captured(model, trainer)

    assert reason() is None
    assert reason(precision="bf16-mixed") is None
    assert reason(optimizer=lambda params, lr: torch.optim.Adam(params, lr, capturable=True)) is None
    assert reason(optimizer=torch.optim.Adam) == ("model.g_optimizer (Adam) keeps its step count on the host (use "
                                                  "SGD, or an optimizer with a capturable option)")
    assert "callback OnBackward listens" in reason(callbacks=[OnBackward()])
    assert reason(detect_anomaly=True) == "trainer.detect_anomaly checks every backward on the host"
    model._device = torch.device("cpu")
    assert reason() == "no CUDA device (the run trains on cpu)"
