"""A checkpoint is data, not code: crafted files that would run code on loading, or configs that name arbitrary
callables, are refused with one line, and nothing they carry runs."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_lightning.checkpoint import AtomicCheckpointIO, load_gan
from gan_lightning.errors import ConfigError
from gan_lightning.metrics.classifier import data_key, load_or_train
from gan_lightning.sample import main as sample
from gan_lightning.train import train
from tests.conftest import REPO, compose_cfg, run_cli


class Payload:
    """Pickles as a call to exec: loading it with weights_only=False creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _evil_checkpoint(tmp_path: Path, name: str = "evil.ckpt") -> tuple[Path, Path]:
    """A real checkpoint of a tiny run with a code-running object added; returns (checkpoint, marker)."""
    train(compose_cfg(tmp_path / "run", ["data.batches_per_epoch=2", "data.batch_size=50"]))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    marker = tmp_path / "code_ran"
    checkpoint["innocent_looking"] = Payload(marker)
    path = tmp_path / name
    torch.save(checkpoint, path)
    with pytest.raises(pickle.UnpicklingError):  # the file is valid: weights_only refuses it, and only that
        torch.load(path, weights_only=True)
    return path, marker


def test_a_pickle_payload_in_a_checkpoint_never_runs(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)

    with pytest.raises(ConfigError, match=r"ckpt=.*evil.ckpt: refused: it holds pickled Python objects"):
        sample([f"ckpt={path}", f"out_dir={tmp_path / 'samples'}"])
    for extra in ([], ["allow_config_mismatch=true"]):  # the pre-flight check reads it either way
        with pytest.raises(ConfigError, match=r"ckpt_path=.*evil.ckpt: refused"):
            train(compose_cfg(tmp_path / "resume", ["data.batches_per_epoch=2", "data.batch_size=50",
                                                    "trainer.max_epochs=2", f"ckpt_path={path}", *extra]))
    with pytest.raises(ConfigError, match="refused"):  # Lightning's own load, through the project's checkpoint IO
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)
    assert not marker.exists()
    # The same file does run code with an unsafe load: the test's payload is real.
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.slow
def test_the_commands_refuse_a_pickle_payload_with_one_line(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sampled = subprocess.run([sys.executable, "-m", "gan_lightning.sample", f"ckpt={path}"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, env=env)
    trained = run_cli([f"ckpt_path={path}", "data.batches_per_epoch=2", f"hydra.run.dir={tmp_path / 'out'}"],
                      tmp_path)
    for result in (sampled, trained):
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "refused: it holds pickled Python objects" in errors[0], result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("target", ["builtins.open", "gan_lightning.data.idx.write_idx", "os.system",
                                    "torch.save", "gan_lightning.train.main"])
def test_a_stored_config_may_only_name_nets_and_optimizers(tmp_path, target):
    """A checkpoint that loads as plain data but whose stored config names a callable that writes files."""
    train(compose_cfg(tmp_path / "run", ["data.batches_per_epoch=2", "data.batch_size=50"]))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    checkpoint["gan_config"]["model"]["generator"] = {"_target_": target, "file": str(victim), "mode": "w"}
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)

    with pytest.raises(ConfigError, match=rf"refused: its stored config has model.generator._target_={target}"):
        load_gan(path)
    assert victim.read_text() == "keep me"


def test_a_stored_config_may_not_hide_a_target_in_an_interpolation(tmp_path):
    """OmegaConf's oc.decode would turn this string into a node with its own _target_ when instantiate resolves it;
    stored configs are saved resolved, so any interpolation is refused."""
    train(compose_cfg(tmp_path / "run", ["data.batches_per_epoch=2", "data.batch_size=50"]))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    marker = tmp_path / "code_ran"
    checkpoint["gan_config"]["model"]["generator"] = (
        "${oc.decode:'{_target_: pathlib.Path.touch, _args_: [" + str(marker) + "]}'}")
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(ConfigError, match="refused: its stored config has an interpolation, model.generator="):
        load_gan(path)
    assert not marker.exists()


def test_a_planted_classifier_cache_file_is_not_loaded_but_replaced(tmp_path):
    images = torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(60) % 10
    cache = tmp_path / "cache"
    cache.mkdir()
    marker = tmp_path / "code_ran"
    planted = cache / f"digits-{data_key(images)}.pt"
    torch.save({"in_channels": 1, "state_dict": Payload(marker), "info": {"held_out_accuracy": 1.0}}, planted)

    messages = []
    model, info = load_or_train(images, labels, cache_dir=cache, epochs=1, log=messages.append)
    assert not marker.exists()
    assert any("cannot be loaded safely" in m for m in messages)
    assert info["held_out_accuracy"] < 1.0 and info["train_images"] == 54  # trained anew on 90 %
    reloaded = torch.load(planted, weights_only=True)  # the replacement is plain data
    assert reloaded["info"] == info


def test_a_real_checkpoint_round_trips_as_plain_data(tmp_path):
    """Everything a run writes into a checkpoint loads with weights_only=True, so resuming and sampling work."""
    common = ["data.batches_per_epoch=2", "data.batch_size=50", "model.ema_half_life_images=1000"]
    train(compose_cfg(tmp_path / "first", common))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["gan_iteration"] == 2
    train(compose_cfg(tmp_path / "resumed", [*common, "trainer.max_epochs=2", f"ckpt_path={last}"]))
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["gan_iteration"] == 4
    assert load_gan(last).generator_ema is not None
