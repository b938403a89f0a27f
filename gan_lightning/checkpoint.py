"""What a checkpoint holds beyond Lightning's own state, and how it is written, read and compared.

Lightning writes ``state_dict``, optimizer and loop states; the GAN adds ``gan_iteration``, ``gan_log_window`` and
``gan_rng`` (``GAN.on_save_checkpoint``); ``RunConfigInCheckpoint`` adds ``gan_config``, the resolved ``model`` and
``data`` config of the run. That config is what a resume is compared against and what ``sample`` rebuilds the
GAN from. Files are written atomically (``AtomicCheckpointIO``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from gan_lightning.errors import ConfigError

CONFIG_KEY = "gan_config"
# Settings that may change between a run and its resumption without making it a different experiment.
# (How the same updates are computed is not part of the experiment: fused kernels, direct optimizer steps.)
RESUME_MAY_DIFFER = {"data.data_dir", "data.num_workers", "data.download", "model.check_finite", "model.direct_steps",
                     "model.g_optimizer.fused", "model.d_optimizer.fused"}
# Settings added after checkpoints were already written, and the value that older code behaved as.
ADDED_LATER = {"model.reuse_fake": False, "model.r1_gamma": 0.0}


# ----------------------------------------------------------------------------------------------------- writing
class AtomicCheckpointIO(TorchCheckpointIO):
    """A kill (even SIGKILL) during a save leaves the previous ``last.ckpt`` intact, never a truncated file:
    write beside the target, fsync, then rename (atomic on POSIX within one filesystem)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def experiment_config(cfg: DictConfig) -> dict[str, Any]:
    """The part of the config that defines the experiment a checkpoint belongs to (resolved)."""
    return {"model": OmegaConf.to_container(cfg.model, resolve=True),
            "data": OmegaConf.to_container(cfg.data, resolve=True)}


class RunConfigInCheckpoint(L.Callback):
    """Stores the run's experiment config in every checkpoint under ``gan_config``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config


# ----------------------------------------------------------------------------------------------------- reading
def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=False)


def stored_config(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    if CONFIG_KEY not in checkpoint:
        raise ConfigError(f"{path}: not a gan_lightning checkpoint (no stored config)")
    return checkpoint[CONFIG_KEY]


def load_gan(path: str | Path, device: str | torch.device = "cpu"):
    """The GAN of a checkpoint, rebuilt from its stored config, with its weights, in eval mode on ``device``."""
    checkpoint = read_checkpoint(path, map_location=device)
    model = instantiate(stored_config(checkpoint, path)["model"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


# --------------------------------------------------------------------------------------------------- comparing
def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}"))
        return out
    return {prefix: node}


def config_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One line per experiment setting that differs, ignoring those that may differ on resume."""
    old, new = _flatten(saved, ""), _flatten(current, "")
    lines = []
    for key in sorted(set(old) | set(new)):
        name = key.lstrip(".")
        if name in RESUME_MAY_DIFFER or old.get(key, ADDED_LATER.get(name)) == new.get(key):
            continue
        lines.append(f"  {name}: {old.get(key, '<absent>')} (checkpoint) -> {new.get(key, '<absent>')} (now)")
    return lines


def check_resume_matches(path: str | Path, cfg: DictConfig) -> None:
    """Refuse to resume a checkpoint written by a different model or data config (unless allowed explicitly)."""
    saved = read_checkpoint(path).get(CONFIG_KEY)
    if saved is None:
        raise ConfigError(f"ckpt_path={path}: not a gan_lightning checkpoint (no saved config); "
                          "set allow_config_mismatch=true to load it anyway")
    lines = config_diff(saved, experiment_config(cfg))
    if lines:
        raise ConfigError(
            f"ckpt_path={path} was trained with a different config:\n" + "\n".join(lines)
            + "\nResume with the same settings, or set allow_config_mismatch=true to load it anyway."
        )
