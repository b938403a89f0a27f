"""What a checkpoint holds beyond Lightning's own state, and how it is written, read and compared.

Lightning writes ``state_dict``, optimizer and loop states; the GAN adds ``gan_iteration``, ``gan_log_window`` and
``gan_rng`` (``GAN.on_save_checkpoint``); ``RunConfigInCheckpoint`` adds ``gan_config``, the resolved ``model`` and
``data`` config of the run. That config is what a resume is compared against and what ``sample`` rebuilds the
GAN from. Files are written atomically (``AtomicCheckpointIO``).

A checkpoint is data, not code: every read is ``torch.load(weights_only=True)`` (tensors and plain containers;
a pickled object that would run code is refused), and a stored config is instantiated only when each of its
``_target_``s is a project net or a ``torch.nn`` module or ``torch.optim`` optimizer class.
"""
from __future__ import annotations

import errno
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from gan_lightning.errors import ConfigError, NoSpaceLeft, first_line
from gan_lightning.lr_schedule import LRSchedule
from gan_lightning.objective import Objective, Regulariser

CONFIG_KEY = "gan_config"
# Settings that may change between a run and its resumption without making it a different experiment.
# (How the same updates are computed is not part of the experiment: fused kernels, direct optimizer steps.)
# (How the updates are executed, conf/execution/, is not part of the experiment and is not stored.)
RESUME_MAY_DIFFER = {"data.data_dir", "data.num_workers", "data.download", "model.g_optimizer.fused",
                     "model.d_optimizer.fused"}
# Settings added after checkpoints were already written, and the value that older code behaved as.
ADDED_LATER = {"model.reuse_fake": False, "model.num_classes": 0, "model.discriminator.spectral_norm": False,
               "model.discriminator.batch_norm": True, "model.discriminator.pack": 1}
# What a stored config may instantiate: classes (never functions) from these packages that are nets, optimizers,
# objectives or regularisers.
ALLOWED_TARGET_PACKAGES = ("gan_lightning.", "torch.nn.", "torch.optim.")
ALLOWED_TARGET_TYPES = (torch.nn.Module, torch.optim.Optimizer, Objective, Regulariser, LRSchedule)


# ----------------------------------------------------------------------------------------------------- writing
class AtomicCheckpointIO(TorchCheckpointIO):
    """A kill (even SIGKILL) during a save leaves the previous ``last.ckpt`` intact, never a truncated file:
    write beside the target, fsync, then rename (atomic on POSIX within one filesystem). A full disk is said in
    one line (``NoSpaceLeft``), not as torch's writer's traceback."""

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
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)
            if _out_of_space(err, path.parent):
                previous = f"the previous checkpoint {path} is intact" if path.is_file() else "no earlier checkpoint"
                where = _mount_point(path.parent)
                raise NoSpaceLeft(f"no space left on {where} while writing {path}; {previous}") from err
            raise

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """Lightning's own loads (resuming) read tensors and plain data only, whatever the caller asked."""
        return read_checkpoint(path, map_location=map_location or "cpu")


# Below this many free bytes a failed write is put down to a full disk: torch's zip writer reports it as
# "file write failed" or "unexpected pos", without the errno.
FULL_BELOW_BYTES = 64 * 2**20


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write in ``folder``'s filesystem."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def _out_of_space(err: BaseException, folder: Path) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(err, (OSError, RuntimeError)):
        return False
    try:
        return free_bytes(folder) < FULL_BELOW_BYTES
    except OSError:
        return False


def _mount_point(path: Path) -> Path:
    path = path.absolute()
    while not os.path.ismount(path):
        path = path.parent
    return path


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


