"""Critic and generator objectives against closed forms; the joint and split critic forwards agree."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mege.energy.losses import EnergyDifference, Hinge
from mege.energy.mlp import MLPCritic
from mege.entropy.base import EntropyEstimator, EntropyResult
from mege.objectives import critic_objective, generator_objective
from mege.penalties import WGANGP, NoPenalty, WGANDiv, ZeroCentredFake, ZeroCentredReal


class LinearCritic(nn.Module):
    """``U(x) = w·x + b``: ``∇_x U = w`` everywhere."""

    def __init__(self, w, b=0.5):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x):
        return x @ self.w + self.b


def test_critic_objective_closed_form_for_a_linear_critic():
    """``L_U = w·(x̄ − x̃̄) + λ‖w‖²`` and ``∂L_U/∂w = x̄ − x̃̄ + 2λw``, ``∂L_U/∂b = 0``."""
    critic = LinearCritic([1.0, -2.0])
    real = torch.tensor([[1.0, 0.0], [3.0, 2.0]])   # mean (2, 1)
    fake = torch.tensor([[0.0, 1.0], [0.0, -3.0], [3.0, 1.0]])  # mean (1, -1/3)
    step = critic_objective(critic, EnergyDifference(), ZeroCentredReal(weight=10.0), real, fake)
    diff = torch.tensor([1.0, 4.0 / 3.0])
    assert step.energy_loss.item() == pytest.approx(1.0 * 1.0 - 2.0 * 4.0 / 3.0)
    assert step.penalty.item() == pytest.approx(10.0 * 5.0)
    assert step.loss.item() == pytest.approx(1.0 - 8.0 / 3.0 + 50.0)
    step.loss.backward()
    assert torch.allclose(critic.w.grad, diff + 2 * 10.0 * critic.w.detach())
    assert critic.b.grad.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("penalty", [ZeroCentredReal(10.0), ZeroCentredFake(5.0), WGANGP(10.0), WGANDiv(2.0, 6.0),
                                     NoPenalty()], ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("loss", [EnergyDifference(), Hinge()], ids=lambda l: type(l).__name__)
def test_joint_and_split_critic_forwards_agree(penalty, loss):
    torch.manual_seed(0)
    critic = MLPCritic(x_dim=3, hidden=16, depth=2)
    real, fake = torch.randn(7, 3), torch.randn(5, 3) + 1
    results = []
    for joint in (True, False):
        torch.manual_seed(1)  # WGAN-GP draws its interpolation weights
        critic.zero_grad()
        step = critic_objective(critic, loss, penalty, real, fake, joint_forward=joint)
        step.loss.backward()
        results.append((step, [p.grad.clone() for p in critic.parameters()]))
    (a, grads_a), (b, grads_b) = results
    for name in ("loss", "energy_loss", "penalty", "u_real", "u_fake"):
        assert torch.allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6), name
    for ga, gb in zip(grads_a, grads_b):
        assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-6)


class Recorder(EntropyEstimator):
    """``surrogate = c·Σ x`` (so ``∂surrogate/∂x = c``); records what the objective passed in."""

    needs_latents = True

    def __init__(self, c):
        super().__init__()
        self.c, self.seen = c, {}

    def forward(self, x, z=None, generator=None):
        self.seen = {"z": z, "generator": generator}
        return EntropyResult(surrogate=self.c * x.sum())


def test_generator_objective_closed_form():
    """``L_G = E U(G(z)) − λ_H·surrogate``; with U(x) = w·x + b, G(z) = z: ∂L_G/∂x_i = w/n − λ_H·c."""
    critic = LinearCritic([1.0, -2.0])
    z = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    estimator = Recorder(c=0.25)
    step = generator_objective(critic, EnergyDifference(), estimator, 2.0, nn.Identity(), z)
    energy = ((z @ critic.w + 0.5).mean()).item()
    assert step.energy.item() == pytest.approx(energy)
    assert step.loss.item() == pytest.approx(energy - 2.0 * 0.25 * z.sum().item())
    assert estimator.seen["z"] is z and estimator.seen["generator"] is None
    (grad,) = torch.autograd.grad(step.loss, z)
    assert torch.allclose(grad, critic.w.detach() / 2 - 2.0 * 0.25)
    estimator.needs_latents = False
    generator_objective(critic, EnergyDifference(), estimator, 1.0, nn.Identity(), z)
    assert estimator.seen["z"] is None
