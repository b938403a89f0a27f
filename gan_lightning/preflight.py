"""Pre-flight: the checks that span several objects, run before anything trains. (Each single value is checked
where the object that uses it is built: the GAN, the DataModules, Lightning's Trainer.)"""
from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, get_method
from lightning.pytorch.strategies import StrategyRegistry
from omegaconf import DictConfig, OmegaConf

from gan_lightning.checkpoint import check_resume_matches
from gan_lightning.errors import ConfigError


def check_config(cfg: DictConfig, data_name: str) -> None:
    """Static checks of the composed config: names resolve, keys fit their objects, paths work."""
    check_targets(cfg)
    check_data_settings(cfg, data_name)
    precision = str(OmegaConf.select(cfg, "trainer.precision"))
    if OmegaConf.select(cfg, "model.r1_gamma") and precision in ("16-mixed", "16"):
        raise ConfigError(f"model.r1_gamma={cfg.model.r1_gamma} with trainer.precision={cfg.trainer.precision}: R1's "
                          "input gradient is not loss-scaled and can overflow in fp16; use bf16-mixed or 32-true")
    check_writable(Path(cfg.paths.output_dir))
    if cfg.get("ckpt_path") is not None:
        if not Path(cfg.ckpt_path).is_file():
            raise ConfigError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file")
        if not cfg.get("allow_config_mismatch"):
            check_resume_matches(cfg.ckpt_path, cfg)


def _targets(node: Any, key: str):
    if isinstance(node, dict):
        if "_target_" in node:
            yield f"{key}._target_", node["_target_"]
        for child, value in node.items():
            yield from _targets(value, f"{key}.{child}" if key else str(child))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _targets(value, f"{key}[{i}]")


def check_targets(cfg: DictConfig) -> None:
    """Every ``_target_`` names an importable class or function (a typo would otherwise surface deep inside
    Hydra's instantiate)."""
    for key, target in _targets(OmegaConf.to_container(cfg, resolve=False), ""):
        try:
            get_class(target)
        except Exception:
            try:
                get_method(target)
            except Exception as err:
                raise ConfigError(f"{key}={target}: no such class or function") from err


def check_data_settings(cfg: DictConfig, data_name: str) -> None:
    """Every key under ``data`` must be a parameter of the DataModule (a preset for other data leaves strays)."""
    parameters = inspect.signature(get_class(cfg.data._target_).__init__).parameters
    for key, value in cfg.data.items():
        if not key.startswith("_") and key not in parameters:
            raise ConfigError(f"data.{key}={value}: not a setting of data={data_name} "
                              "(is the model or experiment meant for other data?)")


def check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise ConfigError(f"paths.output_dir={directory}: cannot write there ({err.strerror or err})") from err


def check_model_fits_data(model, sample_shape, batch_size: int, model_name: str, data_name: str) -> None:
    """G must produce samples of the data's shape and D must accept a batch of them: a dry run in eval mode."""
    try:
        with torch.no_grad():
            # Own RNG: checking must not shift the random stream that training then draws from.
            z = model.sample_latent(batch_size, generator=torch.Generator().manual_seed(0))
            fake = model.generator.eval()(z)
            if tuple(fake.shape[1:]) != tuple(sample_shape):
                raise ConfigError(f"model={model_name} makes samples of shape {list(fake.shape[1:])} but "
                                  f"data={data_name} has samples of shape {list(sample_shape)}")
            model.discriminator.eval()(torch.zeros(batch_size, *sample_shape))
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(
            f"model={model_name} does not fit data={data_name} (samples {list(sample_shape)}): {err}"
        ) from err
    finally:
        model.train()


def refuse_multirun_with_relaunching_ddp(trainer: L.Trainer, strategy: Any) -> None:
    """DDP's default launcher re-runs ``sys.argv`` for every extra rank: inside a Hydra multirun each rank would
    start the whole sweep again. Stop before anything is launched. (``ddp_spawn`` and ``ddp_fork`` start their
    ranks inside this process and are fine.)"""
    in_multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if not in_multirun or trainer.strategy.launcher is None or trainer.world_size < 2:
        return
    registered = StrategyRegistry[strategy] if isinstance(strategy, str) and strategy in StrategyRegistry else {}
    if registered.get("init_params", {}).get("start_method", "popen") != "popen":
        return
    raise ConfigError(
        "Hydra multirun (-m) cannot use a DDP strategy that re-launches the script (trainer=ddp/ddp_cpu with "
        f"{trainer.world_size} processes): each rank would re-run the whole sweep. Sweep with one device per job "
        "(trainer.devices=1, several jobs at once with hydra/launcher=parallel or slurm), use "
        "trainer.strategy=ddp_spawn, or run each DDP job without -m."
    )


def prepare_data_early(datamodule) -> None:
    """Find (or download) and decode the data now, so missing or corrupt files stop the run before training."""
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        datamodule.prepare_data()
    datamodule.setup("fit")