def saved_checkpoint(trainer: L.Trainer) -> str | None:
    """The checkpoint to resume this run from: the last one its checkpoint callback wrote into its own folder, else
    the one it resumed from, or None. (A path stored inside a resumed file is never trusted: a crafted file could
    name any path there.)"""
    callback = trainer.checkpoint_callback
    written = (callback.last_model_path or callback.best_model_path) if callback is not None else ""
    if written and callback.dirpath and Path(written).is_file() and Path(written).parent == Path(callback.dirpath):
        return written
    resumed_from = getattr(trainer, "ckpt_path", None)
    return str(resumed_from) if resumed_from and Path(resumed_from).is_file() else None


# ----------------------------------------------------------------------------------------------------- reading
def read_checkpoint(path: str | Path, key: str = "ckpt_path", map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path`` as tensors and plain data; a file that is no such checkpoint (another format,
    truncated, corrupted, or holding pickled objects, which could run code) is refused with one line naming
    ``key``."""
    try:
        damaged = _damaged_record(path)
    except (OSError, zipfile.BadZipFile) as err:  # not a zip archive: empty, truncated, text, torch's legacy format
        raise ConfigError(f"{key}={path}: cannot be read as a checkpoint ({err})") from err
    if damaged is not None:
        raise ConfigError(f"{key}={path}: corrupted: the CRC-32 of its record {damaged} does not match its bytes")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ConfigError(f"{key}={path}: refused: it holds pickled Python objects, not only tensors and plain data, "
                          "and loading those could run code") from err
    except Exception as err:  # not a zip/pickle, truncated, unreadable
        raise ConfigError(f"{key}={path}: cannot be read as a checkpoint ({first_line(err)})") from err
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{key}={path}: not a checkpoint (holds a {type(checkpoint).__name__}, not a dict)")
    return checkpoint


def _damaged_record(path: str | Path) -> str | None:
    """torch.save writes a zip archive with a CRC-32 per record, which torch.load does not check: the name of the
    first record whose bytes no longer match, or None."""
    with zipfile.ZipFile(path) as archive:
        return archive.testzip()


def stored_config(checkpoint: dict[str, Any], path: str | Path, key: str = "ckpt", hint: str = "") -> dict[str, Any]:
    if not isinstance(checkpoint.get(CONFIG_KEY), dict):
        raise ConfigError(f"{key}={path}: not a gan_lightning checkpoint (no stored config){hint}")
    return upgrade_config(checkpoint[CONFIG_KEY])


# Settings of checkpoints written before the objective and the execution plan had their own config: the model's
# execution settings (now conf/execution/, not stored) and the data's copies of model settings are dropped; the loss
# settings become the model's objective node.
OLD_EXECUTION_KEYS = ("direct_steps", "cuda_graph", "compile_nets", "channels_last", "iterations_per_batch",
                      "check_finite", "fixed_seed")
OLD_PAIRS = {("bce", "non_saturating"): "bce", ("bce", "minimax"): "minimax", ("least_squares", "least_squares"):
             "least_squares", ("hinge", "hinge"): "hinge", ("wasserstein", "wasserstein"): "wasserstein"}


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config in today's layout (a copy; one already in it comes back equal)."""
    model, data = config.get("model"), config.get("data")
    if not isinstance(model, dict) or "objective" in model:
        return config
    model = {k: v for k, v in model.items() if k not in OLD_EXECUTION_KEYS}
    d_loss, g_loss = model.pop("d_loss", "bce"), model.pop("g_loss", "non_saturating")
    pair = OLD_PAIRS.get((d_loss, g_loss))
    regularisers = {}
    if model.get("r1_gamma"):
        regularisers["r1"] = {"_target_": "gan_lightning.objective.R1", "gamma": model["r1_gamma"], "interval": 1}
    if model.get("gp_lambda"):
        regularisers["gp"] = {"_target_": "gan_lightning.objective.GradientPenalty", "weight": model["gp_lambda"],
                              "interval": 1}
    model.pop("r1_gamma", None), model.pop("gp_lambda", None)
    model["objective"] = {"_target_": "gan_lightning.objective.Objective", "loss": pair or "bce",
                          "g_loss": None if pair else g_loss, "d_loss": None if pair else d_loss,
                          "real_label": model.pop("real_label", 1.0),
                          "reduction": model.pop("d_loss_reduction", "mean"),
                          "regularisers": regularisers}
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("d_steps", "iterations_per_batch")}
    return {**config, "model": model, "data": data}


