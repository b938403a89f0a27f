"""Entry point: ``python -m gan_lightning.train [overrides]`` composes conf/train.yaml and fits the GAN."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from gan_lightning.callbacks import HparamsWithFinalMetrics, RunProgressBar, final_metrics
from gan_lightning.checkpoint import RunConfigInCheckpoint, experiment_config, saved_checkpoint
from gan_lightning.compose import CONFIG_DIR
from gan_lightning.data import IDXError, MNISTNotFoundError
from gan_lightning.errors import ConfigError, NoSpaceLeft, TrainingInterrupted, is_int, require
from gan_lightning.execution import ExecutionPlan
from gan_lightning.preflight import (
    check_config,
    check_labels,
    check_memory,
    check_model_fits_data,
    check_optimizers,
    check_precision,
    check_resume,
    check_trainer,
    in_multirun,
    prepare_data_early,
)
from gan_lightning.run_log import say_where_the_run_went, set_up_run_log
from gan_lightning.stop_request import sigterm_stops_at_once
from gan_lightning.threads import torch_threads


class JobFailed(CompactHydraException):
    """A sweep job that failed for a known reason: Hydra prints its message alone, without a traceback."""


# Errors that mean "the input is wrong": reported as one line, not a traceback.
INPUT_ERRORS = (ConfigError, MNISTNotFoundError, IDXError)


def _choice(group: str) -> str:
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group, group))
    return group


def train(cfg: DictConfig, extra_callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Check the config, build data, GAN, callbacks, logger and Trainer, fit, and return the final metrics.

    ``extra_callbacks`` join the configured ones (e.g. the benchmark's clock).
    """
    threads = cfg.get("torch_threads")
    require(threads is None or (is_int(threads) and threads >= 1), "torch_threads", threads,
            "must be an integer >= 1, or null for torch's default")
    with torch_threads(threads):
        return _train(cfg, extra_callbacks)


