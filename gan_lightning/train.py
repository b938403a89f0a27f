"""Entry point: ``python -m gan_lightning.train [overrides]`` composes conf/train.yaml and fits the GAN."""
from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def train(cfg: DictConfig) -> dict[str, float]:
    """Build data, GAN, callbacks, logger and Trainer from ``cfg``, fit, and return the final logged metrics."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
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
