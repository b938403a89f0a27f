"""Faults lose nothing and never pass as success: NaN or non-finite state stops the run without touching the last
good checkpoint; corrupted checkpoints are refused; SIGTERM/SIGINT end the run as interrupted; SIGKILL then resume
matches an uninterrupted run; a failing sweep job leaves the others' results; checkpoints are never half-written."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from gan_lightning.checkpoint import AtomicCheckpointIO
from gan_lightning.errors import ConfigError
from gan_lightning.finite_watch import all_finite, finite
from gan_lightning.gan import GAN
from gan_lightning.report import report
from gan_lightning.stop_request import sigterm_stops_at_once
from gan_lightning.train import train
from tests.conftest import compose_cfg, event_accumulator, run_cli, start_cli, sweep_jobs, wait_or_dump_stacks


class NaNAtIteration(GAN):
    """Breaks G (NaN weights) at iteration ``nan_at`` (7: in the middle of the second 5-iteration epoch)."""

    nan_at = 7

    def training_step(self, batch, batch_idx):
        if self.iteration == self.nan_at:
            with torch.no_grad():
                next(self.generator.parameters()).fill_(float("nan"))
        return super().training_step(batch, batch_idx)


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = compose_cfg(tmp_path, ["data.batches_per_epoch=5", "data.batch_size=50", "model.d_steps=1",
                                 "model.g_steps=1", "trainer.max_epochs=3", "trainer.log_every_n_steps=20",
                                 f"model._target_={NaNAtIteration.__module__}.NaNAtIteration"])
    # Found at the epoch's end (iteration 10), before its checkpoint is written; named by where it appeared.
    with pytest.raises(FloatingPointError, match=r"non-finite G output, train/d_loss, train/g_loss at iteration 7 "
                                                 r"\(epoch 1, .*found at iteration 10\)"):
        train(cfg)
    good = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert good["gan_iteration"] == 5
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values() if v.is_floating_point())


class NaNAtFirstIteration(NaNAtIteration):
    nan_at = 0


def test_nan_before_any_checkpoint_says_that_none_exists(tmp_path):
    cfg = compose_cfg(tmp_path, ["data.batches_per_epoch=5", "data.batch_size=50",
                                 f"model._target_={NaNAtFirstIteration.__module__}.NaNAtFirstIteration"])
    with pytest.raises(FloatingPointError, match="at iteration 0 .*no checkpoint was written before this"):
        train(cfg)
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


class InfFakeInSecondDUpdate(GAN):
    """G's output is +inf for the second of iteration 2's three D updates only (neither the first nor the last)."""

    def training_step(self, batch, batch_idx):
        self.generator_calls = 0
        return super().training_step(batch, batch_idx)

    def run_generator(self, z, labels=None, net=None):
        out = super().run_generator(z, labels, net)
        self.generator_calls = getattr(self, "generator_calls", 0) + 1  # also called by the preflight check
        return out + float("inf") if self.iteration == 2 and self.generator_calls == 2 else out


def test_a_non_finite_fake_in_any_d_update_is_reported_as_g_output(tmp_path):
    cfg = compose_cfg(tmp_path, ["data.batches_per_epoch=5", "data.batch_size=60", "model.d_steps=3",
                                 f"model._target_={InfFakeInSecondDUpdate.__module__}.InfFakeInSecondDUpdate"])
    with pytest.raises(FloatingPointError, match=r"non-finite G output.* at iteration 2 "):
        train(cfg)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_the_finiteness_check_agrees_with_torch_isfinite(dtype):
    info = torch.finfo(dtype)
    x = torch.tensor([0.0, -0.0, 1.5, -2.0, info.max, -info.max, info.tiny, info.smallest_normal / 4,
                      float("inf"), float("-inf"), float("nan")], dtype=dtype)
    assert torch.equal(finite(x), torch.isfinite(x))
    assert all_finite([x[:8], x[:3]]) and not all_finite([x[:3], x[8:9]]) and not all_finite([x[10:]])


def _all_finite(checkpoint: dict) -> bool:
    tensors = [*checkpoint["state_dict"].values()]
    for optimizer in checkpoint["optimizer_states"]:
        tensors += [v for state in optimizer["state"].values() for v in state.values() if torch.is_tensor(v)]
    return all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())


def test_divergence_with_finite_losses_fails_and_is_never_checkpointed(tmp_path):
    """At lr 1e4 Adam's second moments overflow while the losses stay finite: the epoch-end save finds the state
    non-finite, refuses to write it and fails the run, naming the iteration; what was saved before is finite."""
    cfg = compose_cfg(tmp_path, ["experiment=gaussian_fast", "model.g_lr=1e4", "model.d_lr=1e4",
                                 "data.batches_per_epoch=10", "trainer.max_epochs=5",
                                 "callbacks.samples.every_n_iterations=0", "trainer.enable_progress_bar=false"])
    with pytest.raises(FloatingPointError, match=r"non-finite .* at iteration \d+ \(found when saving a checkpoint\)"):
        train(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    if last.exists():
        assert _all_finite(torch.load(last, weights_only=True))


def test_a_corrupted_checkpoint_is_refused(tmp_path):
    train(compose_cfg(tmp_path / "run", ["data.batches_per_epoch=2", "data.batch_size=50"]))
    data = bytearray((tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes())
    start = len(data) // 3
    data[start : start + 200] = bytes(b ^ 0xFF for b in data[start : start + 200])  # 200 bytes flipped
    corrupted = tmp_path / "corrupted.ckpt"
    corrupted.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    for path, why in ((corrupted, "corrupted|cannot be read"), (truncated, "cannot be read"),
                      (tmp_path / "empty.ckpt", "cannot be read")):
        path.touch()
        with pytest.raises(ConfigError, match=f"ckpt_path={path}: ({why})"):
            train(compose_cfg(tmp_path / "resume", ["data.batches_per_epoch=2", "data.batch_size=50",
                                                    "trainer.max_epochs=2", f"ckpt_path={path}"]))
        assert not (tmp_path / "resume" / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_as_interrupted_and_keeps_a_resumable_checkpoint(sig, tmp_path):
    common = ["data.batches_per_epoch=100", "data.batch_size=100", "trainer.max_epochs=50",
              "trainer.enable_progress_bar=false", "callbacks.samples.every_n_iterations=0", "torch_threads=1"]
    run_dir = tmp_path / "run"
    victim = start_cli([*common, f"hydra.run.dir={run_dir}"], tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    victim.send_signal(sig)
    wait_or_dump_stacks(victim, 60, sig.name)  # once (CI, SIGINT) it hung here: the stacks will say where
    stderr = victim.stderr.read()
    assert victim.returncode == 128 + sig, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{sig.name} received: training stopped after iteration" in errors[0], stderr[-2000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == sig.name
    assert summary["iteration"] >= 100 and Path(summary["checkpoint"]) == last

    resumed = train(compose_cfg(tmp_path / "resumed", [*common[:2], "trainer.max_epochs=3", f"ckpt_path={last}"]))
    assert "metrics/w1" in resumed
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["gan_iteration"] == 300


def _losses(run_dir: Path) -> dict[str, dict[int, float]]:
    acc = event_accumulator(run_dir)
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in ("train/d_loss", "train/g_loss")}


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    common = ["data.batches_per_epoch=150", "data.batch_size=100", "model.d_steps=2", "model.g_steps=1",
              "trainer.max_epochs=3", "trainer.enable_progress_bar=false", "callbacks.samples.every_n_iterations=0",
              "torch_threads=1"]
    killed_dir, full_dir, resumed_dir = tmp_path / "killed", tmp_path / "full", tmp_path / "resumed"

    victim = start_cli([*common, f"hydra.run.dir={killed_dir}"], tmp_path)
    last = killed_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the second epoch
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read()[-2000:]
    saved = torch.load(last, weights_only=False)  # a whole checkpoint despite the kill
    assert saved["gan_iteration"] == 150, "the kill should land in the second epoch"

    full = start_cli([*common, f"hydra.run.dir={full_dir}"], tmp_path)
    resumed = start_cli([*common, f"hydra.run.dir={resumed_dir}", f"ckpt_path={last}"], tmp_path)
    for proc in (full, resumed):
        proc.wait(timeout=300)
        assert proc.returncode == 0, proc.stderr.read()[-3000:]

    # Logged every 20 iterations (the default), each the mean since the last write: the window open at the
    # kill (iterations 141-150) travels in the checkpoint, so the write at 160 matches too. The final values end
    # each curve at the last iteration, 450 (for TensorBoard's HPARAMS view).
    expected, got = _losses(full_dir), _losses(resumed_dir)
    for tag in expected:
        assert sorted(got[tag]) == [*range(160, 451, 20), 450]
        assert sorted(expected[tag]) == [*range(20, 451, 20), 450]
        diffs = [abs(got[tag][step] - expected[tag][step]) for step in got[tag]]
        assert max(diffs) == 0.0, f"{tag}: max |resumed - uninterrupted| = {max(diffs)}"
    after = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=False)
    full_ckpt = torch.load(full_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert after["gan_iteration"] == full_ckpt["gan_iteration"] == 450
    for name, value in full_ckpt["state_dict"].items():
        assert torch.equal(after["state_dict"][name], value), name


@pytest.mark.slow
def test_a_failing_sweep_job_keeps_the_other_jobs_results(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "model.g_lr=1e-3,-1,2e-3", "trainer=cpu", "trainer.max_epochs=1",
                      "data.batches_per_epoch=2", "trainer.enable_progress_bar=false", f"hydra.sweep.dir={sweep}"],
                     tmp_path)
    assert result.returncode != 0
    jobs = sweep_jobs(sweep)
    assert jobs["1"].name == "1_model.g_lr@-1"
    status = {job: json.loads((jobs[job] / "metrics.json").read_text()) for job in ("0", "1", "2")}
    assert status["0"]["status"] == status["2"]["status"] == "ok"
    assert status["1"]["status"] == "failed" and "model.g_lr=-1" in status["1"]["error"]
    for job in ("0", "2"):
        assert (jobs[job] / "checkpoints" / "last.ckpt").is_file()
        assert "metrics/w1" in status[job]["metrics"]

    # The sweep report ranks the finished jobs by W1 and lists the failed one last, marked, with its error.
    assert f"Sweep folder: {sweep}" in result.stdout  # said also when a job failed
    text = report(sweep)
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "job" not in line]
    rows = [[cell.strip() for cell in row] for row in rows]
    assert [row[:3] for row in rows][-1] == ["1", "FAILED", "-1"]
    w1 = [float(row[3]) for row in rows[:2]]
    assert w1 == sorted(w1) and {row[0] for row in rows[:2]} == {"0", "2"}
    assert "job 1: ConfigError: model.g_lr=-1" in text
    assert (sweep / "report.csv").read_text().splitlines()[0].startswith("job,status,model.g_lr,metrics/w1")
    assert (sweep / "report.png").stat().st_size > 0 and (sweep / "report.md").is_file()


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"version": 1}, path)

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # a kill in the middle of writing

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"version": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.slow
def test_sigterm_while_the_image_metrics_train_their_classifier_stops_within_seconds(tmp_path, mnist_dir):
    """Measuring comes after the epoch's checkpoint, and a stop request ends it at once: status interrupted, the
    checkpoint named, exit 143 (not minutes of measuring that a scheduler's SIGKILL would end with nothing)."""
    run_dir = tmp_path / "run"
    victim = start_cli(["data=mnist", f"data.data_dir={mnist_dir}", "data.batch_size=32", "trainer.max_epochs=1",
                        "trainer.enable_progress_bar=false", "callbacks.samples.every_n_iterations=0",
                        "callbacks.image_metrics.every_n_epochs=1", "callbacks.image_metrics.classifier_epochs=100000",
                        f"callbacks.image_metrics.cache_dir={tmp_path / 'cache'}", "torch_threads=1",
                        f"hydra.run.dir={run_dir}"], tmp_path)
    log = run_dir / "train.log"
    deadline = time.monotonic() + 120
    while victim.poll() is None and time.monotonic() < deadline and (
            not log.exists() or "Training the feature classifier" not in log.read_text()):
        time.sleep(0.05)
    time.sleep(0.5)
    stopped_at = time.monotonic()
    victim.send_signal(signal.SIGTERM)
    wait_or_dump_stacks(victim, 30, "SIGTERM")
    assert time.monotonic() - stopped_at < 10
    stderr = victim.stderr.read()
    assert victim.returncode == 143, stderr[-2000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        f"error: SIGTERM received: training stopped after iteration 3; resume with ckpt_path={last}"]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "interrupted" and Path(summary["checkpoint"]) == last
    assert torch.load(last, weights_only=True)["gan_iteration"] == 3


def test_sigterm_outside_the_loop_raises_at_once_and_the_previous_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    with pytest.raises(SIGTERMException), sigterm_stops_at_once():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # long work: interrupted, not waited for
    assert time.monotonic() - started < 5 and signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(SIGTERMException), sigterm_stops_at_once(already_requested=True):
        pytest.fail("a stop requested before the block must not run it")


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """torch's zip writer says "unexpected pos" when the disk fills up; the user hears which disk and file, and
    that the last checkpoint still holds."""
    from gan_lightning import checkpoint as checkpoint_module
    from gan_lightning.errors import NoSpaceLeft

    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"gan_iteration": 5}, path)

    def disk_fills_up(obj, f) -> None:
        f.write(b"PK" * 100)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 8256 vs 8150")

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_fills_up)
    monkeypatch.setattr(checkpoint_module, "free_bytes", lambda folder: 4096)
    with pytest.raises(NoSpaceLeft) as err:
        io.save_checkpoint({"gan_iteration": 10}, path)
    mount = checkpoint_module._mount_point(path.parent)
    assert str(err.value) == f"no space left on {mount} while writing {path}; the previous checkpoint {path} is intact"
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"gan_iteration": 5}
    assert list(path.parent.iterdir()) == [path]  # no partial file left beside it
