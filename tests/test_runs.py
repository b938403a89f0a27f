"""Whole runs as a user starts them: resume from last.ckpt, and a Hydra multirun sweep from the command line."""
from __future__ import annotations

import subprocess

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_lightning import SWEPT_KEYS_VARIABLE, _sweep_job_dir
from gan_lightning.callbacks import RunProgressBar
from gan_lightning.compose import compose_config
from gan_lightning.train import train
from tests.conftest import compose_cfg, event_accumulator, run_cli, sweep_jobs


def test_resume_from_last_ckpt_continues_counters_and_keeps_fixed_z(tmp_path):
    common = ["data.batches_per_epoch=3", "model.d_steps=2", "model.g_steps=1", "data.batch_size=50",
              "callbacks.samples.every_n_iterations=2"]
    train(compose_cfg(tmp_path / "first", [*common, "trainer.max_epochs=2"]))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    assert saved["gan_iteration"] == 6 and saved["global_step"] == 6 * 3

    # The grid's latents come from the checkpoint, not from a fresh draw: a checkpoint whose fixed z differs from
    # what a new GAN draws (every GAN draws it with the same seed) keeps its own. A different seed too (it changes
    # the data's config, so the resume has to be allowed explicitly).
    fresh = instantiate(compose_cfg(tmp_path / "fresh", common).model).fixed_z
    assert torch.equal(saved["state_dict"]["fixed_z"], fresh)
    saved["state_dict"]["fixed_z"] = torch.randn(fresh.shape, generator=torch.Generator().manual_seed(7))
    other_z = tmp_path / "other_z.ckpt"
    torch.save(saved, other_z)
    resumed_dir = tmp_path / "resumed"
    train(compose_cfg(resumed_dir, [*common, "trainer.max_epochs=3", f"ckpt_path={other_z}", "seed=7",
                                    "allow_config_mismatch=true"]))
    after = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert after["gan_iteration"] == 9 and after["global_step"] == 9 * 3
    assert after["epoch"] == saved["epoch"] + 1
    assert torch.equal(after["state_dict"]["fixed_z"], saved["state_dict"]["fixed_z"])
    assert not torch.equal(after["state_dict"]["fixed_z"], fresh)

    # The resumed run logs iterations 7 to 9: its x-axis (the iteration) continues the first run's. (The final
    # values end the curve at the last iteration, for TensorBoard's HPARAMS view: a second point at 9.)
    steps = [e.step for e in event_accumulator(resumed_dir).Scalars("train/d_loss")]
    assert steps == [7, 8, 9, 9]
    assert [e.step for e in event_accumulator(resumed_dir).Scalars("samples/mean")] == [8, 9]


