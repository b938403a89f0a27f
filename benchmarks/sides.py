"""The three sides of one benchmark round, each training ``iterations`` iterations of one workload:

- ``project``: ``train()`` on the composed preset, through the real Trainer path (logger, progress bar,
  sample grids and checkpoints as a user has them; only the image-quality metrics are off, they evaluate);
- ``original``: the hand-written original loop (``originals.py``) with the same nets, batch and optimizer classes
  and settings, fed and run the original's way (torch's default optimizer kernels, PIL transforms);
- ``bare``: the project's schedule without Lightning (``bare.py``): the same GAN, plan and optimizers, its
  ``iteration_step`` called on the DataModule's batches;
- ``limit`` (CUDA only): the same module with the real samples drawn on the device, its iteration recorded once as
  a CUDA graph and replayed (``limit.py``): what the hardware does with it.

Each returns a ``SideResult``: steady-state seconds per iteration (after ``warmup`` iterations), the wall time
of the whole call, and the FLOPs of its second iteration.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from benchmarks.bare import bare_loop, without_trainer
from benchmarks.clock import FlopTick, Stopwatch, TickEachIteration
from benchmarks.limit import limit_loop
from benchmarks.originals import dcgan_example_loop, devnag_loop, pytorch_gan_loop, torchvision_mnist_loader
from gan_lightning.compose import compose_config
from gan_lightning.data import to_model_range
from gan_lightning.data.idx import decode_idx, read_bytes
from gan_lightning.data.mnist import SPLITS, find_idx_file, write_random_split
from gan_lightning.execution.cuda_graph import CapturedIteration
from gan_lightning.threads import torch_threads

# workload -> (preset, the original loop). The Gaussian workload has no batch-size choice: the original's 500.
WORKLOADS = {
    "mnist_mlp": ("mnist_mlp", pytorch_gan_loop),
    "mnist_dcgan": ("mnist_dcgan", dcgan_example_loop),
    "gaussian_moments": ("gaussian_moments", devnag_loop),
}
# The originals' DataLoader workers: PyTorch-GAN uses the default 0, the PyTorch DCGAN example --workers 2.
ORIGINAL_WORKERS = {"mnist_mlp": 0, "mnist_dcgan": 2}


@dataclass
class SideResult:
    seconds_per_iteration: float
    wall_seconds: float
    flops_per_iteration: int | None


def prepare_mnist(data_dir: str | None, root: Path, generated_images: int = 60000) -> str:
    """A folder holding uncompressed ``MNIST/raw`` IDX files (torchvision reads only those): the real digits from
    ``data_dir`` (raw or .gz) when given, else random uint8 digits of the same shape (same cost to train on)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    if data_dir is None:
        write_random_split(raw, "train", generated_images, seed=0)
        write_random_split(raw, "test", max(1, generated_images // 6), seed=1)
        return str(root)
    source = Path(data_dir) / "MNIST" / "raw"
    for split in ("train", "test"):
        for name in SPLITS[split]:
            path = find_idx_file(source, name)
            if path is None:
                raise FileNotFoundError(f"{source}: no {name}[.gz] (the benchmark needs MNIST's train and test files)")
            data = read_bytes(path)  # decompressed; an unreadable or damaged file is named as given, not as the copy
            decode_idx(data, path)  # checks the header against the size
            (raw / name).write_bytes(data)
    return str(root)


def compose_workload(workload: str, mnist_root: str | None, batch_size: int | None, iterations: int,
                     device: str, precision: str, threads: int | None, output_dir: Path,
                     extra: list[str] = ()) -> DictConfig:
    """The preset's config for ``iterations`` iterations, with the ``extra`` overrides. Every side uses its
    ``torch_threads``: ``threads``, else the preset's, else torch's current default."""
    preset, _ = WORKLOADS[workload]
    overrides = [f"experiment={preset}", f"trainer.accelerator={device}", f"trainer.precision={precision}"]
    if threads is not None:
        overrides.append(f"torch_threads={threads}")
    if workload.startswith("mnist"):
        # Exactly `iterations` iterations, across epoch boundaries if need be (an epoch at batch 1024 is 58):
        # max_steps counts optimizer steps, d_steps + g_steps per iteration (set below, once the model is known).
        overrides += [f"data.data_dir={mnist_root}", "~callbacks.image_metrics", "trainer.max_epochs=-1"]
        if batch_size is not None:
            overrides.append(f"data.batch_size={batch_size}")
    else:  # whole epochs of the preset's length, as a user runs them
        per_epoch = min(iterations, 100)
        if iterations % per_epoch:
            raise ValueError(f"gaussian_moments runs whole epochs of 100 iterations; got {iterations} iterations")
        overrides += [f"data.batches_per_epoch={per_epoch}", f"trainer.max_epochs={iterations // per_epoch}"]
    cfg = compose_config([*overrides, *extra], output_dir)
    if workload.startswith("mnist"):
        cfg.trainer.max_steps = iterations * (cfg.model.d_steps + cfg.model.g_steps)
    if cfg.get("torch_threads") is None:
        cfg.torch_threads = torch.get_num_threads()
    return cfg


@contextlib.contextmanager
def quiet():
    """Progress bars and prints still run (they are part of each side's cost) but go to /dev/null."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        level = logging.getLogger("lightning.pytorch").level
        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.getLogger("lightning.pytorch").setLevel(level)


def _ticks(device: torch.device, iterations: int, warmup: int):
    stopwatch, flops = Stopwatch(device, iterations, warmup), FlopTick(after=1)

    def tick(iterations: int = 1) -> None:
        flops.tick(iterations)  # first: the counter closes before the timed window opens
        stopwatch.tick(iterations)

    return stopwatch, flops, tick


def run_project(cfg: DictConfig, device: torch.device, iterations: int, warmup: int) -> SideResult:
    from gan_lightning.train import train

    stopwatch, flops, tick = _ticks(device, iterations, warmup)
    torch.compiler.reset()  # execution.compile_nets: each round compiles afresh, as a new run does
    with tempfile.TemporaryDirectory() as out, quiet():
        cfg.paths.output_dir = out
        start = time.perf_counter()
        train(cfg, extra_callbacks=[TickEachIteration(tick)])
        wall = time.perf_counter() - start
    return SideResult(stopwatch.seconds_per_iteration, wall, flops.flops)


def _original_nets_and_optimizers(cfg: DictConfig, device: torch.device):
    """The preset's nets (seeded as ``train()`` seeds them) and optimizers with torch's default implementation: the
    originals do not ask for fused kernels."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    generator = instantiate(cfg.model.generator).to(device)
    discriminator = instantiate(cfg.model.discriminator).to(device)
    factories = instantiate(cfg.model.g_optimizer), instantiate(cfg.model.d_optimizer)
    opt_g = factories[0](generator.parameters(), lr=cfg.model.g_lr, fused=None)
    opt_d = factories[1](discriminator.parameters(), lr=cfg.model.d_lr, fused=None)
    return generator, discriminator, opt_g, opt_d


def run_original(workload: str, cfg: DictConfig, device: torch.device, iterations: int, warmup: int) -> SideResult:
    stopwatch, flops, tick = _ticks(device, iterations, warmup)
    _, loop = WORKLOADS[workload]
    cudnn_benchmark = torch.backends.cudnn.benchmark
    # pytorch/examples dcgan/main.py sets cudnn.benchmark = True (it matters on a GPU only); restored afterwards
    torch.backends.cudnn.benchmark = workload == "mnist_dcgan" or cudnn_benchmark
    with quiet(), torch_threads(cfg.torch_threads):
        start = time.perf_counter()
        nets = _original_nets_and_optimizers(cfg, device)
        m = cfg.model
        if workload == "gaussian_moments":
            loop(*nets, mean=cfg.data.mean, std=cfg.data.std, batch_size=cfg.data.batch_size,
                 latent_dim=m.latent_dim, d_steps=m.d_steps, g_steps=m.g_steps, iterations=iterations,
                 device=device, tick=tick)
        else:
            loader = torchvision_mnist_loader(cfg.data.data_dir, cfg.data.batch_size, ORIGINAL_WORKERS[workload],
                                              resize=28 if workload == "mnist_mlp" else None)
            loop(*nets, loader, latent_dim=m.latent_dim, iterations=iterations, device=device, tick=tick)
        wall = time.perf_counter() - start
    torch.backends.cudnn.benchmark = cudnn_benchmark
    return SideResult(stopwatch.seconds_per_iteration, wall, flops.flops)


def train_bare(cfg: DictConfig, device: torch.device, iterations: int, tick) -> L.LightningModule:
    """``iterations`` iterations of ``bare_loop`` on the preset's data and GAN; returns the trained module."""
    datamodule = instantiate(cfg.data)
    module = without_trainer(cfg, device, datamodule)
    datamodule.setup("fit")
    if getattr(datamodule, "images", None) is not None:  # MNIST lives on the training device, as under the Trainer
        datamodule.images, datamodule.labels = datamodule.images.to(device), datamodule.labels.to(device)
    loader = datamodule.train_dataloader()

    def batches():  # epoch after epoch, moved and scaled by the DataModule's transfer hooks as Lightning does
        for epoch in itertools.count():
            sampler = getattr(loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):  # MNIST's order (Lightning calls it at each epoch start)
                sampler.set_epoch(epoch)
            for batch in loader:
                batch = datamodule.transfer_batch_to_device(batch, device, 0)
                yield datamodule.on_after_batch_transfer(batch, 0)

    # Checked as often as the project checks: every log_every_n_steps loader batches of iterations_per_batch.
    check_every = cfg.trainer.log_every_n_steps * module.execution.iterations_per_batch
    bare_loop(module, batches(), iterations, tick, check_every)
    return module


def run_bare(cfg: DictConfig, device: torch.device, iterations: int, warmup: int) -> SideResult:
    stopwatch, flops, tick = _ticks(device, iterations, warmup)
    with quiet(), torch_threads(cfg.torch_threads):
        start = time.perf_counter()
        train_bare(cfg, device, iterations, tick)
        wall = time.perf_counter() - start
    return SideResult(stopwatch.seconds_per_iteration, wall, flops.flops)


def run_limit(cfg: DictConfig, device: torch.device, iterations: int, warmup: int,
              capture: type[CapturedIteration] = CapturedIteration) -> SideResult:
    """``limit_loop`` on the preset's GAN (CUDA only, unless a stand-in ``capture`` is given)."""
    stopwatch, flops, tick = _ticks(device, iterations, warmup)
    with quiet(), torch_threads(cfg.torch_threads):
        start = time.perf_counter()
        # One iteration per replay, with optimizers a graph can record (capturable=True where they have it).
        module = without_trainer(cfg, device, cuda_graph=True, iterations_per_batch=1)
        images = labels = None
        if cfg.data._target_.endswith("MNISTDataModule"):
            datamodule = instantiate(cfg.data)
            datamodule.setup("fit")
            images, labels = to_model_range(datamodule.images.to(device)), datamodule.labels.to(device)
        limit_loop(module, images, labels, cfg, iterations, tick, capture)
        wall = time.perf_counter() - start
    return SideResult(stopwatch.seconds_per_iteration, wall, flops.flops)
