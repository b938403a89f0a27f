"""Entry point: ``python -m gan_lightning.train [overrides]`` composes conf/train.yaml and fits the GAN."""
from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def _refuse_multirun_with_relaunching_ddp(trainer: L.Trainer) -> None:
    """DDP's script launcher re-runs ``sys.argv`` for every extra rank: inside a Hydra multirun each rank would
    start the whole sweep again. Stop before anything is launched."""
    in_multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if in_multirun and isinstance(getattr(trainer.strategy, "launcher", None), _SubprocessScriptLauncher):
        raise RuntimeError(
            "Hydra multirun (-m) cannot use a DDP strategy that re-launches the script (trainer=ddp/ddp_cpu with "
            f"{trainer.world_size} processes): each rank would re-run the whole sweep. Sweep with one device per job "
            "(trainer.devices=1, several jobs at once with hydra/launcher=parallel or slurm), or run each "
            "DDP job without -m."
        )


def train(cfg: DictConfig) -> dict[str, float]:
    """Build data, GAN, callbacks, logger and Trainer from ``cfg``, fit, and return the final logged metrics."""
    if cfg.get("torch_threads"):
        torch.set_num_threads(cfg.torch_threads)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    _refuse_multirun_with_relaunching_ddp(trainer)
    # data.batch_size is per device and per D update; every rank draws its own batch.
    global_batch_size = cfg.data.batch_size * trainer.world_size
    rank_zero_info(f"Global batch per D update: {cfg.data.batch_size} x {trainer.world_size} devices = {global_batch_size}")
    if logger:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "global_batch_size": global_batch_size})
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    for callback in callbacks:  # quality metrics measured by callbacks (rank zero)
        metrics.update(getattr(callback, "metrics", {}))
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train; return ``cfg.optimized_metric`` (when set) so that a Hydra sweeper can optimise it."""
    metrics = train(cfg)
    if cfg.get("optimized_metric"):
        if cfg.optimized_metric not in metrics:
            raise KeyError(f"optimized_metric={cfg.optimized_metric!r} was not measured; got {sorted(metrics)}")
        return metrics[cfg.optimized_metric]
    return None


if __name__ == "__main__":
    main()
