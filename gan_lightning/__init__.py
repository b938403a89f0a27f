"""Classic GANs on PyTorch Lightning + Hydra: conf -> data -> nets -> GAN step -> callbacks -> outputs."""

import hashlib
import os

from omegaconf import OmegaConf

# Set by a sweep when it starts (hydra_callbacks.SayWhereTheSweepWent) and read in its jobs, which launchers start
# with the sweep's environment.
SWEEP_NAME_VARIABLE = "GAN_LIGHTNING_SWEEP_NAME"
SWEPT_KEYS_VARIABLE = "GAN_LIGHTNING_SWEPT_KEYS"


def _default_run_name(*, _root_) -> str:
    """``<data>-<model>`` from Hydra's group choices: in the sweep's config they are under ``hydra.runtime``; in a
    job's config (which has no ``hydra`` node) HydraConfig holds them. Inside a sweep every job takes the sweep's
    name (recorded when it starts), so a sweep over ``data=`` or ``model=`` stays in one folder."""
    if os.environ.get(SWEEP_NAME_VARIABLE):
        return os.environ[SWEEP_NAME_VARIABLE]
    if "hydra" in _root_:
        choices = _root_.hydra.runtime.choices
    else:
        from hydra.core.hydra_config import HydraConfig

        choices = HydraConfig.get().runtime.choices
    return f"{choices.get('data')}-{choices.get('model')}"


OmegaConf.register_new_resolver("default_run_name", _default_run_name, replace=True)


def _sweep_job_dir(*, _root_) -> str:
    """A sweep job's folder: its number and the values of the swept settings, e.g. ``1_model.g_lr@0.0002``, so that
    folders and TensorBoard runs say what they ran. ``key@value`` joined by ``+``, because ``=`` and ``,`` in a path
    would break it as a ``ckpt_path=`` override. Swept settings are the sweep's sweep overrides (``a=1,2``,
    ``range(...)``) and the sweeper's ``params`` (Optuna), recorded by the sweep in an environment variable that
    launchers pass to their workers (the command line is not theirs)."""
    hydra_node = _root_.hydra
    swept = set((hydra_node.get("sweeper") or {}).get("params") or {})
    swept |= set(filter(None, os.environ.get(SWEPT_KEYS_VARIABLE, "").split(",")))
    values = [o.replace("=", "@", 1) for o in hydra_node.overrides.task if o.split("=", 1)[0].lstrip("+~") in swept]
    name = str(hydra_node.job.num) + ("_" + "+".join(values) if values else "")
    name = name.replace("/", "_").replace(",", "+").replace("=", "@")
    if len(name) > 120:  # file names stop at 255 bytes: keep the start, make the rest unique
        name = f"{name[:100]}~{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


# The synthetic streams train nets of a few thousand parameters, where a GPU only adds kernel-launch latency to
# every step: on an H100 the default 1-D run took 4 min, against 1 min 16 s on 2 CPU cores (issue 13). Replaying the
# whole iteration as a CUDA graph removes most of it: on an H200 gaussian_moments then ran at 129 it/s (10.5 it/s
# on 2 CPU cores).
SMALL_NET_DATA = ("gan_lightning.data.GaussianDataModule", "gan_lightning.data.MixtureDataModule")


def _default_accelerator(data_target: str, cuda_graph: bool = False) -> str:
    """trainer=default's accelerator: the CPU for the synthetic 1-D and 2-D data unless the iteration is to be
    replayed as a CUDA graph, else Lightning's "auto" (a GPU when there is one)."""
    return "cpu" if data_target in SMALL_NET_DATA and not cuda_graph else "auto"


OmegaConf.register_new_resolver("default_accelerator", _default_accelerator, replace=True)


def swept_keys(task_overrides) -> list[str]:
    """The settings a sweep's overrides vary (``a=1,2``, ``range(...)``, ``choice(...)``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    except Exception:  # Hydra itself reports an unparsable command line
        return []
    return sorted({o.key_or_group for o in parsed if o.is_sweep_override()})


OmegaConf.register_new_resolver("sweep_job_dir", _sweep_job_dir, replace=True)
