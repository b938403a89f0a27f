"""Classic GANs on PyTorch Lightning + Hydra: conf -> data -> nets -> GAN step -> callbacks -> outputs."""

from omegaconf import OmegaConf


def _default_run_name(*, _root_) -> str:
    """``<data>-<model>`` from Hydra's group choices: in the sweep's config they are under ``hydra.runtime``; in a
    job's config (which has no ``hydra`` node) HydraConfig holds them."""
    if "hydra" in _root_:
        choices = _root_.hydra.runtime.choices
    else:
        from hydra.core.hydra_config import HydraConfig

        choices = HydraConfig.get().runtime.choices
    return f"{choices.get('data')}-{choices.get('model')}"


OmegaConf.register_new_resolver("default_run_name", _default_run_name, replace=True)


def _sweep_job_dir(*, _root_) -> str:
    """A sweep job's folder: its number and the values of the swept settings, e.g. ``1_model.g_lr=0.0002``, so that
    folders and TensorBoard runs say what they ran. Swept settings are the command line's sweep overrides
    (``a=1,2``, ``range(...)``, ...) and the sweeper's ``params`` (Optuna)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra_node = _root_.hydra
    swept = set((hydra_node.get("sweeper") or {}).get("params") or {})
    try:
        overrides = OverridesParser.create().parse_overrides(list(hydra_node.overrides.hydra or [])
                                                             + _command_line_overrides())
        swept |= {o.key_or_group for o in overrides if o.is_sweep_override()}
    except Exception:  # an unparsable command line leaves the job number alone
        pass
    values = [o for o in hydra_node.overrides.task if o.split("=", 1)[0].lstrip("+~") in swept]
    name = "_".join([str(hydra_node.job.num), ",".join(values)]) if values else str(hydra_node.job.num)
    return name.replace("/", "_")


def _command_line_overrides() -> list[str]:
    import sys

    return [arg for arg in sys.argv[1:] if "=" in arg and not arg.startswith("-")]


OmegaConf.register_new_resolver("sweep_job_dir", _sweep_job_dir, replace=True)
