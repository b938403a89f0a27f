"""execution.compile_nets: G and D behind torch.compile train as the eager nets do and leave the checkpoint keys as
they are; where compiling cannot be used, the run says why in one line and trains eagerly."""
from __future__ import annotations

import logging

import pytest
import torch
from torch._dynamo.eval_frame import OptimizedModule
from torch._dynamo.utils import counters

from gan_lightning.execution.compiled_nets import cpu_compiler
from tests.conftest import compose_cfg, fit, write_mnist

ITERATIONS = 4


def _fit(tmp_path, overrides):
    """ITERATIONS iterations of the BatchNorm MLP GAN on a few written digits, from seed 0."""
    cfg = compose_cfg(tmp_path, ["data=mnist", "model=mlp", f"data.data_dir={write_mnist(tmp_path / 'data')}",
                                 "data.batch_size=16", f"trainer.limit_train_batches={ITERATIONS}", *overrides])
    return fit(cfg, seed=0)


@pytest.mark.skipif(cpu_compiler() is None, reason="torch.compile's CPU code needs a C++ compiler")
def test_compiled_nets_train_as_the_eager_ones(tmp_path, caplog):
    eager_trainer, eager = _fit(tmp_path / "eager", [])
    torch.compiler.reset()
    counters.clear()
    with caplog.at_level(logging.INFO):
        trainer, model = _fit(tmp_path / "compiled", ["execution.compile_nets=true"])
    assert "; nets compiled (sampling stays eager);" in caplog.text
    assert all(isinstance(net, OptimizedModule) for net in model.training_nets)
    assert counters["stats"]["unique_graphs"] >= 2  # the updates really ran compiled code (G's and D's graphs)
    # The same losses up to the order of float operations in fused kernels.
    assert trainer.callback_metrics.keys() == eager_trainer.callback_metrics.keys()
    for name, value in eager_trainer.callback_metrics.items():
        torch.testing.assert_close(trainer.callback_metrics[name], value, rtol=1e-4, atol=1e-5)
    # The checkpoint keys are the eager run's (the compiled wrappers are not submodules), and so are the weights,
    # to within what Adam's normalised steps make of float-level gradient differences (at most lr = 2e-4 a step).
    compiled_state, eager_state = model.state_dict(), eager.state_dict()
    assert compiled_state.keys() == eager_state.keys()
    for name, value in eager_state.items():
        torch.testing.assert_close(compiled_state[name].float(), value.float(), rtol=0, atol=ITERATIONS * 2e-4,
                                   msg=name)


@pytest.mark.parametrize("case", ["r1", "no-compiler"])
def test_where_compiling_cannot_be_used_the_run_says_why_and_trains_eagerly(case, tmp_path, caplog, monkeypatch):
    overrides, why = {
        "r1": (["+regulariser=r1", "model.objective.regularisers.r1.gamma=1.0"],
               "the regularisers (r1) backpropagate through D's input gradient"),
        "no-compiler": ([], "torch.compile's CPU code needs the C++ compiler it is set for"),
    }[case]
    if case == "no-compiler":  # a machine without the compiler: nothing on PATH
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with caplog.at_level(logging.INFO):
        _, model = _fit(tmp_path / "asked", [*overrides, "execution.compile_nets=true"])
    assert f"; nets eager, not compiled ({why}" in caplog.text
    assert model.training_nets == (model.generator, model.discriminator)
    _, eager = _fit(tmp_path / "eager", overrides)
    for name, value in eager.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name
