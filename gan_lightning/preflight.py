"""Pre-flight: the checks that span several objects, run before anything trains. (Each single value is checked
where the object that uses it is built: the GAN, the DataModules, Lightning's Trainer.)"""
from __future__ import annotations

import inspect
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, get_method, instantiate
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from omegaconf import DictConfig, OmegaConf

from gan_lightning.checkpoint import (
    check_fits_model,
    check_resume_matches,
    iter_targets,
    read_checkpoint,
    what_is_there,
)
from gan_lightning.compose import CONFIG_DIR
from gan_lightning.errors import ConfigError, first_line, is_int, is_number, require

# Config groups that become top-level keys of the composed config.
CONFIG_GROUPS = {"data", "model", "trainer", "execution", "callbacks", "logger"}


def check_config(cfg: DictConfig, data_name: str) -> None:
    """Static checks of the composed config: names resolve, keys fit their objects, paths work."""
    check_top_level_keys(cfg)
    check_targets(cfg)
    made_for = cfg.get("experiment_data")  # one data option, or the list of those the preset fits
    made_for = [made_for] if isinstance(made_for, str) else list(made_for or [])
    if made_for and HydraConfig.initialized() and data_name not in made_for:
        raise ConfigError(f"data={data_name}: the experiment preset {cfg.get('name')} is made for "
                          + " or ".join(f"data={name}" for name in made_for)
                          + " (pick a model for this data with model=..., without the preset)")
    check_data_settings(cfg, data_name)
    check_trainer_settings(cfg)
    check_writable(Path(cfg.paths.output_dir))
    for key, folder in _output_folders(cfg):  # not made now: a refused run leaves no empty folders behind
        why = why_not_creatable(Path(folder))
        if why is not None:
            raise ConfigError(f"{key}={folder}: cannot write there ({why})")


def check_resume(cfg: DictConfig, model) -> None:
    """A checkpoint to resume (``ckpt_path``) is a readable, safe checkpoint of the same config (unless
    ``allow_config_mismatch``) whose every tensor fits the GAN the config builds and is finite."""
    path = cfg.get("ckpt_path")
    if path is None:
        return
    why = what_is_there(path)
    if why is not None:
        raise ConfigError(f"ckpt_path={path}: {why}")
    checkpoint = read_checkpoint(path, "ckpt_path")  # also with allow_config_mismatch: never unsafe
    if not cfg.get("allow_config_mismatch"):
        check_resume_matches(checkpoint, path, cfg)
    check_fits_model(checkpoint, model, path, "ckpt_path", resuming=True)
    check_something_left_to_train(checkpoint, path, cfg)


def check_something_left_to_train(checkpoint: dict, path, cfg: DictConfig) -> None:
    """Resuming a run that already reached max_epochs or max_steps would end at once, as if it had trained."""
    try:  # checkpoints are written at epoch ends: the epochs it processed are the epochs it completed
        epochs = int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError, ValueError):
        epochs = None
    steps = checkpoint.get("global_step")
    max_epochs, max_steps = OmegaConf.select(cfg, "trainer.max_epochs"), OmegaConf.select(cfg, "trainer.max_steps")
    if epochs is not None and max_epochs not in (None, -1) and epochs >= max_epochs:
        raise ConfigError(f"ckpt_path={path}: its run already trained {epochs} epoch(s), trainer.max_epochs="
                          f"{max_epochs}: nothing left to train; resume with trainer.max_epochs > {epochs}")
    if is_int(steps) and max_steps not in (None, -1) and steps >= max_steps:
        raise ConfigError(f"ckpt_path={path}: its run already made {steps} optimizer steps, trainer.max_steps="
                          f"{max_steps}: nothing left to train; resume with trainer.max_steps > {steps}")


def check_targets(cfg: DictConfig) -> None:
    """Every ``_target_`` names an importable class or function (a typo would otherwise surface deep inside
    Hydra's instantiate)."""
    for key, target in iter_targets(OmegaConf.to_container(cfg, resolve=False)):
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


