"""The benchmark (``benchmarks/``, outside the package) measures what it claims: its bare side, the project's
schedule called without a Trainer, trains as the Trainer does (bit for bit), the originals train the same nets, FLOPs
are counted per iteration, and the command prints its table."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.race import race
from benchmarks.sides import (
    compose_workload,
    prepare_mnist,
    run_limit,
    run_original,
    run_project,
    train_bare,
)
from gan_lightning.errors import ConfigError
from gan_lightning.execution.cuda_graph import WARMUP_ITERATIONS
from gan_lightning.threads import torch_threads
from gan_lightning.train import train
from tests.conftest import write_mnist
from tests.graph_emulator import EmulatedGraph

REPO = Path(__file__).resolve().parent.parent

CPU = torch.device("cpu")


def _workload_cfg(workload, tmp_path, iterations, batch_size=None, threads=1, extra=()):
    root = prepare_mnist(None, tmp_path / "data", generated_images=512) if workload.startswith("mnist") else None
    cfg = compose_workload(workload, root, batch_size, iterations, "cpu", "32-true", threads, tmp_path / "run",
                           list(extra))
    cfg.trainer.enable_progress_bar = False
    return cfg


class KeepModule(L.Callback):
    def on_train_end(self, trainer, pl_module):
        self.module = pl_module


@pytest.mark.parametrize("workload, batch_size, extra", [
    ("mnist_mlp", 128, []),
    ("gaussian_moments", 128, []),
    # What the old hand-written bare loop refused: two D updates per iteration with a lazy regulariser (two phases),
    # the EMA, gradient clipping, and two iterations per loader batch.
    ("mnist_mlp", 64, ["model.d_steps=2", "+regulariser=r1", "model.objective.regularisers.r1.interval=3",
                       "model.ema_half_life_images=100", "model.grad_clip_norm=0.5",
                       "execution.iterations_per_batch=2"]),
])
def test_the_bare_side_trains_as_the_trainer_does(workload, batch_size, extra, tmp_path):
    """Same config and seed: train() through the Trainer and the bare side (the same GAN, execution plan and
    optimizers, ``iteration_step`` called directly) end with identical weights, so A minus bare is the framework's
    cost and nothing else. Both cross an epoch boundary (the next epoch's order or samples)."""
    iterations = 6  # MNIST: 512 digits at batch 128 are 4 iterations an epoch; the Gaussian: epochs of 3
    cfg = _workload_cfg(workload, tmp_path, iterations, batch_size=batch_size, extra=extra)
    if workload == "gaussian_moments":
        cfg.data.batches_per_epoch, cfg.trainer.max_epochs = 3, 2
    keep = KeepModule()
    train(cfg, extra_callbacks=[keep])
    project = keep.module.state_dict()

    with torch_threads(cfg.torch_threads):
        bare = train_bare(cfg, CPU, iterations, tick=lambda: None)
    assert bare.iteration == keep.module.iteration == iterations
    assert bare.state_dict().keys() == project.keys()
    for name, value in bare.state_dict().items():
        assert torch.equal(project[name], value), name


def test_original_loop_and_project_count_the_same_matmuls_but_the_d_weight_grads(tmp_path):
    """PyTorch-GAN's loop backpropagates G's loss into D's weights too; the project freezes D there. FLOPs of one
    iteration differ by exactly D's weight gradients: 2 x batch x (in x out) per linear layer."""
    batch, iterations = 8, 4
    cfg = _workload_cfg("mnist_mlp", tmp_path, iterations, batch_size=batch)
    original = run_original("mnist_mlp", cfg, CPU, iterations, warmup=2)
    project = run_project(cfg.copy(), CPU, iterations, warmup=2)

    d_weights = [(784, 512), (512, 256), (256, 1)]
    assert original.flops_per_iteration - project.flops_per_iteration == 2 * batch * sum(a * b for a, b in d_weights)
    g_forward = 2 * batch * sum(a * b for a, b in [(100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)])
    assert project.flops_per_iteration > 3 * g_forward  # forward and backward of G, at least
    for side in (original, project):
        assert 0 < side.seconds_per_iteration < side.wall_seconds


def test_bench_command_prints_every_side_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    entries = main(["--workloads", "mnist_mlp", "gaussian_moments", "--batch-sizes", "8", "--rounds", "2",
                    "--iterations", "5", "--gaussian-iterations", "10", "--threads", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert [e["workload"] for e in entries] == ["mnist_mlp", "gaussian_moments"]
    assert [e["batch_size"] for e in entries] == [8, 500]
    for entry in entries:
        assert set(entry["sides"]) == {"project", "original", "bare"}
        assert all(len(results) == 2 for results in entry["sides"].values())
        assert entry["peak_flops"] > 1e8
    rows = [line for line in printed.splitlines() if line.startswith("| mnist_mlp | 8 |")]
    assert rows, printed
    cells = rows[-1].split(" | ")
    speed = float(cells[7].split()[0])
    assert math.isfinite(speed) and speed > 0
    assert "generated (random uint8 digits)" in printed
    written = json.loads(out.read_text())
    assert written["entries"][0]["workload"] == "mnist_mlp"
    # where and how it was measured travels with the figures
    assert {"date", "commit", "dirty", "cpu", "torch", "torch_threads", "command"} <= set(written["environment"])
    assert written["environment"]["command"].startswith("python -m benchmarks --workloads mnist_mlp gaussian_moments")


def test_race_finds_the_first_w1_check_under_the_threshold():
    short = ["trainer.max_epochs=1", "data.batches_per_epoch=30", "callbacks.samples.every_n_iterations=10"]
    easy = race("gaussian_fast", seed=0, threshold=100.0, overrides=short)
    assert easy["reached_at_iteration"] == 10 and 0 < easy["reached_after_s"] < easy["wall_s"]
    never = race("gaussian_fast", seed=0, threshold=0.0, overrides=short)
    assert never["reached_at_iteration"] is None and never["iterations"] == 30


def test_the_project_side_runs_its_iterations_across_epoch_boundaries(tmp_path):
    """512 digits at batch 64 make 8 iterations an epoch; 20 iterations take the project into its third epoch."""
    iterations = 20
    cfg = _workload_cfg("mnist_mlp", tmp_path, iterations, batch_size=64)
    result = run_project(cfg.copy(), CPU, iterations, warmup=4)  # the stopwatch raises if fewer ran
    assert result.seconds_per_iteration > 0 and result.wall_seconds > 0


@pytest.mark.parametrize("workload, extra, phases", [
    ("mnist_mlp", [], 1),
    ("gaussian_moments", [], 1),
    ("mnist_mlp", ["+regulariser=r1", "model.objective.regularisers.r1.interval=2"], 2),  # R1 in every other one
])
def test_the_limit_side_records_the_project_iteration_once_per_phase_and_replays_it(workload, extra, phases,
                                                                                    tmp_path):
    """Side "limit" (CUDA only) run here with a CPU emulation of CUDA's graph API: the project's ``iteration_step``
    with real samples drawn on the device inside the recorded iteration, one recording per phase, then a replay per
    iteration."""
    iterations = 8 * phases
    cfg = _workload_cfg(workload, tmp_path, iterations if workload == "mnist_mlp" else 100, batch_size=16,
                        extra=extra)
    EmulatedGraph.log = []
    result = run_limit(cfg, CPU, iterations, warmup=4, capture=EmulatedGraph)
    warmup = WARMUP_ITERATIONS
    if phases == 1:
        assert EmulatedGraph.log == ["eager"] * warmup + ["record"] + ["replay"] * (iterations - warmup)
    else:  # the phases alternate, each warms up and is recorded on its own calls
        assert EmulatedGraph.log[:2 * warmup] == ["eager"] * 2 * warmup
        assert EmulatedGraph.log.count("record") == phases
        assert EmulatedGraph.log.count("replay") == iterations - phases * warmup
    assert result.seconds_per_iteration > 0 and result.flops_per_iteration > 0


def test_set_overrides_reach_every_sides_config(tmp_path):
    root = prepare_mnist(None, tmp_path / "data", generated_images=64)
    cfg = compose_workload("mnist_mlp", root, 16, 10, "cpu", "32-true", 1, tmp_path / "run",
                           ["execution=cuda_graph", "model.g_lr=0.001"])
    assert cfg.execution.cuda_graph is True and cfg.model.g_lr == 0.001


def test_several_precisions_run_side_a_once_each_per_round_paired_with_the_same_other_sides(tmp_path, capsys,
                                                                                              monkeypatch):
    """``--precision 32-true bf16-mixed`` (issue 13: bf16 against fp32 in one run): side A runs in each precision
    in every round, interleaved with B; each precision gets a row, both paired with the same B runs, and only the
    fp32 row carries bare (which runs fp32)."""
    from benchmarks import __main__ as bench

    order = []
    real_project, real_original = bench.run_project, bench.run_original

    def project(cfg, *args):
        order.append(("project", cfg.trainer.precision))
        return real_project(cfg, *args)

    def original(*args):
        order.append(("original", None))
        return real_original(*args)

    monkeypatch.setattr(bench, "run_project", project)
    monkeypatch.setattr(bench, "run_original", original)
    entries = main(["--workloads", "mnist_mlp", "--batch-sizes", "8", "--rounds", "3", "--iterations", "5",
                    "--threads", "1", "--sides", "project", "original", "bare",
                    "--precision", "32-true", "bf16-mixed"])
    printed = capsys.readouterr().out
    assert [e["precision"] for e in entries] == ["32-true", "bf16-mixed"]
    fp32, bf16 = entries
    assert set(fp32["sides"]) == {"project", "original", "bare"} and set(bf16["sides"]) == {"project", "original"}
    assert fp32["sides"]["original"] == bf16["sides"]["original"]  # the same runs of B
    assert fp32["sides"]["project"] != bf16["sides"]["project"]
    # every round runs each precision of A and B once, in an order that rotates
    rounds = [order[i:i + 3] for i in range(0, 9, 3)]
    assert all(sorted(r, key=str) == sorted([("project", "32-true"), ("project", "bf16-mixed"), ("original", None)],
                                            key=str) for r in rounds)
    assert rounds[0][0] != rounds[1][0]
    assert any(line.startswith("| mnist_mlp | 8 |") for line in printed.splitlines()), printed
    assert any(line.startswith("| mnist_mlp (bf16-mixed) | 8 |") for line in printed.splitlines()), printed
    assert "precision (A): 32-true, bf16-mixed" in printed


@pytest.fixture
def no_benchmark_work(monkeypatch):
    """Fails the test if any benchmark work starts (a round, the race); MNIST files are still prepared."""
    from benchmarks import __main__ as bench

    def started(*args, **kwargs):
        raise AssertionError("benchmark work started")

    for name in ("bench_one", "race"):
        monkeypatch.setattr(bench, name, started)


@pytest.mark.parametrize(("layout", "args", "why"), [
    ("missing", [], "no such folder"),
    ("missing", ["--race"], "no such folder"),  # checked though the race reads no MNIST
    ("file", [], "not a folder"),
    ("empty", [], r"\S+/MNIST/raw has no train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                  r"t10k-labels-idx1-ubyte \(raw or .gz\)"),
])
def test_a_data_dir_without_mnist_is_one_line_before_any_benchmark_work(tmp_path, no_benchmark_work, layout, args,
                                                                         why):
    data_dir = tmp_path / "mnist"
    if layout == "file":
        data_dir.write_text("not a folder")
    elif layout == "empty":
        (data_dir / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(ConfigError, match=f"^--data-dir={data_dir}: {why}"):
        main(["--data-dir", str(data_dir), *args])


def test_a_damaged_mnist_file_is_named_as_given_not_as_the_copy(tmp_path, no_benchmark_work):
    data_dir = write_mnist(write_mnist(tmp_path / "mnist", n=16), n=16, split="test")
    damaged = data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:10])  # truncated
    with pytest.raises(ConfigError, match=f"^--data-dir={data_dir}: {damaged}: cannot read"):
        main(["--data-dir", str(data_dir), "--workloads", "mnist_mlp"])


def test_the_golden_record_refuses_a_data_dir_without_mnist_before_training_any_preset(tmp_path):
    """Otherwise every MNIST preset would fail (or try to download) one by one after minutes of the others."""
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    out = tmp_path / "golden.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.golden", "--out", str(out), "--data-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: --data-dir={tmp_path}: {tmp_path}/MNIST/raw has no "
                                   "train-images-idx3-ubyte, train-labels-idx1-ubyte (raw or .gz); the MNIST presets "
                                   "need MNIST's train files")
    assert not out.exists()
