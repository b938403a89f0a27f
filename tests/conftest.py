"""Shared helpers: the real Hydra config with tiny limits, MNIST IDX files written by the test, event readers,
and the command line run in a subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_lightning.compose import compose_config
from gan_lightning.data.mnist import write_random_split

REPO = Path(__file__).resolve().parent.parent

# Quiet, small, CPU-only runs; every test adds what it is about.
TINY = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
]


def compose_cfg(output_dir: Path, overrides: list[str] = ()) -> DictConfig:
    """The config `python -m gan_lightning.train <overrides>` would run, writing into ``output_dir``."""
    return compose_config([*TINY, *overrides], output_dir)


def fit(cfg: DictConfig, *callbacks: L.Callback, ckpt_path: str | None = None, seed: int | None = None,
        model: L.LightningModule | None = None, **trainer_kwargs) -> tuple[L.Trainer, L.LightningModule]:
    """The composed config's data, GAN (or ``model``), execution plan and Trainer, fitted with ``callbacks`` and no
    logger or checkpoints: for tests that look at the trained module. ``seed`` seeds torch before the GAN is
    built (train() seeds everything with cfg.seed); ``trainer_kwargs`` replace the Trainer's configured settings
    (e.g. ``plugins``)."""
    if seed is not None:
        torch.manual_seed(seed)
    model = instantiate(cfg.model) if model is None else model
    datamodule = instantiate(cfg.data)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False,
                          callbacks=[instantiate(cfg.execution), *callbacks], **trainer_kwargs)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer, model


def write_mnist(root: Path, n: int = 96, gz: bool = True, split: str = "train", seed: int = 0) -> Path:
    """Write ``n`` random 28x28 digits with labels in torchvision's layout ``root/MNIST/raw``; returns ``root``."""
    write_random_split(root / "MNIST" / "raw", split, n, seed=seed, gz=gz)
    return root


def event_tags(run_dir: Path) -> dict[str, list[str]]:
    """Tags per summary kind ('images', 'scalars', ...) over every TensorBoard event file under ``run_dir``."""
    files = sorted(run_dir.rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {run_dir}"
    tags: dict[str, set[str]] = {}
    for path in files:
        acc = EventAccumulator(str(path), size_guidance={"images": 0, "scalars": 0})
        acc.Reload()
        for kind, names in acc.Tags().items():
            if isinstance(names, list):
                tags.setdefault(kind, set()).update(names)
    return {kind: sorted(names) for kind, names in tags.items()}


def event_accumulator(run_dir: Path) -> EventAccumulator:
    files = sorted(run_dir.rglob("events.out.tfevents.*"))
    assert len(files) == 1, files
    acc = EventAccumulator(str(files[0]), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.fixture(autouse=True)
def classifier_cache(tmp_path_factory, monkeypatch) -> Path:
    """Feature classifiers trained by tests go to a temporary cache, not the user's ~/.cache."""
    cache = tmp_path_factory.getbasetemp() / "classifier_cache"
    monkeypatch.setenv("GAN_LIGHTNING_CACHE", str(cache))
    return cache


@pytest.fixture(autouse=True)
def offline(monkeypatch) -> None:
    """No test touches the network: torchvision's MNIST download fails as it does offline, before connecting."""
    from urllib.error import URLError

    from torchvision.datasets import MNIST

    def no_network(self) -> None:
        raise URLError("network is unreachable (test)")

    monkeypatch.setattr(MNIST, "download", no_network)


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return write_mnist(tmp_path / "data", n=96)


def _cli_env(threads: int | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_cli(args: list[str], cwd: Path, timeout: int = 300, threads: int | None = None) -> subprocess.CompletedProcess:
    """``python -m gan_lightning.train <args>`` as a user types it, run to completion."""
    return subprocess.run([sys.executable, "-m", "gan_lightning.train", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=_cli_env(threads))


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    """The same command, started in the background (stderr kept for failure messages; faulthandler on, so that
    ``wait_or_dump_stacks`` can show where a process hangs)."""
    # SIGINT back to its default: a shell's background job (`cmd &`) starts with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler, so Ctrl+C tests would hang when the suite itself runs in the background.
    return subprocess.Popen([sys.executable, "-m", "gan_lightning.train", *args], cwd=cwd,
                            env={**_cli_env(None), "PYTHONFAULTHANDLER": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_or_dump_stacks(process: subprocess.Popen, timeout: float, what: str) -> None:
    """Wait for ``process`` to exit; if it hangs, abort it (faulthandler prints every thread's stack) and fail
    with those stacks."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        process.wait(timeout=30)
        pytest.fail(f"no exit within {timeout} s of {what}; its stderr ends:\n{process.stderr.read()[-8000:]}")


def sweep_jobs(sweep_dir: Path) -> dict[str, Path]:
    """A sweep's job folders (``<number>_<swept settings>``) by job number."""
    return {p.name.split("_", 1)[0]: p for p in sorted(sweep_dir.iterdir()) if (p / ".hydra").is_dir()}
