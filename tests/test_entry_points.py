"""What a new user meets first: each command's --help, the one-line hint for a missing optional extra, and a
finished run's TensorBoard file (curves first, the final metrics in the HPARAMS view)."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys

import pytest
from tensorboard.plugins.hparams import metadata

from gan_lightning.sample import DEFAULTS
from gan_lightning.train import PLUGIN_EXTRAS, missing_extra, train
from tests.conftest import REPO, compose_cfg, event_accumulator, run_cli

TRAIN_EXAMPLES = ["python -m gan_lightning.train experiment=mnist_dcgan", "-m model.g_lr=", "ckpt_path=",
                  "trainer=gpu", "--cfg job"]
SAMPLE_SETTINGS = ["ckpt=PATH", "num_images=null", "nrow=null", "seed=0", "num_samples=0", "out_dir=null",
                   "use_ema=true", "device=cpu", "label=null"]


def _help(module: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, "--help"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_train_help_lists_groups_and_examples_not_the_config(tmp_path):
    result = _help("gan_lightning.train", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: python -m gan_lightning.train ")
    data_options = sorted(path.stem for path in (REPO / "conf" / "data").glob("*.yaml"))
    assert "data: " + ", ".join(data_options) in result.stdout  # Hydra's $APP_CONFIG_GROUPS, every option
    assert "lr_schedule: cosine, linear" in result.stdout
    assert "experiment: gaussian_diffs, " in result.stdout
    for example in TRAIN_EXAMPLES:
        assert example in result.stdout
    assert "_target_" not in result.stdout  # no config dump: --cfg job prints it
    assert not (tmp_path / "outputs").exists()


def test_sample_help_shows_every_setting_with_its_default(tmp_path):
    result = _help("gan_lightning.sample", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: python -m gan_lightning.sample ckpt=PATH")
    assert len(SAMPLE_SETTINGS) == len(DEFAULTS)
    for setting in SAMPLE_SETTINGS:
        assert f"\n  {setting} " in result.stdout
    assert "examples:\n  python -m gan_lightning.sample ckpt=" in result.stdout


def test_report_help_names_the_module_in_plain_text(tmp_path):
    result = _help("gan_lightning.report", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: python -m gan_lightning.report ")
    assert "report.py" not in result.stdout and "``" not in result.stdout
    assert "examples:\n  python -m gan_lightning.report outputs/multirun/" in result.stdout


@pytest.mark.parametrize("override", sorted(PLUGIN_EXTRAS))
def test_a_missing_plugin_names_its_extra(override, monkeypatch):
    module, extra = PLUGIN_EXTRAS[override]
    monkeypatch.setitem(sys.modules, module, None)  # Python's own way to make an import fail
    assert missing_extra(["-m", f"+{override}", "model.g_lr=1e-4,2e-4"]) == \
        f"error: {override} needs the {extra} extra: pip install 'gan_lightning[{extra}]'"


def test_the_extras_named_are_declared_and_installed_plugins_pass():
    declared = importlib.metadata.metadata("gan_lightning").get_all("Provides-Extra")
    assert {extra for _, extra in PLUGIN_EXTRAS.values()} <= set(declared)
    assert missing_extra(["data=mnist", "model.g_lr=1e-4", "hydra/launcher=basic"]) is None
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    assert missing_extra(["-m", "hydra/launcher=parallel"]) is None


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None,
                    reason="the slurm extra is installed here")
def test_slurm_launcher_without_its_extra_is_one_line_and_exit_2(tmp_path):
    result = run_cli(["-m", "hydra/launcher=slurm", "model.g_lr=1e-4,2e-4"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "error: hydra/launcher=slurm needs the slurm extra: pip install 'gan_lightning[slurm]'\n"
    assert not (tmp_path / "outputs").exists()


def test_final_metrics_end_their_curves_and_fill_the_hparams_view(tmp_path):
    """TensorBoard's HParams view shows each metric's last point in the scalar series of its name: the final values
    are written there at the last iteration, not as a separate section of one-point charts at step 0."""
    run = tmp_path / "run"
    # 6 iterations, scalars every 4: the final point comes after the last logged one.
    metrics = train(compose_cfg(run, ["data.batches_per_epoch=6", "data.batch_size=50",
                                      "trainer.log_every_n_steps=4"]))
    acc = event_accumulator(run)
    experiment = metadata.parse_experiment_plugin_data(acc.PluginTagToContent("hparams")[metadata.EXPERIMENT_TAG])
    shown = {info.name.tag for info in experiment.metric_infos}
    assert shown == set(metrics) and "train/g_loss" in shown and "metrics/w1" in shown
    scalars = acc.Tags()["scalars"]
    assert not [tag for tag in scalars if tag.startswith("final")]
    for name, value in metrics.items():
        last = acc.Scalars(name)[-1]
        assert (last.step, last.value) == (6, pytest.approx(value, rel=1e-6)), name
    assert all(event.step > 0 for tag in scalars for event in acc.Scalars(tag))
    assert acc.Scalars("train/g_loss")[0].step == 4  # the curve itself is untouched
