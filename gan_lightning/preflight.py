"""Checks that run before anything trains: each bad setting is reported as one line naming its key and value."""
from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from gan_lightning.gan import LATENT_DISTRIBUTIONS
from gan_lightning.losses import D_REDUCTIONS, G_LOSSES

# What Lightning's Trainer(precision=...) accepts (lightning.fabric.plugins.precision.precision).
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "transformer-engine",
              "transformer-engine-float16", "32", "16", "bf16", "64")

# Settings that may change between a run and its resumption without making it a different experiment.
# (How the same updates are computed is not part of the experiment: fused kernels, direct optimizer steps.)
RESUME_MAY_DIFFER = {"data.data_dir", "data.num_workers", "data.download", "model.check_finite", "model.direct_steps",
                     "model.g_optimizer.fused", "model.d_optimizer.fused"}
# Settings added after checkpoints were already written, and the value that older code behaved as.
ADDED_LATER = {"model.reuse_fake": False, "model.r1_gamma": 0.0}


class ConfigError(ValueError):
    """A setting that cannot work; the message names the config key and its value."""


def _require(ok: bool, key: str, value: Any, why: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value}: {why}")


def _positive_int(cfg: DictConfig, key: str, minimum: int = 1) -> None:
    value = OmegaConf.select(cfg, key)
    if value is not None:
        _require(isinstance(value, int) and value >= minimum, key, value, f"must be an integer >= {minimum}")


def validate_settings(cfg: DictConfig) -> None:
    """Static checks of values, names and paths (nothing is built or written except a probe in the output dir)."""
    for key in ("model.d_steps", "model.g_steps", "model.latent_dim", "data.batch_size", "data.batches_per_epoch"):
        _positive_int(cfg, key)
    for key in ("model.g_lr", "model.d_lr"):
        value = OmegaConf.select(cfg, key)
        _require(isinstance(value, (int, float)) and value > 0, key, value, "a learning rate must be > 0")
    precision = str(OmegaConf.select(cfg, "trainer.precision"))
    if OmegaConf.select(cfg, "model.r1_gamma") and precision in ("16-mixed", "16"):
        raise ConfigError(f"model.r1_gamma={cfg.model.r1_gamma} with trainer.precision={cfg.trainer.precision}: R1's "
                          "input gradient is not loss-scaled and can overflow in fp16; use bf16-mixed or 32-true")
    for key in ("model.r1_gamma", "model.grad_clip_norm", "model.ema_half_life_images"):
        value = OmegaConf.select(cfg, key)
        _require(value is None or (isinstance(value, (int, float)) and value >= 0), key, value, "must be >= 0")
    if OmegaConf.select(cfg, "data.std") is not None:
        _require(cfg.data.std > 0, "data.std", cfg.data.std, "the target Gaussian needs std > 0")
    for key, allowed in (("model.g_loss", G_LOSSES), ("model.d_loss_reduction", D_REDUCTIONS),
                         ("model.latent_distribution", LATENT_DISTRIBUTIONS)):
        value = OmegaConf.select(cfg, key)
        _require(value in allowed, key, value, f"expected one of {', '.join(allowed)}")
    for key in ("model.g_optimizer._target_", "model.d_optimizer._target_"):
        value = OmegaConf.select(cfg, key)
        try:
            cls = get_class(value)
        except Exception as err:
            raise ConfigError(
                f"{key}={value}: no such optimizer class (e.g. torch.optim.Adam, torch.optim.SGD)"
            ) from err
        _require(issubclass(cls, torch.optim.Optimizer), key, value, "is not a torch.optim.Optimizer")
    precision = OmegaConf.select(cfg, "trainer.precision")
    _require(precision is None or str(precision) in PRECISIONS, "trainer.precision", precision,
             f"expected one of {', '.join(PRECISIONS[:6])}")
    _check_writable(Path(cfg.paths.output_dir))
    if cfg.get("ckpt_path") is not None:
        _require(Path(cfg.ckpt_path).is_file(), "ckpt_path", cfg.ckpt_path, "no such checkpoint file")


def check_data_settings(cfg: DictConfig, data_name: str) -> None:
    """Every key under ``data`` must be a parameter of the DataModule (a preset for other data leaves strays)."""
    parameters = inspect.signature(get_class(cfg.data._target_).__init__).parameters
    for key, value in cfg.data.items():
        if not key.startswith("_") and key not in parameters:
            raise ConfigError(f"data.{key}={value}: not a setting of data={data_name} "
                              "(is the model or experiment meant for other data?)")


def _check_writable(directory: Path) -> None:
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


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}"))
        return out
    return {prefix: node}


def experiment_config(cfg: DictConfig) -> dict[str, Any]:
    """The part of the config that defines the experiment a checkpoint belongs to (resolved)."""
    return {"model": OmegaConf.to_container(cfg.model, resolve=True),
            "data": OmegaConf.to_container(cfg.data, resolve=True)}


def config_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    old, new = _flatten(saved, ""), _flatten(current, "")
    lines = []
    for key in sorted(set(old) | set(new)):
        name = key.lstrip(".")
        if name in RESUME_MAY_DIFFER or old.get(key, ADDED_LATER.get(name)) == new.get(key):
            continue
        lines.append(f"  {name}: {old.get(key, '<absent>')} (checkpoint) -> {new.get(key, '<absent>')} (now)")
    return lines


def check_checkpoint_matches(cfg: DictConfig) -> None:
    """Refuse to resume a checkpoint written by a different model or data config, unless allowed explicitly."""
    if cfg.get("ckpt_path") is None or cfg.get("allow_config_mismatch"):
        return
    checkpoint = torch.load(cfg.ckpt_path, map_location="cpu", weights_only=False)
    saved = checkpoint.get("gan_config")
    if saved is None:
        raise ConfigError(f"ckpt_path={cfg.ckpt_path}: not a gan_lightning checkpoint (no saved config); "
                          "set allow_config_mismatch=true to load it anyway")
    lines = config_diff(saved, experiment_config(cfg))
    if lines:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} was trained with a different config:\n" + "\n".join(lines)
            + "\nResume with the same settings, or set allow_config_mismatch=true to load it anyway."
        )


def prepare_data_early(datamodule) -> None:
    """Find (or download) and decode the data now, so missing or corrupt files stop the run before training."""
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        datamodule.prepare_data()
    datamodule.setup("fit")