def _build(node: DictConfig, what: str, **kwargs):
    """``instantiate(node)``; a ConfigError raised by the object's own checks comes out as it is, any other
    failure as a ConfigError naming the config group."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(" ".join(f"{what}: {cause}".split())) from err  # one line, however Lightning wraps it


def _train(cfg: DictConfig, extra_callbacks: Sequence[L.Callback]) -> dict[str, float]:
    try:
        with sigterm_stops_at_once():  # checks and data reading can take a while: a stop request ends them at once
            model, datamodule, trainer = _set_up(cfg, extra_callbacks)
    except SIGTERMException as err:
        raise TrainingInterrupted("SIGTERM", None, None) from err
    except KeyboardInterrupt as err:
        raise TrainingInterrupted("SIGINT", None, None) from err
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    except SIGTERMException as err:  # raised at the next batch end, or at once in the image metrics
        raise TrainingInterrupted("SIGTERM", model.iteration, saved_checkpoint(trainer)) from err
    except SystemExit as err:  # Lightning turns Ctrl+C (SIGINT) into sys.exit(1) after its own clean-up
        if not trainer.interrupted:
            raise
        raise TrainingInterrupted("SIGINT", model.iteration, saved_checkpoint(trainer)) from err
    return final_metrics(trainer)  # quality metrics come from rank zero's callbacks


def _set_up(cfg: DictConfig, extra_callbacks: Sequence[L.Callback]) -> tuple[L.LightningModule, L.LightningDataModule,
                                                                            L.Trainer]:
    """Check the config and build the GAN, the data (read and checked now) and the Trainer with its callbacks."""
    model_name, data_name = _choice("model"), _choice("data")
    check_config(cfg, data_name)
    require(is_int(cfg.get("seed")) and cfg.seed >= 0, "seed", cfg.get("seed"), "must be an integer >= 0")
    model_class = get_class(cfg.model._target_)
    if hasattr(model_class, "check_settings"):  # sizes and types named before a net is built with them
        model_class.check_settings(OmegaConf.to_container(cfg.model, resolve=True))
    check_memory(cfg, model_name, data_name)
    L.seed_everything(cfg.seed, workers=True)
    # nets refuse shapes they cannot build (e.g. DCGAN on 1-D samples)
    model = _build(cfg.model, f"model={model_name} cannot be built for data={data_name}")
    check_optimizers(cfg, model)
    check_resume(cfg, model)
    execution: ExecutionPlan = _build(cfg.execution, f"execution={_choice('execution')}")
    check_precision(model, cfg.trainer.get("precision"))
    datamodule = _build(cfg.data, f"data={data_name}")
    execution.shape_batches(datamodule, model.hparams.d_steps)
    prepare_data_early(datamodule)
    check_labels(model, datamodule, data_name)
    check_model_fits_data(model, cfg.data.sample_shape, cfg.data.batch_size, model_name, data_name)

    hparams = OmegaConf.to_container(cfg, resolve=True)
    callbacks = [_build(c, f"callbacks.{name}") for name, c in cfg.get("callbacks", {}).items()]
    callbacks += [execution, RunConfigInCheckpoint(experiment_config(cfg)), HparamsWithFinalMetrics(hparams),
                  *extra_callbacks]
    if cfg.trainer.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
        # One bar for the whole run; Lightning's default redraws after every batch (about 0.3 ms each: 1 % of an
        # MNIST MLP iteration), this one every progress_bar_refresh_rate iterations.
        callbacks.append(RunProgressBar(refresh_rate=cfg.get("progress_bar_refresh_rate", 10)))
    logger = _build(cfg.logger, "logger") if cfg.get("logger") else False
    trainer: L.Trainer = _build(cfg.trainer, "trainer settings refused by Lightning", callbacks=callbacks,
                                logger=logger)
    check_trainer(trainer, cfg.trainer.get("strategy"))
    # data.batch_size is per device and per D update; every rank draws its own batch.
    hparams["global_batch_size"] = cfg.data.batch_size * trainer.world_size
    rank_zero_info(f"Global batch per D update: {cfg.data.batch_size} x {trainer.world_size} devices "
                   f"= {hparams['global_batch_size']}")
    if logger:
        try:  # the logger makes its folder here: where the pre-flight could not tell (e.g. /proc as root)
            logger.experiment  # noqa: B018 - creates the writer and its folder
            logger.log_hyperparams(hparams)
        except OSError as err:
            raise ConfigError(f"logger.save_dir={cfg.logger.get('save_dir')}: cannot write there "
                              f"({err.strerror or err})") from err
    return model, datamodule, trainer


@rank_zero_only
def _write_run_summary(output_dir: str, summary: dict) -> None:
    """``metrics.json`` in the run folder: status, final metrics or the error, and the command-line overrides."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    path = Path(output_dir) / "metrics.json"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({**summary, "overrides": overrides}, indent=2))
        os.replace(tmp, path)  # a kill while writing leaves the previous file, never half of one
    except OSError as err:  # e.g. the disk that a checkpoint has just filled: say so, keep the run's own error
        tmp.unlink(missing_ok=True)
        print(f"error: could not write {path} ({err.strerror or err})", file=sys.stderr)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train; return ``cfg.optimized_metric`` (when set) so that a Hydra sweeper can optimise it."""
    set_up_run_log()
    try:
        metrics = train(cfg)
    except TrainingInterrupted as err:
        _write_run_summary(cfg.paths.output_dir, {"status": "interrupted", "signal": err.signal_name,
                                                  "iteration": err.iteration, "checkpoint": err.checkpoint})
        say_where_the_run_went(cfg.paths.output_dir)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except Exception as err:
        if in_multirun() or not isinstance(err, INPUT_ERRORS):  # bad input on its own writes nothing but the log
            _write_run_summary(cfg.paths.output_dir, {"status": "failed", "error": f"{type(err).__name__}: {err}"})
        if not isinstance(err, INPUT_ERRORS):  # it trained: what it wrote is worth a look
            say_where_the_run_went(cfg.paths.output_dir)
        if isinstance(err, (*INPUT_ERRORS, FloatingPointError, NoSpaceLeft)):  # one line instead of a traceback
            if in_multirun():  # Hydra records the failed job, runs the others, prints this line, exits non-zero
                raise JobFailed(f"error: {err}") from err
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2 if isinstance(err, INPUT_ERRORS) else 1)
        raise
    _write_run_summary(cfg.paths.output_dir, {"status": "ok", "metrics": metrics})
    say_where_the_run_went(cfg.paths.output_dir)
    if cfg.get("optimized_metric"):
        if cfg.optimized_metric not in metrics:
            raise KeyError(f"optimized_metric={cfg.optimized_metric!r} was not measured; got {sorted(metrics)}")
        return metrics[cfg.optimized_metric]
    return None


# Hydra plugins behind options of the optional extras (pyproject.toml): the override that chooses one, the module
# Hydra loads for it and the extra that installs it. Without the module Hydra stops before main() with "Could not
# load 'hydra/launcher/submitit_slurm'".
PLUGIN_EXTRAS = {
    "hydra/launcher=parallel": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "hparams_search=gaussian_optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # not even the hydra_plugins namespace
        return False


# Settings that moved when the core was split into objective, schedule and execution plan: old key -> where it is.
MOVED = {**{f"model.{k}": f"execution.{k}" for k in ("direct_steps", "cuda_graph", "compile_nets", "channels_last",
                                                     "iterations_per_batch", "check_finite")},
         "model.g_loss": "model.objective.g_loss", "model.d_loss": "model.objective.d_loss",
         "model.real_label": "model.objective.real_label", "model.d_loss_reduction": "model.objective.reduction",
         "model.r1_gamma": "+regulariser=r1 model.objective.regularisers.r1.gamma",
         "model.gp_lambda": "+regulariser=gradient_penalty model.objective.regularisers.gp.weight",
         "model.fixed_seed": "nothing (the grid's latents always come from seed 0)",
         "data.d_steps": "model.d_steps", "data.iterations_per_batch": "execution.iterations_per_batch"}


def moved_setting(argv: Sequence[str]) -> str | None:
    """One line naming the new key of a setting in ``argv`` that has moved (Hydra would only say it is unknown)."""
    for arg in argv:
        key = arg.lstrip("+~").split("=", 1)[0]
        if key in MOVED:
            return f"error: {arg}: {key} has moved to {MOVED[key]}"
    return None


def missing_extra(argv: Sequence[str]) -> str | None:
    """One line naming the extra to install when an override in ``argv`` needs a Hydra plugin that is missing."""
    for arg in argv:
        override = arg.lstrip("+")
        module, extra = PLUGIN_EXTRAS.get(override, (None, None))
        if module and not _installed(module):
            return f"error: {override} needs the {extra} extra: pip install 'gan_lightning[{extra}]'"
    return None


if __name__ == "__main__":
    # before Hydra, which would fail on these with a config-search dump or "Could not override"
    if hint := missing_extra(sys.argv[1:]) or moved_setting(sys.argv[1:]):
        print(hint, file=sys.stderr)
        sys.exit(2)
    main()