@pytest.mark.slow
def test_multirun_sweep_over_learning_rates_makes_one_folder_per_job(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_cli(["-m", "model.g_lr=1e-4,3e-4", "trainer=cpu", "trainer.max_epochs=1",
                      "trainer.enable_progress_bar=false", "data.batches_per_epoch=2", f"hydra.sweep.dir={sweep_dir}"],
                     tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Sweep folder: {sweep_dir}" in result.stdout
    assert f"python -m gan_lightning.report {sweep_dir}" in result.stdout
    # A job's checkpoint path works as an override: no "=" or "," in the folder names.
    last = sweep_jobs(sweep_dir)["1"] / "checkpoints" / "last.ckpt"
    resumed = run_cli([f"ckpt_path={last}", "trainer=cpu", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                       "data.batches_per_epoch=2", "model.g_lr=3e-4", f"hydra.run.dir={tmp_path / 'resumed'}"],
                      tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    jobs = list(sweep_jobs(sweep_dir).values())
    assert [p.name for p in jobs] == ["0_model.g_lr@0.0001", "1_model.g_lr@0.0003"]  # the swept value, not the rest
    for job, lr in zip(jobs, [1e-4, 3e-4]):
        assert OmegaConf.load(job / ".hydra" / "config.yaml").model.g_lr == lr
        assert list(job.rglob("events.out.tfevents.*")), f"no event file in {job}"
        assert (job / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_a_run_says_where_it_went_and_its_log_explains_it(tmp_path):
    """The last line names the run folder and the TensorBoard command; train.log holds Lightning's and the
    project's messages; known noise (Lightning's litlogger tip, torch's LeafSpec deprecation, the IterableDataset
    length warning, the limit_train_batches=1.0 notice) is not printed."""
    run_dir = tmp_path / "run"
    result = run_cli(["data.batches_per_epoch=3", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                      f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == (
        f"Run folder: {run_dir}  (TensorBoard: tensorboard --logdir {run_dir})")
    log = (run_dir / "train.log").read_text()
    for message in ("Seed set to 42", "Execution: direct updates", "`Trainer.fit` stopped", "Run folder:"):
        assert message in log, message
    for noise in ("litlogger", "LeafSpec", "`IterableDataset` has `__len__`", "limit_train_batches=1.0"):
        assert noise not in result.stdout + result.stderr + log, noise


def test_a_run_without_a_preset_is_named_by_its_data_and_model():
    assert compose_config(["data=mnist", "model=dcgan"]).name == "mnist-dcgan"
    assert compose_config([]).name == "gaussian-gaussian_moments"
    assert compose_config(["experiment=mnist_dcgan"]).name == "mnist_dcgan"


def test_one_progress_bar_counts_the_whole_run_and_continues_after_a_resume(tmp_path):
    common = ["data.batches_per_epoch=4", "data.batch_size=50", "trainer.enable_progress_bar=true"]
    bar = RunProgressBar(refresh_rate=3)
    train(compose_cfg(tmp_path / "first", [*common, "trainer.max_epochs=2"]), extra_callbacks=[bar])
    assert (bar.train_progress_bar.total, bar.train_progress_bar.n) == (8, 8)
    assert bar.train_progress_bar.desc.startswith("Epoch 2/2")

    resumed = RunProgressBar(refresh_rate=3)
    train(compose_cfg(tmp_path / "resumed", [*common, "trainer.max_epochs=3",
                                             f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"]),
          extra_callbacks=[resumed])
    assert (resumed.train_progress_bar.initial, resumed.train_progress_bar.n) == (8, 12)
    assert resumed.train_progress_bar.total == 12


@pytest.mark.slow
def test_a_sweep_over_models_keeps_one_folder_named_by_the_swept_choice(tmp_path):
    result = run_cli(["-m", "model=gaussian_raw,gaussian_fast", "trainer=cpu", "trainer.max_epochs=1",
                      "trainer.enable_progress_bar=false", "data.batches_per_epoch=2"],
                     tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    assert sorted(p.name for p in sweep_jobs(sweep).values()) == ["0_model@gaussian_raw", "1_model@gaussian_fast"]


@pytest.mark.parametrize(("override", "folder"), [
    ("model.g_lr=0.0002", "1_model.g_lr@0.0002"),
    ('+name="naïve ü"', "1_+name@naïve_ü"),  # quotes dropped, the space replaced, letters of any alphabet kept
    ("+name='$HOME; ls *.ckpt | tee (x) <y> & z?'", "1_+name@_HOME__ls__.ckpt___tee__x___y____z_"),
    ("+name=a\\ b", "1_+name@a__b"),  # Hydra's escaped space
    ("+name=" + "雪" * 110, "1_+name@" + "雪" * 30 + "~"),  # 3 bytes a letter: cut by bytes, the rest hashed
])
def test_a_sweep_job_folder_pastes_into_a_shell_unquoted(monkeypatch, override, folder):
    """The job folder is printed in ``tensorboard --logdir <folder>``: it must come out of a shell as it went in."""
    monkeypatch.setenv(SWEPT_KEYS_VARIABLE, f"{override.split('=')[0].lstrip('+')},data")
    root = OmegaConf.create({"hydra": {"overrides": {"task": ["trainer=cpu", override]}, "job": {"num": 1}}})
    name = _sweep_job_dir(_root_=root)
    assert (name.startswith(folder) if folder.endswith("~") else name == folder) and len(name.encode()) <= 120
    echoed = subprocess.run(["bash", "-c", f"printf %s {name}"], capture_output=True, text=True, check=True)
    assert echoed.stdout == name


def test_trainer_default_keeps_the_synthetic_datas_tiny_nets_on_the_cpu(tmp_path):
    """A GPU only slows the 1-D and 2-D GANs (launch latency per step): their data choose the CPU, and MNIST trains
    wherever Lightning finds a device; trainer=gpu or trainer.accelerator=gpu on the command line still take the GPU,
    with the iteration replayed as a CUDA graph (execution=cuda_graph) or not. The execution settings alone never
    move a run to another device."""
    def accelerator(*overrides):
        return compose_config(list(overrides), tmp_path).trainer.accelerator

    assert accelerator() == accelerator("data=ring") == accelerator("data=grid") == "cpu"
    assert accelerator("experiment=gaussian_fast") == "cpu"
    assert accelerator("data=mnist") == "auto"
    assert accelerator("execution=cuda_graph") == accelerator("data=ring", "execution.cuda_graph=true") == "cpu"
    assert accelerator("trainer=gpu") == accelerator("trainer.accelerator=gpu") == "gpu"
    assert accelerator("data=ring", "trainer=gpu", "execution=cuda_graph") == "gpu"