def config_leaves(node: Any, key: str = ""):
    """(config key, value) of every leaf of a nested dict/list config, e.g. ``("model.generator._target_", ...)``."""
    if isinstance(node, dict):
        for child, value in node.items():
            yield from config_leaves(value, f"{key}.{child}" if key else str(child))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from config_leaves(value, f"{key}[{i}]")
    else:
        yield key, node


def iter_targets(node: Any):
    """(config key, value) of every ``_target_`` in a nested dict/list config."""
    return ((key, value) for key, value in config_leaves(node) if key.rsplit(".", 1)[-1] == "_target_")


def check_stored_targets(config: dict[str, Any], path: str | Path, key: str = "ckpt") -> None:
    """Refuse a stored config that would make ``instantiate`` call anything but a net or optimizer class.

    Configs are stored resolved, so an interpolation is refused too: OmegaConf's resolvers (``oc.decode``,
    ``oc.create``) could turn a harmless-looking string into a node with a ``_target_`` of its own."""
    for name, value in config_leaves(config):
        if isinstance(value, str) and "${" in value:
            raise ConfigError(f"{key}={path}: refused: its stored config has an interpolation, {name}={value}")
    for name, target in iter_targets(config):
        allowed = isinstance(target, str) and target.startswith(ALLOWED_TARGET_PACKAGES)
        if allowed:
            try:
                cls = get_class(target)
            except Exception:
                cls = None
            allowed = isinstance(cls, type) and issubclass(cls, ALLOWED_TARGET_TYPES)
        if not allowed:
            raise ConfigError(f"{key}={path}: refused: its stored config has {name}={target}, which is not a "
                              "gan_lightning, torch.nn or torch.optim net/optimizer/objective/schedule class")


def load_gan(path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt"):
    """The GAN of a checkpoint, rebuilt from its stored config, with its weights, in eval mode on ``device``."""
    checkpoint = read_checkpoint(path, key, map_location=device)
    model_config = stored_config(checkpoint, path, key).get("model")
    if not isinstance(model_config, dict):
        raise ConfigError(f"{key}={path}: its stored config has no model")
    check_stored_targets({"model": model_config}, path, key)  # only the model is instantiated
    try:
        model = instantiate(model_config)
    except Exception as err:
        raise ConfigError(f"{key}={path}: its stored config does not build a GAN ({first_line(err)})") from err
    check_fits_model(checkpoint, model, path, key)
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


def what_is_there(path: str | Path) -> str | None:
    """Why ``path`` is not a checkpoint file to read, or None when it is a regular file (or a link to one)."""
    path = Path(path)
    if path.is_file():
        return None
    if path.is_symlink() and not path.exists():
        return f"a broken symbolic link (to {os.readlink(path)})"
    if path.is_dir():
        return "a folder, not a checkpoint file"
    if path.exists():
        kinds = ((path.is_char_device, "a character device"), (path.is_block_device, "a block device"),
                 (path.is_fifo, "a named pipe"), (path.is_socket, "a socket"))
        kind = next((name for test, name in kinds if test()), "not a regular file")
        link = f" (the symbolic link leads to {path.resolve()})" if path.is_symlink() else ""
        return f"{kind}, not a checkpoint file{link}"
    return "no such checkpoint file"


def _non_finite(value: Any) -> bool:
    return torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())


