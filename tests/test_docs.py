"""The documentation cannot drift from the configs: docs/configuration.md is generated from conf/ by
docs/gen_config_reference.py, and the committed page must be what the script writes now."""
from __future__ import annotations

import importlib.util
import json
import sys

from tests.conftest import REPO


def load_generator(name: str = "gen_config_reference"):
    spec = importlib.util.spec_from_file_location(name, REPO / "docs" / f"{name}.py")
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


def test_every_measured_figure_block_is_rendered_from_its_results_file():
    """The docs' figures are written by docs/render_results.py from docs/results/*.json, never by hand."""
    renderer = load_generator("render_results")
    blocks = 0
    for page in sorted((REPO / "docs").glob("*.md")):
        text = page.read_text()
        blocks += len(renderer.BLOCK.findall(text))
        assert renderer.render_page(text) == text, f"{page.name}: run python docs/render_results.py"
    assert blocks >= 1


def test_a_results_table_shows_each_seed_and_the_mean_with_its_standard_error():
    renderer = load_generator("render_results")
    environment = {"date": "d", "commit": "c", "dirty": False, "python": "3", "torch": "2", "lightning": "2",
                   "cpu": "cpu", "cpu_count": 2, "gpu": None, "torch_threads": 1, "command": "python -m x",
                   "load_average_1min": 0.0}
    runs = [{"seed": s, "metrics": {"metrics/modes_covered": m, "metrics/high_quality_share": q}, "series": {},
             "wall_s": 10.0} for s, m, q in ((0, 8, 0.5), (1, 6, 0.3), (2, 8, 0.4))]
    table = renderer.quality_table({"runs": runs})
    assert "| 0 | 8 | 50.0% | 10 s |" in table and "| 1 | 6 | 30.0% | 10 s |" in table
    # a mean of counts keeps a decimal: 7.3 ± 0.7 (s.e. = 1.155 / sqrt(3)), not 7 ± 1
    assert "| mean ± s.e. (3 seeds) | 7.3 ± 0.7 | 40.0% ± 5.8% | |" in table
    assert "load average 0.0" in renderer.environment_line(environment, {"threads_per_run": 1})


def test_the_bad_input_table_is_the_tests_cases_as_the_command_line_answered_them():
    """docs/checkpoints.md's table is written by docs/gen_bad_input_table.py from tests/test_bad_input.py's cases
    through the real command line: the same cases in the same order, each refused with exit code 2 and the message
    the tests expect."""
    from tests.test_bad_input import BAD_SETTINGS, MORE_BAD_SETTINGS

    page = (REPO / "docs" / "checkpoints.md").read_text()
    block = page.split("<!-- bad-input-table -->")[1].split("<!-- /bad-input-table -->")[0]
    rows = [[cell.strip() for cell in line.split(" | ")] for line in block.splitlines() if line.startswith("| `")]
    cases = [*BAD_SETTINGS, *MORE_BAD_SETTINGS]
    assert [row[0].strip("|` ") for row in rows] == [" ".join(overrides) for overrides, _ in cases], (
        "run python docs/gen_bad_input_table.py")
    for row, (overrides, message) in zip(rows, cases):
        said = row[2].rstrip("| ").replace("\\|", "|")
        assert row[1] == "2" and said.startswith("error:") and message in said, (overrides, row)


def test_a_summary_row_is_the_mean_and_standard_error_of_a_results_file(tmp_path, monkeypatch):
    renderer = load_generator("render_results")
    (tmp_path / "results").mkdir()
    runs = [{"seed": s, "metrics": {"metrics/modes_covered": m, "metrics/high_quality_share": q}, "series": {},
             "wall_s": 10.0} for s, m, q in ((0, 8, 0.5), (1, 6, 0.3), (2, 8, 0.4))]
    environment = {"date": "2030-01-02 03:04 UTC", "cpu": "Some CPU", "gpu": None}
    record = {"runs": runs, "overrides": ["experiment=ring_gan"], "environment": environment}
    (tmp_path / "results" / "quality_x.json").write_text(json.dumps(record))
    monkeypatch.setattr(renderer, "DOCS", tmp_path)
    page = "before\n<!-- summary: quality_x -->\nstale\n<!-- /summary -->\nafter\n"
    rendered = renderer.render_page(page)
    assert ("| `experiment=ring_gan` | 7.3 ± 0.7 | 40.0% ± 5.8% | 3 | 2030-01-02, Some CPU, `quality_x.json` |"
            in rendered)
    assert rendered.startswith("before\n<!-- summary: quality_x -->\n| training overrides |")
    assert "stale" not in rendered and rendered.endswith("<!-- /summary -->\nafter\n")
