"""The config ``python -m gan_lightning.train <overrides>`` would run, composed in-process (benchmark, tests)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def compose_config(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> DictConfig:
    """Compose conf/train.yaml with ``overrides``, writing into ``output_dir`` when given.

    As in a real run, Hydra's runtime information (the chosen group options) is available to ``train()`` and the
    job's config carries no ``hydra`` node.
    """
    overrides = list(overrides)
    if output_dir is not None:
        overrides.append(f"paths.output_dir={output_dir}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
