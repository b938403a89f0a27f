"""The documentation cannot drift from the configs: docs/configuration.md is generated from conf/ by
docs/gen_config_reference.py, and the committed page must be what the script writes now."""
from __future__ import annotations

import importlib.util
import sys

from tests.conftest import REPO


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", REPO / "docs" / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_configuration_page_is_generated_from_the_current_configs():
    generator = load_generator()
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == generator.render(), (
        "docs/configuration.md is out of date with conf/: run python docs/gen_config_reference.py")


def test_every_setting_of_the_shared_config_files_is_on_the_page():
    generator = load_generator()
    page = generator.render()
    for path, prefix in (("train.yaml", ""), ("model/_base.yaml", "model."), ("execution/default.yaml", "execution."),
                         ("trainer/default.yaml", "trainer."), ("callbacks/default.yaml", "callbacks."),
                         ("metrics/image.yaml", "callbacks.image_metrics.")):
        config = generator.read_config(REPO / "conf" / path)
        # (hydra.callbacks.* are the project's Hydra hooks, listed by name rather than by their _target_)
        leaves = [s for s in config.settings if not s.is_mapping and not s.path.startswith("hydra.callbacks.")]
        assert leaves, path
        for setting in leaves:
            assert f"`{prefix}{setting.path}`" in page, f"{path}: {setting.path} is missing from the page"


def test_the_page_keeps_to_120_characters_a_line():
    page = (REPO / "docs" / "configuration.md").read_text()
    assert max(len(line) for line in page.splitlines()) <= 120