def check_trainer_settings(cfg: DictConfig) -> None:
    """The loop lengths, which Lightning's Trainer accepts unchecked and fails on only once training runs, and
    Trainer settings that do nothing, or fail late, with a GAN that steps its own optimizers."""
    for key, minimum in (("max_epochs", -1), ("max_steps", -1), ("log_every_n_steps", 0)):
        value = OmegaConf.select(cfg, f"trainer.{key}")
        require(value is None or (is_int(value) and value >= minimum), f"trainer.{key}", value,
                f"must be an integer >= {minimum}")
    for key in ("max_epochs", "max_steps"):
        require(OmegaConf.select(cfg, f"trainer.{key}") != 0, f"trainer.{key}", 0, "nothing would be trained")
    require(OmegaConf.select(cfg, "trainer.log_every_n_steps") != 0 or not cfg.get("logger"),
            "trainer.log_every_n_steps", 0, "no training curve would be written; use >= 1 (or logger=null to "
            "train without a logger)")
    limit = OmegaConf.select(cfg, "trainer.limit_train_batches")
    require(limit is None or (is_int(limit) and limit >= 1) or (is_number(limit) and 0 < limit <= 1),
            "trainer.limit_train_batches", limit, "an integer >= 1 (iterations per epoch) or a fraction in (0, 1]")
    # The GAN steps its optimizers itself (manual optimization), where Lightning neither clips nor accumulates.
    clip = OmegaConf.select(cfg, "trainer.gradient_clip_val")
    require(clip in (None, 0), "trainer.gradient_clip_val", clip,
            f"the GAN clips its own gradients: use model.grad_clip_norm={clip}")
    accumulate = OmegaConf.select(cfg, "trainer.accumulate_grad_batches")
    require(accumulate in (None, 1), "trainer.accumulate_grad_batches", accumulate,
            "the GAN steps G and D itself every iteration; a larger data.batch_size is the way to more samples "
            "per update")
    rate = cfg.get("progress_bar_refresh_rate")
    require(is_int(rate) and rate >= 1, "progress_bar_refresh_rate", rate, "must be an integer >= 1")
    for key in ("allow_config_mismatch", "overwrite"):
        require(isinstance(cfg.get(key), bool), key, cfg.get(key), "must be true or false")


def check_optimizers(cfg: DictConfig, model) -> None:
    """Build G's and D's optimizers once now: torch checks their settings (betas, eps, ...) only when they are
    built, which Lightning does after training has started."""
    for key, factory, net, lr in model.optimizer_recipes():
        try:
            factory(net.parameters(), lr=lr)
        except Exception as err:
            node = OmegaConf.to_container(OmegaConf.select(cfg, key), resolve=True)
            settings = ", ".join(f"{k}={v}" for k, v in node.items() if not k.startswith("_"))
            raise ConfigError(f"{key} ({node.get('_target_')}{', ' + settings if settings else ''}): "
                              f"{first_line(err)}") from err


def check_top_level_keys(cfg: DictConfig) -> None:
    """A key that train.yaml does not declare (``+foo=1``, a typo'd ``+seeed=3``) would be silently ignored."""
    declared = set(OmegaConf.load(Path(CONFIG_DIR) / "train.yaml")) - {"defaults", "hydra"}
    for key in cfg:
        if key not in declared | CONFIG_GROUPS:
            raise ConfigError(f"{key}={cfg.get(key)}: not a setting (top-level settings: "
                              f"{', '.join(sorted(declared | CONFIG_GROUPS))})")


def _output_folders(cfg: DictConfig):
    """(key, folder) of every callback's ``dirpath`` and the logger's ``save_dir``."""
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is not None and node.get("dirpath"):
            yield f"callbacks.{name}.dirpath", node.dirpath
    if cfg.get("logger") and cfg.logger.get("save_dir"):
        yield "logger.save_dir", cfg.logger.save_dir


