"""The training-loop contract: d_steps D updates then g_steps G updates per batch, the other network frozen."""
from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from gan_lightning.log_window import LogWindow
from gan_lightning.train import train
from tests.conftest import compose_cfg, event_accumulator, fit


class UpdateRecorder(L.Callback):
    """Observes every optimizer step through torch's public step hooks (so both update paths are observed): the
    order of D ("d") and G ("g") steps, whether a step changed its own net, and whether an update left gradients
    on the other, frozen net."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.order: list[str] = []
        self.violations: list[str] = []
        opt_g, opt_d = (opt.optimizer for opt in pl_module.optimizers())
        nets = {"g": pl_module.generator, "d": pl_module.discriminator}
        grads_after_own_step = {name: self._grads(net) for name, net in nets.items()}
        before: dict[str, list[torch.Tensor]] = {}

        def pre(name: str, other: str):
            def hook(optimizer, args, kwargs) -> None:
                self.order.append(name)
                before[name] = [p.detach().clone() for p in nets[name].parameters()]
                if not self._same(grads_after_own_step[other], self._grads(nets[other])):
                    self.violations.append(f"the {name.upper()} update left gradients on {other.upper()}")
            return hook

        def post(name: str):
            def hook(optimizer, args, kwargs) -> None:
                if all(torch.equal(a, b) for a, b in zip(before[name], nets[name].parameters())):
                    self.violations.append(f"{name.upper()} did not change in its own update")
                grads_after_own_step[name] = self._grads(nets[name])
            return hook

        for name, other, opt in (("g", "d", opt_g), ("d", "g", opt_d)):
            opt.register_step_pre_hook(pre(name, other))
            opt.register_step_post_hook(post(name))

    @staticmethod
    def _grads(net: torch.nn.Module) -> list[torch.Tensor | None]:
        return [None if p.grad is None else p.grad.clone() for p in net.parameters()]

    @staticmethod
    def _same(a: list, b: list) -> bool:
        return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
                   for x, y in zip(a, b))


@pytest.mark.parametrize("data", ["gaussian", "mnist"])
def test_d_steps_and_g_steps_per_batch(data, tmp_path, mnist_dir):
    batches = 4
    overrides = [f"data={data}", "model.d_steps=3", "model.g_steps=2", f"trainer.limit_train_batches={batches}"]
    if data == "mnist":
        overrides += [f"data.data_dir={mnist_dir}", "data.batch_size=8"]
    else:
        overrides += ["data.batch_size=50", "data.batches_per_epoch=10"]
    recorder = UpdateRecorder()
    trainer, model = fit(compose_cfg(tmp_path, overrides), recorder)

    assert model.execution.update.name == "direct"  # torch's step hooks observe the fast path too
    assert recorder.order == ["d", "d", "d", "g", "g"] * batches
    assert recorder.violations == []
    assert model.iteration == batches
    # Lightning's global_step counts every optimizer step in manual optimisation; our x-axis counts iterations.
    assert trainer.global_step == 5 * batches


class RealBatchesAndDInputs(L.Callback):
    """The real batches training_step receives, and every input D is called on."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.batches, self.d_inputs = [], []
        pl_module.discriminator.register_forward_pre_hook(lambda net, args: self.d_inputs.append(args[0].detach()))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch.clone())


def test_each_d_update_sees_its_own_real_chunk(tmp_path):
    """A batch of d_steps x batch_size real samples is split so each D update gets batch_size fresh samples."""
    cfg = compose_cfg(tmp_path, ["model.d_steps=4", "data.batch_size=25", "data.batches_per_epoch=1"])
    seen = RealBatchesAndDInputs()
    fit(cfg, seen)

    (batch,) = seen.batches
    assert len(batch) == 100 and len(torch.unique(batch)) == 100
    real_inputs = [x for x in seen.d_inputs if any(torch.equal(x, chunk) for chunk in batch.tensor_split(4))]
    assert len(real_inputs) == 4 and all(len(x) == 25 for x in real_inputs)
    assert torch.equal(torch.cat(real_inputs), batch)  # each chunk once, in order


