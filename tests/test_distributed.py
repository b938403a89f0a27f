"""DDP on CPU (2 gloo processes) for real, mixed precision paths, and the multirun + DDP guard."""
from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from gan_lightning.train import train
from tests.conftest import compose_cfg, event_tags, fit, run_cli, write_mnist


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_keeps_ranks_in_sync(tmp_path):
    data_dir = write_mnist(tmp_path / "data", n=256)
    run_dir, ranks_dir = tmp_path / "run", tmp_path / "ranks"
    result = run_cli(["experiment=mnist_mlp", "trainer=ddp_cpu", f"data.data_dir={data_dir}", "data.batch_size=16",
                   "trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.enable_progress_bar=false",
                   "callbacks.samples.every_n_iterations=2", f"hydra.run.dir={run_dir}",
                   "+callbacks.rank_recorder._target_=tests.rank_recorder.RankRecorder",
                   f"+callbacks.rank_recorder.dirpath={ranks_dir}"], cwd=tmp_path, threads=1)
    assert result.returncode == 0, result.stderr[-3000:]

    rank0, rank1 = (torch.load(ranks_dir / f"rank{r}.pt") for r in (0, 1))
    assert rank0["world_size"] == 2 and rank0["iteration"] == rank1["iteration"] == 4
    # Gradients are averaged across ranks: both ranks end with identical G and D...
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a, b) for a, b in zip(rank0[net], rank1[net])), net
    # ...although each rank trained on its own shard of MNIST.
    assert not torch.equal(rank0["first_batch"], rank1["first_batch"])
    # Rank zero alone writes the checkpoint and the TensorBoard images; the global batch is logged.
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["last.ckpt"]
    assert len(list(run_dir.rglob("events.out.tfevents.*"))) == 1
    assert {"samples/real", "samples/fake"} <= set(event_tags(run_dir)["images"])
    assert "global_batch_size: 32" in (run_dir / "hparams.yaml").read_text()


@pytest.mark.slow
def test_multirun_with_relaunching_ddp_fails_with_a_clear_message(tmp_path):
    result = run_cli(["-m", "trainer=ddp_cpu", "seed=1,2", "data.batches_per_epoch=2", "trainer.max_epochs=1",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, timeout=120, threads=1)
    assert result.returncode != 0
    assert "Hydra multirun (-m) cannot use a DDP strategy that re-launches the script" in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


def test_bf16_mixed_trains_on_cpu(tmp_path, mnist_dir):
    cfg = compose_cfg(tmp_path, ["data=mnist", f"data.data_dir={mnist_dir}", "data.batch_size=16",
                                 "trainer.precision=bf16-mixed", "trainer.limit_train_batches=3"])
    metrics = train(cfg)
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k.startswith("train/"))


class GradNormRecorder(L.Callback):
    """Per optimizer step: the true gradient norm of the backward pass (the scaled gradients as they accumulated,
    divided by the scale then) and the norm the optimizer stepped with, through torch's public tensor and
    optimizer hooks, so the clipping code is observed, not patched."""

    def __init__(self, scaler: torch.amp.GradScaler) -> None:
        self.scaler = scaler
        self.norms: list[tuple[float, float]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        raw: dict[int, torch.Tensor] = {}

        def keep_raw(param: torch.Tensor) -> None:
            raw[id(param)] = param.grad.detach() / self.scaler.get_scale()

        def record(optimizer, args, kwargs) -> None:
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            before = torch.linalg.vector_norm(torch.stack([raw[id(p)].norm() for p in params])).item()
            after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])).item()
            self.norms.append((before, after))

        for opt in pl_module.optimizers():
            for group in opt.optimizer.param_groups:
                for param in group["params"]:
                    param.register_post_accumulate_grad_hook(keep_raw)
            opt.optimizer.register_step_pre_hook(record)


def test_fp16_grad_scaler_serves_both_optimizers_and_clipping_sees_unscaled_grads(tmp_path, mnist_dir):
    """16-mixed with a real GradScaler (CPU fp16 autocast): per optimizer step scale -> unscale_ -> step -> update,
    and the clipping hook sees unscaled gradients, also with fused optimizers (which Lightning leaves to unscale
    inside their step). The scaler is only observed, not replaced."""
    cfg = compose_cfg(tmp_path, ["data=mnist", f"data.data_dir={mnist_dir}", "data.batch_size=16",
                                 "trainer.precision=null", "trainer.limit_train_batches=3", "model.grad_clip_norm=0.1"])
    scaler = torch.amp.GradScaler("cpu")
    calls: list[str] = []
    for name in ("scale", "unscale_", "step", "update"):
        method = getattr(scaler, name)
        setattr(scaler, name, lambda *a, _m=method, _n=name, **k: (calls.append(_n), _m(*a, **k))[1])

    norms = GradNormRecorder(scaler)
    fit(cfg, norms, seed=0, plugins=[MixedPrecision("16-mixed", "cpu", scaler)])

    steps = 3 * (1 + 1)  # 3 batches x (1 D + 1 G update)
    assert calls == ["scale", "unscale_", "step", "update"] * steps
    assert len(norms.norms) == steps
    # Clipping computed on scaled gradients (~65536x larger) would shrink them far below 0.1; clipping on the true
    # gradients leaves min(true norm, 0.1). (D norms here are ~0.4.)
    for before, after in norms.norms:
        assert after == pytest.approx(min(before, 0.1), rel=1e-3), norms.norms
    assert any(before > 0.2 for before, _ in norms.norms), norms.norms