def why_not_creatable(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written, judged from its nearest existing ancestor (nothing is made)."""
    path = folder.absolute()
    too_long = [part for part in path.parts if len(part.encode()) > 255]
    if too_long:  # the filesystem's limit on one name (os.stat would raise "File name too long")
        return f"a folder name of {len(too_long[0].encode())} bytes; names stop at 255"
    try:
        while not path.exists():
            path = path.parent
    except OSError as err:
        return err.strerror or str(err)
    if not path.is_dir():
        return f"{path} is a file"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


def check_writable(directory: Path, key: str = "paths.output_dir") -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={directory}: cannot write there ({err.strerror or err})") from err


def check_model_fits_data(model, sample_shape, batch_size: int, model_name: str, data_name: str) -> None:
    """G must produce samples of the data's shape and D must accept a batch of them: a dry run in eval mode."""
    try:
        with torch.no_grad():
            # Own RNG: checking must not shift the random stream that training then draws from.
            rng = torch.Generator().manual_seed(0)
            z, labels = model.sample_latent(batch_size, generator=rng), model.sample_labels(batch_size, generator=rng)
            fake = model.run_generator(z, labels, model.generator.eval())
            if tuple(fake.shape[1:]) != tuple(sample_shape):
                raise ConfigError(f"model={model_name} makes samples of shape {list(fake.shape[1:])} but "
                                  f"data={data_name} has samples of shape {list(sample_shape)}")
            model.discriminator.eval()
            model.run_discriminator(torch.zeros(batch_size, *sample_shape), labels)
        batch_norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
        norms = [m for m in model.modules() if isinstance(m, batch_norms)]
        if norms and batch_size < 2:
            raise ConfigError(f"data.batch_size={batch_size}: model={model_name} has BatchNorm layers, which need "
                              "at least 2 samples per batch in training")
        # A packed D (PacGAN) judges batch_size / pack inputs at a time: its BatchNorm layers see that many.
        pack = max((m.pack for m in model.discriminator.modules() if isinstance(getattr(m, "pack", None), int)),
                   default=1)
        if batch_size // pack < 2 and any(isinstance(m, batch_norms) for m in model.discriminator.modules()):
            raise ConfigError(f"data.batch_size={batch_size}: model={model_name}'s discriminator has BatchNorm "
                              f"layers and judges packs of model.discriminator.pack={pack} samples, so a batch "
                              f"gives it {batch_size // pack} input(s); BatchNorm needs at least 2 in training")
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(
            f"model={model_name} does not fit data={data_name} (samples {list(sample_shape)}): {err}"
        ) from err
    finally:
        model.train()


def check_precision(model, precision) -> None:
    """fp16 loss scaling does not scale an input gradient: a regulariser that takes one can overflow there."""
    if str(precision) not in ("16-mixed", "16", "16-true"):
        return
    for name, reg in getattr(model.objective, "regularisers", {}).items():
        if not reg.fp16_safe:
            raise ConfigError(f"model.objective.regularisers.{name} with trainer.precision={precision}: its input "
                              "gradient is not loss-scaled and can overflow in fp16; use bf16-mixed or 32-true")


def check_labels(model, datamodule, data_name: str) -> None:
    """A conditional GAN needs data whose batches carry as many classes as it has (``num_classes`` of the
    DataModule: 10 for MNIST)."""
    wanted, has = getattr(model.hparams, "num_classes", 0), getattr(datamodule, "num_classes", 0)
    if wanted and wanted != has:
        raise ConfigError(f"model.num_classes={wanted}: a conditional GAN needs data with {wanted} classes; "
                          f"data={data_name} has " + (f"{has}" if has else "no labels"))


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _strategy_settings(strategy: Any) -> dict:
    """The DDP settings a strategy name (Lightning's registry) or a strategy config node asks for."""
    if isinstance(strategy, str):
        return dict(StrategyRegistry[strategy]["init_params"]) if strategy in StrategyRegistry else {}
    return dict(strategy) if isinstance(strategy, DictConfig | dict) else {}


def check_trainer(trainer: L.Trainer, strategy: Any) -> None:
    """The built Trainer against this GAN and this launch: several processes need DDP that expects unused
    parameters (each update leaves the other net without gradients), and a sweep cannot re-launch its script."""
    init = _strategy_settings(strategy)
    if trainer.world_size > 1 and isinstance(trainer.strategy, DDPStrategy) and not init.get("find_unused_parameters"):
        raise ConfigError(
            f"trainer.strategy={strategy if isinstance(strategy, str) else 'DDPStrategy'} with {trainer.world_size} "
            "processes: each G or D update leaves the other net's parameters unused, which plain DDP stops on; use "
            "trainer=ddp (GPUs) or trainer=ddp_cpu, whose strategy is ddp_find_unused_parameters_true")
    # DDP's default launcher re-runs sys.argv for every extra rank: inside a Hydra multirun each rank would start
    # the whole sweep again. (ddp_spawn and ddp_fork start their ranks inside this process and are fine.)
    if not in_multirun() or trainer.strategy.launcher is None or trainer.world_size < 2:
        return
    if init.get("start_method", "popen") != "popen":
        return
    raise ConfigError(
        "Hydra multirun (-m) cannot use a DDP strategy that re-launches the script (trainer=ddp/ddp_cpu with "
        f"{trainer.world_size} processes): each rank would re-run the whole sweep. Sweep with one device per job "
        "(trainer.devices=1, several jobs at once with hydra/launcher=parallel or slurm), use "
        "trainer.strategy=ddp_spawn_find_unused_parameters_true, or run each DDP job without -m."
    )


def prepare_data_early(datamodule) -> None:
    """Find (or download) and decode the data now, so missing or corrupt files stop the run before training."""
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        datamodule.prepare_data()
    datamodule.setup("fit")
    # The image metrics read the held-out split at their first measurement, after training: check it now too.
    if hasattr(datamodule, "read_split") and getattr(datamodule, "split", "train") != "test":
        datamodule.read_split("test")


def estimate_training_bytes(cfg: DictConfig) -> int | None:
    """Rough memory of one training iteration, from G and D built on the meta device (nothing allocated, no random
    numbers drawn): weights with gradients and two optimizer moments, the activations of G and D on one batch for
    the D and the G update, and the real batch. None when the nets cannot be built (the real build says why)."""
    try:
        with torch.device("meta"):
            nets = [instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)]
            activations: list[int] = []

            def count(module, inputs, output) -> None:
                if torch.is_tensor(output):
                    activations.append(output.numel() * output.element_size())

            hooks = [m.register_forward_hook(count) for net in nets for m in net.modules() if not any(m.children())]
            nets[1](nets[0](torch.empty(cfg.data.batch_size, cfg.model.latent_dim)))
            for hook in hooks:
                hook.remove()
    except Exception:
        return None
    weights = sum(p.numel() * p.element_size() for net in nets for p in net.parameters())
    real = cfg.data.batch_size * cfg.model.d_steps * math.prod(cfg.data.sample_shape) * 4
    return 4 * weights + 2 * sum(activations) + real


def host_memory_bytes() -> int:
    """The host's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(cfg: DictConfig, model_name: str, data_name: str) -> None:
    """Refuse sizes that cannot fit before anything is allocated (a huge batch or latent size would otherwise
    fill the machine's memory and be killed)."""
    needed = estimate_training_bytes(cfg)
    if needed is None:
        return
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator"))
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu and torch.cuda.is_available():
        available, where = torch.cuda.get_device_properties(0).total_memory, "the GPU has"
    else:
        available, where = host_memory_bytes(), "the host has"
    if needed > 0.8 * available:
        gib = 2**30
        raise ConfigError(
            f"data.batch_size={cfg.data.batch_size}, model.latent_dim={cfg.model.latent_dim}: model={model_name} on "
            f"data={data_name} needs about {needed / gib:.1f} GiB per iteration (weights, gradients, optimizer "
            f"state, one batch's activations) but {where} {available / gib:.1f} GiB; use a smaller batch or model")