def check_fits_model(checkpoint: dict[str, Any], model: torch.nn.Module, path: str | Path, key: str,
                     resuming: bool = False) -> None:
    """Refuse, in one line naming the first problem, a checkpoint that would not load into ``model`` (the GAN the
    config builds) or would load non-finite values: every weight present, of the model's shape and finite; to
    resume, also the two optimizers' state (each moment of its parameter's shape, finite) and the GAN's counters."""
    where = f"{key}={path}"
    weights = checkpoint.get("state_dict")
    if not isinstance(weights, dict):
        raise ConfigError(f"{where}: has no state_dict (the weights); not a checkpoint of a training run")
    expected = model.state_dict()
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    if missing or unexpected:
        first = (f"lacks {missing[0]}" if missing else f"has {unexpected[0]}, which the model has not")
        raise ConfigError(f"{where}: its weights are not this model's: it {first} ({len(missing)} missing, "
                          f"{len(unexpected)} unexpected)")
    for name, value in weights.items():
        if not torch.is_tensor(value) or value.shape != expected[name].shape:
            shape = list(value.shape) if torch.is_tensor(value) else type(value).__name__
            raise ConfigError(f"{where}: state_dict.{name} has shape {shape} but the model's is "
                              f"{list(expected[name].shape)}")
        if _non_finite(value):
            raise ConfigError(f"{where}: state_dict.{name} holds non-finite values (NaN or inf): refused")
    if not resuming:
        return
    rng = checkpoint.get("gan_rng", {})
    cpu_rng = rng.get("cpu") if isinstance(rng, dict) else None
    if "gan_rng" in checkpoint and not (torch.is_tensor(cpu_rng) and cpu_rng.dtype == torch.uint8
                                        and cpu_rng.shape == torch.get_rng_state().shape):
        raise ConfigError(f"{where}: gan_rng is not a saved random-number generator state")
    iteration = checkpoint.get("gan_iteration", 0)
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise ConfigError(f"{where}: gan_iteration={iteration!r} is not an iteration count")
    states = checkpoint.get("optimizer_states")
    nets = (model.generator, model.discriminator)
    if not isinstance(states, list) or len(states) != len(nets):
        found = f"{len(states)}" if isinstance(states, list) else "none"
        raise ConfigError(f"{where}: cannot resume: it holds {found} optimizer states, the GAN has {len(nets)} "
                          "(G's and D's); a weights-only file can be sampled from, not resumed")
    for k, (state, net, who) in enumerate(zip(states, nets, "GD")):
        params = list(net.parameters())
        try:
            indices = [i for group in state["param_groups"] for i in group["params"]]
            per_param = state["state"]
        except (TypeError, KeyError) as err:
            raise ConfigError(f"{where}: optimizer_states[{k}] ({who}) is not an optimizer's state") from err
        if len(indices) != len(params):
            raise ConfigError(f"{where}: optimizer_states[{k}] ({who}) has {len(indices)} parameters, the model's "
                              f"{who} has {len(params)}")
        for index, moments in per_param.items():
            if not isinstance(moments, dict) or index not in indices:
                raise ConfigError(f"{where}: optimizer_states[{k}] ({who}) has state for an unknown parameter {index}")
            param = params[indices.index(index)]
            for moment, value in moments.items():
                if torch.is_tensor(value) and value.dim() > 0 and value.shape != param.shape:
                    raise ConfigError(f"{where}: optimizer_states[{k}].state[{index}].{moment} ({who}) has shape "
                                      f"{list(value.shape)} but its parameter's is {list(param.shape)}")
                if _non_finite(value):
                    raise ConfigError(f"{where}: optimizer_states[{k}].state[{index}].{moment} ({who}) holds "
                                      "non-finite values (NaN or inf): refused")


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


def check_resume_matches(checkpoint: dict[str, Any], path: str | Path, cfg: DictConfig) -> None:
    """Refuse to resume a checkpoint written by a different model or data config (unless allowed explicitly)."""
    saved = stored_config(checkpoint, path, "ckpt_path", hint="; set allow_config_mismatch=true to load it anyway")
    lines = config_diff(saved, experiment_config(cfg))
    if lines:
        raise ConfigError(
            f"ckpt_path={path} was trained with a different config:\n" + "\n".join(lines)
            + "\nResume with the same settings, or set allow_config_mismatch=true to load it anyway."
        )
