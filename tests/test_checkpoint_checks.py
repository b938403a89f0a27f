"""A checkpoint is checked when it is read, by ``train ckpt_path=`` and by ``sample``: every weight present, of the
shape the config's GAN has, and finite; to resume, the optimizers' state too. Each problem is one line naming the
first thing wrong, before anything trains; nothing a file says about paths is repeated as advice."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.sample import main as sample
from gan_lightning.train import train
from tests.conftest import REPO, compose_cfg, run_cli

RUN = ["data.batches_per_epoch=2", "data.batch_size=50"]


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    train(compose_cfg(folder / "run", RUN))
    return folder / "run" / "checkpoints" / "last.ckpt"


def _nan_weight(c):
    name = next(k for k, v in c["state_dict"].items() if v.is_floating_point())
    c["state_dict"][name] = torch.full_like(c["state_dict"][name], float("nan"))


def _first_moment(c, k: int) -> tuple[dict, str]:
    """An optimizer's per-parameter state (Adam's exp_avg, SGD's momentum_buffer, ...) and its first tensor's key."""
    moments = next(iter(c["optimizer_states"][k]["state"].values()))
    return moments, next(key for key, value in moments.items() if value.dim() > 0)


def _inf_optimizer_state(c):
    moments, key = _first_moment(c, 1)
    moments[key].fill_(float("inf"))


def _wrong_shape(c):
    name = next(k for k, v in c["state_dict"].items() if v.dim() == 2 and v.shape[1] > 1)
    c["state_dict"][name] = c["state_dict"][name][:, :1].clone()


def _short_fixed_z(c):
    c["state_dict"]["fixed_z"] = c["state_dict"]["fixed_z"][:3].clone()


def _short_moment(c):
    moments, key = _first_moment(c, 0)
    moments[key] = moments[key].flatten()[:1].clone()


# (how the good checkpoint is damaged, what train ckpt_path= says, what sample says (None: it loads fine)).
DAMAGED = [
    ("nan_weight", _nan_weight, r"state_dict\.\S+ holds non-finite values \(NaN or inf\): refused", "same"),
    ("inf_optimizer_state", _inf_optimizer_state,
     r"optimizer_states\[1\]\.state\[\d+\]\.\w+ \(D\) holds non-finite values", None),
    ("wrong_shape", _wrong_shape, r"state_dict\.\S+ has shape \[\d+, 1\] but the model's is \[\d+, \d+\]", "same"),
    ("short_fixed_z", _short_fixed_z, r"state_dict\.fixed_z has shape \[3, \d+\] but the model's is \[\d+, \d+\]",
     "same"),
    ("no_state_dict", lambda c: c.pop("state_dict"), r"has no state_dict \(the weights\)", "same"),
    ("no_optimizer_states", lambda c: c.pop("optimizer_states"),
     r"cannot resume: it holds none optimizer states, the GAN has 2 \(G's and D's\)", None),
    ("short_moment", _short_moment, r"optimizer_states\[0\]\.state\[\d+\]\.\w+ \(G\) has shape \[1\]", None),
    ("bad_rng", lambda c: c.update(gan_rng={"cpu": torch.zeros(3)}), "gan_rng is not a saved random-number", None),
    ("text_iteration", lambda c: c.update(gan_iteration="ten"), "gan_iteration='ten' is not an iteration count",
     None),
]


@pytest.mark.parametrize(("name", "damage", "train_says", "sample_says"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_a_damaged_checkpoint_is_refused_in_one_line_before_training(good_checkpoint, tmp_path, name, damage,
                                                                     train_says, sample_says):
    checkpoint = torch.load(good_checkpoint, weights_only=True)
    damage(checkpoint)
    path = tmp_path / f"{name}.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(ConfigError, match=f"ckpt_path={path}: " + train_says) as err:
        train(compose_cfg(tmp_path / "resume", [*RUN, "trainer.max_epochs=2", f"ckpt_path={path}"]))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "resume" / "checkpoints").exists()
    if sample_says is None:  # the weights are fine: sampling needs nothing else
        assert sample([f"ckpt={path}", f"out_dir={tmp_path / 'samples'}"])
    else:
        with pytest.raises(ConfigError, match=f"ckpt={path}: " + train_says):
            sample([f"ckpt={path}", f"out_dir={tmp_path / 'samples'}"])


def test_another_presets_checkpoint_with_allow_config_mismatch_names_the_first_foreign_weight(tmp_path):
    train(compose_cfg(tmp_path / "ring", ["data=ring", *RUN]))
    ring = tmp_path / "ring" / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=rf"ckpt_path={ring}: its weights are not this model's: it (lacks|has) "):
        train(compose_cfg(tmp_path / "resume", [*RUN, "trainer.max_epochs=2", f"ckpt_path={ring}",
                                                "allow_config_mismatch=true"]))


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: p.mkdir(), "a folder, not a checkpoint file"),
    (lambda p: os.symlink("/dev/zero", p), "a character device, not a checkpoint file (the symbolic link leads to "
                                           "/dev/zero)"),
    (lambda p: os.symlink(p.parent / "gone.ckpt", p), "a broken symbolic link"),
])
def test_a_checkpoint_path_that_is_no_file_says_what_it_is(tmp_path, make, says):
    path = tmp_path / "last.ckpt"
    make(path)
    with pytest.raises(ConfigError, match=f"ckpt_path={path}: " + says.replace("(", r"\(").replace(")", r"\)")):
        train(compose_cfg(tmp_path / "resume", [*RUN, f"ckpt_path={path}"]))
    with pytest.raises(ConfigError, match=f"ckpt={path}: " + says.replace("(", r"\(").replace(")", r"\)")):
        sample([f"ckpt={path}"])


@pytest.mark.slow
def test_the_commands_refuse_a_nan_checkpoint_with_one_line(good_checkpoint, tmp_path):
    checkpoint = torch.load(good_checkpoint, weights_only=True)
    _nan_weight(checkpoint)
    path = tmp_path / "nan.ckpt"
    torch.save(checkpoint, path)
    resumed = run_cli([*RUN, "trainer.max_epochs=2", f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}"],
                      tmp_path)
    assert resumed.returncode == 2
    assert len(resumed.stderr.strip().splitlines()) == 1 and "holds non-finite values" in resumed.stderr
    sampled = subprocess.run([sys.executable, "-m", "gan_lightning.sample", f"ckpt={path}"], cwd=tmp_path,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert sampled.returncode == 2 and sampled.stderr.count("\n") == 1 and "holds non-finite values" in sampled.stderr
    assert not (tmp_path / "samples").exists()


def test_resuming_a_run_that_already_finished_says_nothing_is_left_to_train(good_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match=rf"ckpt_path={good_checkpoint}: its run already trained 1 epoch\(s\), "
                                          r"trainer.max_epochs=1: nothing left to train; resume with "
                                          r"trainer.max_epochs > 1"):
        train(compose_cfg(tmp_path / "resume", [*RUN, "trainer.max_epochs=1", f"ckpt_path={good_checkpoint}"]))
    steps = torch.load(good_checkpoint, weights_only=True)["global_step"]
    with pytest.raises(ConfigError, match=rf"already made {steps} optimizer steps, trainer.max_steps={steps}"):
        train(compose_cfg(tmp_path / "resume", [*RUN, "trainer.max_epochs=5", f"trainer.max_steps={steps}",
                                                f"ckpt_path={good_checkpoint}"]))
