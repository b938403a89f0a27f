"""Entry point: ``python -m gan_lightning.train [overrides]`` composes conf/train.yaml and fits the GAN."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from omegaconf import DictConfig, OmegaConf

from gan_lightning.callbacks.run_config import HparamsWithFinalMetrics, RunConfigInCheckpoint, final_metrics
from gan_lightning.compose import CONFIG_DIR
from gan_lightning.data import IDXError, MNISTNotFoundError
from gan_lightning.validation import (
    ConfigError,
    check_checkpoint_matches,
    check_data_settings,
    check_model_fits_data,
    experiment_config,
    prepare_data_early,
    validate_settings,
)

# Errors that mean "the input is wrong": reported as one line, not a traceback.
INPUT_ERRORS = (ConfigError, MNISTNotFoundError, IDXError)


def _choice(group: str) -> str:
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group, group))
    return group


def _refuse_multirun_with_relaunching_ddp(trainer: L.Trainer) -> None:
    """DDP's script launcher re-runs ``sys.argv`` for every extra rank: inside a Hydra multirun each rank would
    start the whole sweep again. Stop before anything is launched."""
    in_multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if in_multirun and isinstance(getattr(trainer.strategy, "launcher", None), _SubprocessScriptLauncher):
        raise ConfigError(
            "Hydra multirun (-m) cannot use a DDP strategy that re-launches the script (trainer=ddp/ddp_cpu with "
            f"{trainer.world_size} processes): each rank would re-run the whole sweep. Sweep with one device per job "
            "(trainer.devices=1, several jobs at once with hydra/launcher=parallel or slurm), or run each "
            "DDP job without -m."
        )


def train(cfg: DictConfig, extra_callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Check the config, build data, GAN, callbacks, logger and Trainer, fit, and return the final metrics.

    ``extra_callbacks`` join the configured ones (e.g. the benchmark's clock).
    """
    threads = torch.get_num_threads()
    if cfg.get("torch_threads"):
        torch.set_num_threads(cfg.torch_threads)
    try:
        return _train(cfg, extra_callbacks)
    finally:
        torch.set_num_threads(threads)  # a caller's process keeps its own setting


def _train(cfg: DictConfig, extra_callbacks: Sequence[L.Callback]) -> dict[str, float]:
    validate_settings(cfg)
    check_data_settings(cfg, _choice("data"))
    check_checkpoint_matches(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    prepare_data_early(datamodule)
    try:
        model = instantiate(cfg.model)
    except Exception as err:  # nets refuse shapes they cannot build (e.g. DCGAN on 1-D samples)
        cause = err.__cause__ or err
        raise ConfigError(f"model={_choice('model')} cannot be built for data={_choice('data')}: {cause}") from err
    check_model_fits_data(model, cfg.data.sample_shape, cfg.data.batch_size, _choice("model"), _choice("data"))

    hparams = OmegaConf.to_container(cfg, resolve=True)
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
    callbacks += [RunConfigInCheckpoint(experiment_config(cfg)), HparamsWithFinalMetrics(hparams), *extra_callbacks]
    if cfg.trainer.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
        # Lightning's default bar redraws after every batch (about 0.3 ms each: 1 % of an MNIST MLP iteration).
        callbacks.append(TQDMProgressBar(refresh_rate=cfg.get("progress_bar_refresh_rate", 10)))
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    _refuse_multirun_with_relaunching_ddp(trainer)
    # data.batch_size is per device and per D update; every rank draws its own batch.
    hparams["global_batch_size"] = cfg.data.batch_size * trainer.world_size
    rank_zero_info(f"Global batch per D update: {cfg.data.batch_size} x {trainer.world_size} devices "
                   f"= {hparams['global_batch_size']}")
    if logger:
        logger.log_hyperparams(hparams)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return final_metrics(trainer)  # quality metrics come from rank zero's callbacks


@rank_zero_only
def _write_run_summary(output_dir: str, summary: dict) -> None:
    """``metrics.json`` in the run folder: status, final metrics or the error, and the command-line overrides."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    path = Path(output_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**summary, "overrides": overrides}, indent=2))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train; return ``cfg.optimized_metric`` (when set) so that a Hydra sweeper can optimise it."""
    try:
        metrics = train(cfg)
    except Exception as err:
        in_multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        if in_multirun or not isinstance(err, INPUT_ERRORS):  # bad input on its own writes nothing but the log
            _write_run_summary(cfg.paths.output_dir, {"status": "failed", "error": f"{type(err).__name__}: {err}"})
        if isinstance(err, (*INPUT_ERRORS, FloatingPointError)) and not in_multirun:
            print(f"error: {err}", file=sys.stderr)  # one clear message instead of a traceback
            sys.exit(2 if isinstance(err, INPUT_ERRORS) else 1)
        raise  # in a sweep Hydra records the failed job, runs the others, then exits non-zero
    _write_run_summary(cfg.paths.output_dir, {"status": "ok", "metrics": metrics})
    if cfg.get("optimized_metric"):
        if cfg.optimized_metric not in metrics:
            raise KeyError(f"optimized_metric={cfg.optimized_metric!r} was not measured; got {sorted(metrics)}")
        return metrics[cfg.optimized_metric]
    return None


if __name__ == "__main__":
    main()
