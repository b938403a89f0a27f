"""Bad input gets one clear error before any training: each names the offending key and value."""
from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from gan_lightning.checkpoint import CONFIG_KEY, check_resume_matches, config_diff, experiment_config, upgrade_config
from gan_lightning.data import IDXError, MNISTNotFoundError
from gan_lightning.errors import ConfigError
from gan_lightning.preflight import check_model_fits_data
from gan_lightning.train import train
from tests.conftest import compose_cfg, run_cli, write_mnist

# (overrides, what the one-line error says): docs/gen_bad_input_table.py writes the documented table from these.
BAD_SETTINGS = [
    (["model.d_steps=0"], "model.d_steps=0: must be an integer >= 1"),
    (["model.g_steps=-2"], "model.g_steps=-2: must be an integer >= 1"),
    (["model.g_lr=0"], "model.g_lr=0: a learning rate must be > 0"),
    (["model.d_lr=-0.001"], "model.d_lr=-0.001: a learning rate must be > 0"),
    (["data.batch_size=0"], "data.batch_size=0: must be an integer >= 1"),
    (["data.std=0"], "data.std=0: the target Gaussian needs std > 0"),
    (["model.latent_dim=0"], "model.latent_dim=0: must be an integer >= 1"),
    (["model.objective.g_loss=hinj"],
     "model.objective.g_loss=hinj: expected one of non_saturating, minimax, hinge, wasserstein"),
    (["model.objective.d_loss=gan"], "model.objective.d_loss=gan: expected one of bce, least_squares, hinge, "
                                     "wasserstein"),
    (["model.objective.loss=nonsense"], "model.objective.loss=nonsense: expected one of bce, minimax"),
    (["model.objective.d_loss=hinge", "model.objective.real_label=0.9"],
     "model.objective.real_label=0.9: label smoothing needs a D loss with targets"),
    (["model.objective.loss=wasserstein", "model.objective.real_label=0.9"],
     "model.objective.real_label=0.9: label smoothing needs a D loss with targets"),
    (["+regulariser=gradient_penalty", "model.objective.regularisers.gp.weight=-10"],
     "model.objective.regularisers.gp.weight=-10: must be a number >= 0"),
    (["+regulariser=gradient_penalty", "trainer.precision=16-mixed"],
     "model.objective.regularisers.gp with trainer.precision=16-mixed: its input gradient is not loss-scaled"),
    (["model.num_classes=10"], "model.num_classes=10: a conditional GAN needs data with 10 classes; "
                               "data=gaussian has no labels"),
    (["experiment=mnist_cgan", "model.num_fixed_samples=64"], "model.num_fixed_samples=64: a conditional grid"),
    (["data=ring", "data.layout=spiral"], "data.layout=spiral: expected one of ring, grid"),
    (["data=grid", "data.num_modes=24"], "data.num_modes=24: a grid needs a square number of modes"),
    (["data=ring", "model=dcgan"], "model=dcgan cannot be built for data=ring"),
    (["model.objective.reduction=max"], "model.objective.reduction=max: expected one of mean, sum"),
    (["model.g_optimizer._target_=torch.optim.Adamm"], "model.g_optimizer._target_=torch.optim.Adamm: no such"),
    (["model.d_optimizer._target_=torch.nn.Linear"],
     "model.d_optimizer._target_=torch.nn.modules.linear.Linear: is not a torch.optim.Optimizer"),
    (["trainer.precision=17-mixed"], "Precision '17-mixed' is invalid. Allowed precision values"),
    (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path=/nonexistent/last.ckpt: no such checkpoint file"),
    (["data=gaussian", "model=dcgan"], "model=dcgan cannot be built for data=gaussian"),
    (["experiment=mnist_dcgan", "data=gaussian"], "the experiment preset mnist_dcgan is made for data=mnist"),
    (["experiment=mnist_mlp", "data=gaussian"], "data=gaussian: the experiment preset mnist_mlp is made for"),
    (["data=gaussian", "model=gaussian_diffs", "data.batch_size=64"], "set the batch size to match"),
    (["+regulariser=r1", "model.objective.regularisers.r1.gamma=-1"],
     "model.objective.regularisers.r1.gamma=-1: must be a number >= 0"),
    (["+regulariser=r1", "model.objective.regularisers.r1.interval=0"],
     "model.objective.regularisers.r1.interval=0: must be an integer >= 1"),
    (["+regulariser=r1", "model.objective.regularisers.r1.gamma=1", "trainer.precision=16-mixed"],
     "model.objective.regularisers.r1 with trainer.precision=16-mixed: its input gradient is not loss-scaled"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_SETTINGS)
def test_bad_setting_is_named(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(tmp_path / "run", overrides))
    assert message in str(err.value)
    assert not list((tmp_path / "run").rglob("*.ckpt")) and not list((tmp_path / "run").rglob("events.*"))


MORE_BAD_SETTINGS = [
    (["model.d_steps=true"], "model.d_steps=True: must be an integer >= 1"),
    (["model.g_lr=true"], "model.g_lr=True: a learning rate must be > 0"),
    (["model.objective.real_label=5"], "model.objective.real_label=5: the target for real samples must be in "
                                       "(0, 1]"),
    (["model.num_fixed_samples=0"], "model.num_fixed_samples=0: must be an integer >= 1"),
    (["torch_threads=-2"], "torch_threads=-2: must be an integer >= 1"),
    (["seed=abc"], "seed=abc: must be an integer"),
    (["+foo=1"], "foo=1: not a setting"),
    (["data.num_workers=-1"], "data.num_workers=-1: must be an integer >= 0"),
    (["data.batch_size=1e9"], "data.batch_size=1000000000.0: must be an integer >= 1"),
    (["data.batch_size=1000000000"], "needs about"),
    (["model.latent_dim=100000000", "model=gaussian_fast"], "model.latent_dim=100000000: model=gaussian_fast"),
    (["callbacks.samples.every_n_iterations=-1"], "callbacks.samples.every_n_iterations=-1: must be an integer"),
    (["trainer.devices=3", "trainer.accelerator=cpu"], "with 3 processes: each G or D update leaves"),
    (["seed=null"], "seed=None: must be an integer >= 0"),
    (["model.latent_dim=1e8"], "model.latent_dim=100000000.0: must be an integer >= 1"),
    (["model.g_lr=inf"], "model.g_lr=inf: a learning rate must be > 0"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs=abc: must be an integer >= -1"),
    (["trainer.limit_train_batches=1.5"], "trainer.limit_train_batches=1.5: an integer >= 1"),
    (["+regulariser=r2", "model.objective.regularisers.r2.gamma=abc"],
     "model.objective.regularisers.r2.gamma=abc: must be a number >= 0"),
    (["+regulariser=lazy_r1", "model.objective.regularisers.r1.interval=-16"],
     "model.objective.regularisers.r1.interval=-16: must be an integer >= 1"),
    (["+regulariser=r1", "model.objective.regularisers.r1.interval=abc"],
     "model.objective.regularisers.r1.interval=abc: must be an integer >= 1"),
    (["execution.iterations_per_batch=0"], "execution.iterations_per_batch=0: must be an integer >= 1"),
    (["execution.iterations_per_batch=4", "data.batches_per_epoch=6"],
     "data.batches_per_epoch=6: counts iterations: use a multiple of execution.iterations_per_batch=4"),
    (["execution.cuda_graph=maybe"], "execution.cuda_graph=maybe: must be true or false"),
    (["execution.compile_nets=1"], "execution.compile_nets=1: must be true or false"),
    (["execution.channels_last=maybe"], "execution.channels_last=maybe: must be true, false or null"),
    (["execution.check_finite=null"], "execution.check_finite=None: must be true or false"),
    (["callbacks.checkpoint.min_interval_s=-1"], "callbacks.checkpoint.min_interval_s=-1: seconds between"),
    (["data=ring", "model.g_optimizer.betas=[2,0]"],
     "model.g_optimizer (torch.optim.Adam, fused=True, betas=[2, 0]): Invalid beta parameter at index 0: 2"),
    (["data=ring", "+model.d_optimizer.eps=-1"],
     "model.d_optimizer (torch.optim.Adam, fused=True, betas=[0.5, 0.999], eps=-1): Invalid epsilon value: -1"),
    (["+trainer.gradient_clip_val=1"], "trainer.gradient_clip_val=1: the GAN clips its own gradients: use "
                                       "model.grad_clip_norm=1"),
    (["+trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches=2: the GAN steps G and D itself"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0: nothing would be trained"),
    (["trainer.max_steps=0"], "trainer.max_steps=0: nothing would be trained"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0: no training curve would be written"),
    (["overwrite=maybe"], "overwrite=maybe: must be true or false"),
]


@pytest.mark.parametrize(("overrides", "message"), MORE_BAD_SETTINGS)
def test_more_bad_settings_are_named_before_training(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(tmp_path / "run", overrides))
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert not list((tmp_path / "run").rglob("*.ckpt")) and not list((tmp_path / "run").rglob("events.*"))


def test_mnist_sizes_that_cannot_train(tmp_path, mnist_dir):
    common = ["data=mnist", f"data.data_dir={mnist_dir}"]  # 96 images
    with pytest.raises(ConfigError, match="data.batch_size=100: one iteration takes batch_size x d_steps = 100 "
                                          "images, but the train split has 96"):
        train(compose_cfg(tmp_path, [*common, "data.batch_size=100"]))
    with pytest.raises(ConfigError, match="data.batch_size=1: model=mlp has BatchNorm layers"):
        train(compose_cfg(tmp_path, [*common, "data.batch_size=1"]))
    train(compose_cfg(tmp_path, [*common, "data.batch_size=1", "model=simple_fc", "trainer.limit_train_batches=2"]))
    # PacGAN: a BatchNorm D sees batch_size / pack inputs
    with pytest.raises(ConfigError, match=r"data.batch_size=2: model=dcgan's discriminator has BatchNorm layers and "
                                          r"judges packs of model.discriminator.pack=2 samples, so a batch gives it 1"):
        train(compose_cfg(tmp_path, [*common, "model=dcgan", "data.batch_size=2", "model.discriminator.pack=2"]))


def test_image_shapes_must_match_the_data(tmp_path, mnist_dir):
    with pytest.raises(ConfigError, match=r"makes samples of shape \[1, 32, 32\] but data=mnist has samples of shape"):
        train(compose_cfg(tmp_path, ["data=mnist", f"data.data_dir={mnist_dir}",
                                     "model.generator.out_shape=[1,32,32]"]))
    # A Gaussian preset on images is refused by name; a Gaussian model on images by its batch-level D's input.
    with pytest.raises(ConfigError, match="data=mnist: the experiment preset gaussian_moments is made for data=gauss"):
        train(compose_cfg(tmp_path, ["experiment=gaussian_moments", "data=mnist", f"data.data_dir={mnist_dir}"]))
    with pytest.raises(ConfigError, match="model=gaussian_moments does not fit data=mnist.*1-D samples"):
        train(compose_cfg(tmp_path, ["data=mnist", "model=gaussian_moments", "model.d_steps=1",
                                     f"data.data_dir={mnist_dir}"]))


def test_corrupt_and_missing_idx_files(tmp_path):
    root = write_mnist(tmp_path / "data", n=32)
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:200])  # truncated gzip stream
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz"):
        train(compose_cfg(tmp_path / "run", ["data=mnist", f"data.data_dir={root}"]))

    with pytest.raises(MNISTNotFoundError, match="train-images-idx3-ubyte"):
        train(compose_cfg(tmp_path / "run", ["data=mnist", f"data.data_dir={tmp_path / 'empty'}"]))


def test_output_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="paths.output_dir=.*a_file/run: cannot write there"):
        train(compose_cfg(blocker / "run"))


def test_checkpoint_from_another_config_shows_the_diff_and_can_be_forced(tmp_path):
    common = ["data.batches_per_epoch=2", "data.batch_size=50"]
    train(compose_cfg(tmp_path / "first", common))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"

    with pytest.raises(ConfigError) as err:
        train(compose_cfg(tmp_path / "second", [*common, f"ckpt_path={last}", "model.g_lr=0.5",
                                                "data.mean=2.0", "trainer.max_epochs=2"]))
    message = str(err.value)
    assert "model.g_lr: 0.001 (checkpoint) -> 0.5 (now)" in message
    assert "data.mean: 4.0 (checkpoint) -> 2.0 (now)" in message
    assert "allow_config_mismatch=true" in message

    train(compose_cfg(tmp_path / "third", [*common, f"ckpt_path={last}", "model.g_lr=0.5", "trainer.max_epochs=2",
                                           "allow_config_mismatch=true"]))
    assert torch.load(tmp_path / "third" / "checkpoints" / "last.ckpt", weights_only=False)["gan_iteration"] == 4


def test_checkpoint_from_older_code_resumes_when_new_settings_keep_the_old_behaviour(tmp_path):
    """A config stored by older code (the losses as model.g_loss/d_loss/r1_gamma, execution settings under model,
    data.d_steps; no reuse_fake yet) compares as the behaviour that code had: keys added later at their old
    behaviour, the losses as the objective node they became; how the same updates are computed (fused kernels,
    direct steps, now conf/execution/ and not stored) may differ. A real difference is still named."""
    cfg = compose_cfg(tmp_path, ["data=ring"])  # the Adam options are fused
    now = experiment_config(cfg)
    model = {k: v for k, v in now["model"].items() if k not in ("objective", "reuse_fake")}
    model["g_optimizer"] = {k: v for k, v in model["g_optimizer"].items() if k != "fused"}
    saved = {"model": {**model, "g_loss": "non_saturating", "d_loss": "bce", "real_label": 1.0,
                       "d_loss_reduction": "mean", "r1_gamma": 0.0, "gp_lambda": 0.0, "direct_steps": False,
                       "cuda_graph": False, "fixed_seed": 0},
             "data": {**now["data"], "d_steps": 1}}
    assert now["model"]["g_optimizer"]["fused"] and now["model"]["objective"]["reduction"] == "mean"
    assert config_diff(upgrade_config(saved), now) == []
    check_resume_matches({CONFIG_KEY: saved}, "old.ckpt", cfg)  # what a resume does: no error

    changed = compose_cfg(tmp_path, ["data=ring", "model.reuse_fake=true", "+regulariser=r1"])
    with pytest.raises(ConfigError) as err:
        check_resume_matches({CONFIG_KEY: saved}, "old.ckpt", changed)
    lines = str(err.value).splitlines()
    assert "  model.reuse_fake: <absent> (checkpoint) -> True (now)" in lines
    assert "  model.objective.regularisers.r1.gamma: <absent> (checkpoint) -> 10.0 (now)" in lines

    # An old run with R1 is the same experiment as today's +regulariser=r1 with that gamma.
    with_r1 = {**saved, "model": {**saved["model"], "r1_gamma": 10.0}}
    check_resume_matches({CONFIG_KEY: with_r1}, "old.ckpt", compose_cfg(tmp_path, ["data=ring", "+regulariser=r1"]))


@pytest.mark.slow
def test_command_line_reports_one_line_and_exits_nonzero(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(["model.d_steps=0", f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "model.d_steps=0: must be an integer >= 1" in errors[0]
    assert "Traceback" not in result.stderr
    # Nothing is written but Hydra's record of the config and the log.
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", ".run.lock", "train.log"]

    unknown = run_cli(["model=nonexistent", f"hydra.run.dir={run_dir}"], tmp_path)
    assert unknown.returncode != 0 and "Could not find 'model/nonexistent'" in unknown.stderr


@pytest.mark.slow
def test_bad_input_through_the_command_line_is_one_line_before_training(tmp_path):
    """A representative subset of the fault table through the real command line: exit code 2, one "error:" line
    naming the key or file and its value, no traceback, and no checkpoint or event file written."""
    not_a_checkpoint = tmp_path / "notes.txt"
    not_a_checkpoint.write_text("these are my notes")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cases = [
        (["model.d_steps=true"], "model.d_steps=True: must be an integer >= 1"),
        (["+regulariser=r1", "model.objective.regularisers.r1.gamma=-1"],
         "model.objective.regularisers.r1.gamma=-1: must be a number >= 0"),
        (["execution.cuda_graph=maybe"], "execution.cuda_graph=maybe: must be true or false"),
        (["trainer=gpu"], "trainer settings refused by Lightning"),
        (["experiment=mnist_mlp", "data=gaussian"], "the experiment preset mnist_mlp is made for data=mnist"),
        ([f"ckpt_path={not_a_checkpoint}"], f"ckpt_path={not_a_checkpoint}: cannot be read as a checkpoint"),
        ([f"hydra.run.dir={blocker}/run"], f"hydra.run.dir={blocker}/run: cannot create the run folder there"),
        ([f"callbacks.checkpoint.dirpath={blocker}/ckpts"], f"callbacks.checkpoint.dirpath={blocker}/ckpts: cannot "
                                                             "write there"),
        (["data=ring", "model.g_optimizer.betas=[2,0]"], "Invalid beta parameter at index 0: 2"),
        ([f"hydra.run.dir={tmp_path / ('x' * 300)}"], "cannot create the run folder there (a folder name of 300 bytes"),
        (["+trainer.gradient_clip_val=1"], "use model.grad_clip_norm=1"),
    ]
    for number, (overrides, message) in enumerate(cases):
        run_dir = tmp_path / "run" / str(number)
        if not any(o.startswith("hydra.run.dir") for o in overrides):
            overrides = [*overrides, f"hydra.run.dir={run_dir}"]
        result = run_cli(overrides, tmp_path)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 2, (overrides, result.stderr[-2000:])
        assert len(errors) == 1 and message in errors[0], (overrides, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, overrides
        assert not list(tmp_path.rglob("*.ckpt"))
        assert not list(tmp_path.rglob("events.*"))


def test_start_up_checks_leave_the_training_random_stream_alone(tmp_path):
    """The dry run of G and D must not draw from the global RNG, or validating would change every run's results."""
    model = instantiate(compose_cfg(tmp_path, ["experiment=gaussian_moments"]).model)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check_model_fits_data(model, [1], 500, "gaussian_moments", "gaussian")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("arg", "message"), [
    ("model.cuda_graph=true", "model.cuda_graph has moved to execution.cuda_graph"),
    ("model.r1_gamma=10", "model.r1_gamma has moved to +regulariser=r1 model.objective.regularisers.r1.gamma"),
    ("+data.d_steps=2", "data.d_steps has moved to model.d_steps"),
    ("model.d_loss_reduction=sum", "model.d_loss_reduction has moved to model.objective.reduction"),
])
def test_a_setting_that_moved_is_named_with_its_new_key(arg, message):
    from gan_lightning.train import moved_setting

    assert message in moved_setting(["data=mnist", arg])
    assert moved_setting(["model.d_steps=2", "execution.cuda_graph=true"]) is None