def test_fixed_latent_is_a_buffer_and_samples_are_drawn_in_eval_mode(tmp_path):
    cfg = compose_cfg(tmp_path, ["data=mnist", "model=mlp"])
    model = instantiate(cfg.model)
    assert "fixed_z" in dict(model.named_buffers())
    assert "fixed_z" in model.state_dict()

    model.train()
    norms = [m for m in model.generator.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    running = [m.running_mean.clone() for m in norms]
    images = model.generate()
    # Eval mode: BatchNorm used (and did not update) its running statistics; train mode is restored afterwards.
    assert all(torch.equal(before, m.running_mean) for before, m in zip(running, norms))
    assert model.generator.training
    assert images.shape == (64, 1, 28, 28) and not images.requires_grad
    assert images.min() >= -1 and images.max() <= 1


def test_samples_from_a_dropout_generator_are_deterministic(tmp_path):
    """Dropout is off when sampling: the same fixed z gives the same grid twice (train mode would not)."""
    model = instantiate(compose_cfg(tmp_path, ["experiment=mnist_dropout"]).model)
    model.train()
    assert torch.equal(model.generate(), model.generate())
    assert not torch.equal(model.generator(model.fixed_z), model.generator(model.fixed_z))
    assert model.fixed_z.shape == (16, 100) and model.fixed_z.abs().max() <= 1  # U(-1, 1), as the original


def test_gaussian_moments_moves_generated_mean_toward_target(tmp_path):
    """A shortened gaussian_moments schedule (150 of 5,000 iterations) pulls G's mean from near 0 toward 4."""
    cfg = compose_cfg(tmp_path, ["experiment=gaussian_moments", "data.batches_per_epoch=150",
                                 "callbacks.samples.every_n_iterations=0"])
    L.seed_everything(cfg.seed)  # as train() does, so this is the G that training starts from
    start = instantiate(cfg.model).generate().mean().item()
    train(cfg)
    means = [e.value for e in event_accumulator(tmp_path).Scalars("samples/mean")]
    end = means[-1]
    assert abs(end - 4.0) < abs(start - 4.0) - 1.0, (start, end)



@pytest.mark.parametrize("reuse", [False, True])
def test_reuse_fake_saves_one_generator_forward_per_iteration(reuse, tmp_path):
    """With reuse_fake the first G update judges the batch the last D update generated: G runs d_steps + g_steps - 1
    times per iteration instead of d_steps + g_steps; g_steps of those runs build a graph either way."""
    batches, d_steps, g_steps = 3, 2, 2
    cfg = compose_cfg(tmp_path, [f"model.reuse_fake={reuse}", f"model.d_steps={d_steps}", f"model.g_steps={g_steps}",
                                 "data.batch_size=50", f"data.batches_per_epoch={batches}"])
    model = instantiate(cfg.model)
    with_graph = []
    model.generator.register_forward_hook(lambda module, args, out: with_graph.append(out.requires_grad))
    fit(cfg, model=model)

    assert len(with_graph) == batches * (d_steps + g_steps - (1 if reuse else 0))
    assert sum(with_graph) == batches * g_steps


def test_scalars_are_window_means_written_every_log_every_n_steps(tmp_path):
    """log_every_n_steps=5: writes at iterations 5 and 10, each the mean of the per-iteration values of its window
    (the same seeded run logged every iteration gives those)."""
    common = ["data.batches_per_epoch=10", "data.batch_size=50", "model.d_steps=2", "torch_threads=1"]
    train(compose_cfg(tmp_path / "every", [*common, "trainer.log_every_n_steps=1"]))
    train(compose_cfg(tmp_path / "window", [*common, "trainer.log_every_n_steps=5"]))
    for tag in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"):
        every = {e.step: e.value for e in event_accumulator(tmp_path / "every").Scalars(tag)}
        window = {e.step: e.value for e in event_accumulator(tmp_path / "window").Scalars(tag)}
        assert sorted(every) == list(range(1, 11)) and sorted(window) == [5, 10]
        for end in (5, 10):
            expected = sum(every[i] for i in range(end - 4, end + 1)) / 5
            assert window[end] == pytest.approx(expected, rel=1e-5), (tag, end)


class HookCounter(L.Callback):
    def __init__(self) -> None:
        self.after_backward = 0

    def on_after_backward(self, trainer, pl_module) -> None:
        self.after_backward += 1


@pytest.mark.parametrize("extra", [[], ["model.grad_clip_norm=0.05"], ["trainer.precision=bf16-mixed"]],
                         ids=["fp32", "clipped", "bf16"])
def test_direct_steps_give_lightnings_updates_and_step_count(extra, tmp_path):
    """On one CPU in fp32 or bf16 the GAN steps its optimizers directly: the same weights (clipping included) and
    global_step as through Lightning's manual_backward/LightningOptimizer.step; a callback on a step hook
    switches back to Lightning's path, and its hook runs once per update."""
    batches = 4
    common = ["model.d_steps=2", "model.g_steps=3", "data.batch_size=50", f"data.batches_per_epoch={batches}",
              "torch_threads=1", *extra]
    results, counter = {}, HookCounter()
    for direct, callbacks in (("true", []), ("false", []), ("true", [counter])):
        cfg = compose_cfg(tmp_path / f"{direct}{len(callbacks)}", [*common, f"execution.direct_steps={direct}"])
        trainer, model = fit(cfg, *callbacks, seed=0)
        results[direct, len(callbacks)] = (model.execution.update.name, trainer.global_step, model.state_dict())

    assert [r[0] for r in results.values()] == ["direct", "lightning", "lightning"]
    for _, global_step, _ in results.values():
        assert global_step == 5 * batches
    reference = results["false", 0][2]
    for key in [("true", 0), ("true", 1)]:
        for name, value in results[key][2].items():
            assert torch.equal(value, reference[name]), (key, name)
    assert counter.after_backward == 5 * batches
    if extra == ["model.grad_clip_norm=0.05"]:  # clipping acted: without it the weights differ
        cfg = compose_cfg(tmp_path / "unclipped", [*common[:-1], "execution.direct_steps=true"])
        _, model = fit(cfg, seed=0)
        assert not torch.equal(model.state_dict()["generator.net.0.weight"], reference["generator.net.0.weight"])


class ForwardWeightsCheck(L.Callback):
    """Forward hooks on every Linear of G and D: does each output equal the layer run, under the same autocast but
    without its cache, on the weights the layer holds now?"""

    def on_train_start(self, trainer, pl_module) -> None:
        self.results: list[bool] = []

        def check(module, inputs, output) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=torch.is_autocast_enabled("cpu"),
                                cache_enabled=False):
                expected = torch.nn.functional.linear(inputs[0], module.weight, module.bias)
            self.results.append(torch.equal(output, expected))

        for net in (pl_module.generator, pl_module.discriminator):
            for layer in net.modules():
                if isinstance(layer, torch.nn.Linear):
                    layer.register_forward_hook(check)


