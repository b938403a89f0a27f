"""The objective: paired losses on known logits, regularisers' values and strength, and the statistics it reports."""
from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.objective import Objective
from gan_lightning.train import train
from tests.conftest import compose_cfg, event_tags


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


class Linear:
    """D(x) = x (1-D samples): its outputs are the logits given."""

    def __call__(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        return x


REAL, FAKE = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [1.0]])  # mean D(x) = 1, mean D(G(z)) = 0


def test_relativistic_average_losses_on_known_logits():
    """RaGAN: D's loss is BCE(D(x) - mean D(G(z)), 1) + BCE(D(G(z)) - mean D(x), 0); G's swaps the roles. Here both
    of D's terms see logits (2, 0) against their targets, both of G's (-2, 0)."""
    ragan = Objective(loss="ragan")
    d_loss, stats = ragan.discriminator_loss(Linear(), REAL, None, FAKE, None)
    assert d_loss.item() == pytest.approx(softplus(-2) + softplus(0))
    g_loss, g_stats = ragan.generator_loss(Linear(), FAKE, None, REAL, None)
    assert g_loss.item() == pytest.approx(softplus(2) + softplus(0))
    assert set(stats) == {"d_loss", "d_real", "d_fake"} and set(g_stats) == {"g_loss"}
    # RaLSGAN: E(D(x) - mean D(G(z)) - 1)^2 + E(D(G(z)) - mean D(x) + 1)^2 = 1 + 1; G's: 5 + 5
    ralsgan = Objective(loss="ralsgan")
    assert ralsgan.discriminator_loss(Linear(), REAL, None, FAKE, None)[0].item() == pytest.approx(2.0)
    assert ralsgan.generator_loss(Linear(), FAKE, None, REAL, None)[0].item() == pytest.approx(10.0)


def test_relativistic_g_loss_judges_the_real_batch_and_the_others_do_not():
    seen = []

    def critic(x, labels=None):
        seen.append(x)
        return x

    Objective(loss="ragan").generator_loss(critic, FAKE, None, REAL, None)
    assert any(x is REAL for x in seen)
    seen.clear()
    Objective(loss="bce").generator_loss(critic, FAKE, None, REAL, None)
    assert all(x is not REAL for x in seen)


def test_a_per_net_override_replaces_one_half_of_the_pair():
    mixed = Objective(loss="ragan", g_loss="non_saturating")
    assert (mixed.d_name, mixed.g_name) == ("relativistic_average", "non_saturating")
    g_loss, _ = mixed.generator_loss(Linear(), FAKE, None, REAL, None)
    assert g_loss.item() == pytest.approx((softplus(1) + softplus(-1)) / 2)  # -log sigmoid of (-1, 1)


def test_a_ragan_run_trains_and_logs_its_statistics(tmp_path):
    train(compose_cfg(tmp_path, ["data=ring", "model.objective.loss=ragan", "data.batches_per_epoch=3",
                                 "data.batch_size=64", "callbacks.samples.every_n_iterations=0"]))
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"} <= set(event_tags(tmp_path)["scalars"])


class Scaled:
    """D(x) = 3 x on 1-D samples: its input gradient is 3 everywhere, so E||grad_x D(x)||^2 = 9."""

    def __call__(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        return 3 * x


def test_lazy_r1_has_the_strength_of_r1_applied_every_update():
    """R1 with interval 4 is due in D updates 0, 4, 8, ... and then adds gamma / 2 * 4 times the penalty: over any 4
    updates the same total as R1 applied in each of them."""
    from gan_lightning.objective import R1

    gamma, real, fake = 2.0, torch.randn(8, 1), torch.randn(8, 1)
    every = Objective(regularisers={"r1": R1(gamma)})
    lazy = Objective(regularisers={"r1": R1(gamma, interval=4)})
    assert [lazy.due(k) for k in range(9)] == [("r1",), (), (), (), ("r1",), (), (), (), ("r1",)]
    assert all(every.due(k) == ("r1",) for k in range(9))
    base = Objective().discriminator_loss(Scaled(), real, None, fake, None)[0]
    added_every = [every.discriminator_loss(Scaled(), real, None, fake, None, every.due(k))[0] - base
                   for k in range(4)]
    added_lazy = [lazy.discriminator_loss(Scaled(), real, None, fake, None, lazy.due(k))[0] - base for k in range(4)]
    assert added_every[0].item() == pytest.approx(gamma / 2 * 9)
    assert sum(added_lazy).item() == pytest.approx(sum(added_every).item())
    assert [a.item() for a in added_lazy[1:]] == [0.0, 0.0, 0.0]
    _, stats = lazy.discriminator_loss(Scaled(), real, None, fake, None, ("r1",))
    assert stats["r1"].item() == pytest.approx(9.0)  # reported unweighted, by name


def test_a_lazy_r1_run_logs_r1_by_name(tmp_path):
    """With the interval 16 and 20 iterations of one D update, R1 runs in iterations 1 and 17: train/r1 is logged
    (the mean over the iterations that applied it) beside the losses."""
    train(compose_cfg(tmp_path, ["data=ring", "+regulariser=lazy_r1", "data.batches_per_epoch=20",
                                 "data.batch_size=64", "trainer.log_every_n_steps=10",
                                 "callbacks.samples.every_n_iterations=0"]))
    scalars = event_tags(tmp_path)["scalars"]
    assert {"train/r1", "train/d_loss", "train/g_loss"} <= set(scalars)


def test_r2_is_the_input_gradient_penalty_on_the_fakes_of_a_linear_d():
    """For D(x) = w.x + b the input gradient is w for every sample: R2 = ||w||^2, whatever the batch, reported by
    name and added to D's loss as gamma / 2 * R2; R1 (on the reals) gives the same for a linear D, and only R2
    differentiates through the fake batch."""
    from gan_lightning.objective import R1, R2

    d = torch.nn.Linear(3, 1)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))

    def critic(x, labels=None):
        return d(x)

    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    plain = Objective().discriminator_loss(critic, real, None, fake, None)[0]
    r2 = Objective(regularisers={"r2": R2(gamma=4.0)})
    loss, stats = r2.discriminator_loss(critic, real, None, fake, None, ("r2",))
    assert stats["r2"].item() == pytest.approx(5.25)  # 1 + 4 + 0.25
    assert (loss - plain).item() == pytest.approx(4.0 / 2 * 5.25)
    both = Objective(regularisers={"r1": R1(gamma=4.0), "r2": R2(gamma=4.0)})
    _, stats = both.discriminator_loss(critic, real, None, fake, None, ("r1", "r2"))
    assert stats["r1"].item() == pytest.approx(5.25) and stats["r2"].item() == pytest.approx(5.25)
    # D's update descends the penalty: its gradient on w is gamma / 2 * 2 w on top of the plain loss's
    loss.backward()
    grad_with = d.weight.grad.clone()
    d.weight.grad = None
    plain = Objective().discriminator_loss(critic, real, None, fake, None)[0]
    plain.backward()
    assert torch.allclose(grad_with - d.weight.grad, 4.0 * d.weight.detach())


def test_an_r2_run_logs_r2(tmp_path):
    train(compose_cfg(tmp_path, ["data=ring", "+regulariser=r2", "data.batches_per_epoch=3", "data.batch_size=64",
                                 "callbacks.samples.every_n_iterations=0"]))
    assert "train/r2" in event_tags(tmp_path)["scalars"]
