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


# Punctuation a shell reads as itself (and Hydra as a plain value), so a job folder pastes into a command unquoted.
_PLAIN_PUNCTUATION = frozenset("._-+@%:~")


def _unquoted(value: str) -> str:
    """A Hydra override's value without the quotes that only delimit it: ``"naïve ü"`` -> ``naïve ü``."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def _shell_plain(text: str) -> str:
    """Letters (of any alphabet: ``naïve`` stays readable), digits and ``._-+@%:~`` kept; every other character
    (space, quotes, ``$ * ? ; & | < > ( ) [ ] { } ! # \\``, control characters) becomes ``_``."""
    return "".join(ch if ch.isalnum() or ch in _PLAIN_PUNCTUATION else "_" for ch in text)


def _swept_values(task_overrides, swept: set[str]) -> list[str]:
    """``key@value`` of each override that sets a swept setting, the value without its quotes."""
    pairs = (o.split("=", 1) for o in task_overrides if "=" in o)
    return [f"{key}@{_unquoted(value)}" for key, value in pairs if key.lstrip("+~") in swept]


def _sweep_job_dir(*, _root_) -> str:
    """A sweep job's folder: its number and the values of the swept settings, e.g. ``1_model.g_lr@0.0002``, so that
    folders and TensorBoard runs say what they ran. ``key@value`` joined by ``+``, because ``=`` and ``,`` in a path
    would break it as a ``ckpt_path=`` override; a value's quotes are dropped and characters a shell would need
    quoted become ``_`` (the job number keeps names that then look alike apart). Swept settings are the sweep's
    sweep overrides (``a=1,2``, ``range(...)``) and the sweeper's ``params`` (Optuna), recorded by the sweep in an
    environment variable that launchers pass to their workers (the command line is not theirs)."""
    hydra_node = _root_.hydra
    swept = set((hydra_node.get("sweeper") or {}).get("params") or {})
    swept |= set(filter(None, os.environ.get(SWEPT_KEYS_VARIABLE, "").split(",")))
    values = _swept_values(hydra_node.overrides.task, swept)
    name = str(hydra_node.job.num) + ("_" + "+".join(values) if values else "")
    name = _shell_plain(name.replace(",", "+").replace("=", "@"))
    if len(name.encode()) > 120:  # file names stop at 255 bytes (a letter like ü takes 2): keep the start, hashed rest
        name = f"{name.encode()[:100].decode(errors='ignore')}~{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def swept_keys(task_overrides) -> list[str]:
    """The settings a sweep's overrides vary (``a=1,2``, ``range(...)``, ``choice(...)``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    except Exception:  # Hydra itself reports an unparsable command line
        return []
    return sorted({o.key_or_group for o in parsed if o.is_sweep_override()})


OmegaConf.register_new_resolver("sweep_job_dir", _sweep_job_dir, replace=True)