@pytest.mark.parametrize("direct", ["true", "false"])
def test_under_mixed_precision_every_update_runs_on_the_current_weights(direct, tmp_path):
    """bf16-mixed with 3 D and 3 G updates per iteration: each forward uses the weights of the latest step. The
    whole training_step runs in one autocast region; with autocast's cache on (Lightning turns it off), every update
    after a net's first would run on the weights from before that first step, and this test fails."""
    cfg = compose_cfg(tmp_path, ["trainer.precision=bf16-mixed", "model.d_steps=3", "model.g_steps=3",
                                 "data.batch_size=30", "data.batches_per_epoch=2", f"execution.direct_steps={direct}"])
    check = ForwardWeightsCheck()
    fit(cfg, check)
    assert len(check.results) > 20 and all(check.results), check.results


def test_the_log_window_survives_a_checkpoint_in_both_formats():
    """The window's sums and counts by name as checkpoints hold them (also the (sums, count) pair of checkpoints
    written before statistics had names): restored, the next write is the mean over the whole window."""
    window = LogWindow()
    for value in (1.0, 2.0, 3.0):
        window.add({"d_loss": torch.tensor(value), "g_loss": torch.tensor(-value)})
    window.add({"r1": torch.tensor(9.0)})  # a statistic of some iterations only (a lazy regulariser)
    state = window.state()
    assert state["d_loss"][1] == 3 and state["r1"][1] == 1 and float(state["d_loss"][0]) == 6.0
    restored = LogWindow()
    restored.load_state(state)
    restored.add({"d_loss": torch.tensor(6.0), "g_loss": torch.tensor(-6.0)})
    means = restored.pop_means()
    assert {k: float(v) for k, v in means.items()} == {"d_loss": 3.0, "g_loss": -3.0, "r1": 9.0}
    assert restored.pop_means() == {}  # popped: empty, as a fresh window
    older = LogWindow()
    older.load_state((torch.tensor([6.0, -6.0, 1.5, 0.3]), 3))  # d_loss, g_loss, d_real, d_fake sums; count
    assert {k: round(float(v), 6) for k, v in older.pop_means().items()} == {
        "d_loss": 2.0, "g_loss": -2.0, "d_real": 0.5, "d_fake": 0.1}


def test_the_log_window_sums_half_precision_values_in_float32():
    """Under bf16-mixed a hinge or Wasserstein loss is bf16: its window must still count past 256 iterations (a bf16
    count stops there) and keep the sums' precision."""
    window = LogWindow()
    values = {"d_loss": -1.3, "g_loss": 0.9, "d_real": 12.0, "d_fake": 10.5}
    for _ in range(400):
        window.add({k: torch.tensor(v, dtype=torch.bfloat16) for k, v in values.items()})
    means = window.pop_means()
    for name, value in values.items():
        assert means[name].dtype == torch.float32
        assert means[name] == torch.tensor(value, dtype=torch.bfloat16).float()


def test_logged_means_are_float32_under_bf16_with_hinge_losses(tmp_path):
    cfg = compose_cfg(tmp_path, ["trainer.precision=bf16-mixed", "model.objective.loss=hinge",
                                 "model.d_steps=2", "data.batch_size=30", "data.batches_per_epoch=2"])
    _, model = fit(cfg)
    assert all(total.dtype == torch.float32 for total, _ in model.window.state().values())
