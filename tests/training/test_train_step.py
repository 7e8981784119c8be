r"""One training step against closed forms, through the real trainer.

A linear critic ``U(x) = wᵀx`` held fixed (critic learning rate 0), an affine generator
``G(z) = A z + b`` started at the identity, the energy-difference loss (generator loss
``E_q U``) and a recording estimator with the quadratic surrogate ``S = ½ mean_i ‖x_i‖²`` give

    L_G = wᵀ(A z̄ + b) − λ_H · ½ mean_i ‖A z_i + b‖²,
    ∂L_G/∂A = w z̄ᵀ − λ_H · mean_i x_i z_iᵀ,        ∂L_G/∂b = w − λ_H · x̄,

with λ_H the schedule ``lambda_h → lambda_h_end`` at the current step. EMA metrics are checked on
a generator with A = 0 (samples are the constant b), so the metric of the averaged weights is
the averaged b in closed form. The learned σ of the noisy generator: on ``x = σε`` the k-NN value
shifts by exactly ``d log σ``, so ``∂Ĥ/∂log σ = d``. Lazy regularisation: with the zero-centred
real penalty λ E‖∇U‖² = λ‖w‖² on the linear critic, every k-th critic update carries k·λ‖w‖² and
the others none.
"""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from mege.energy.losses import EnergyDifference
from mege.entropy.base import EntropyEstimator, EntropyResult
from mege.entropy.knn import KLEntropy
from mege.generators import Generator, NoisyGenerator
from mege.objectives import generator_objective
from mege.training import Trainer, trainer_from_config

pytestmark = pytest.mark.usefixtures("single_thread")
W = [0.7, -1.3]


class LinearCritic(nn.Module):
    """``U(x) = wᵀx`` (one energy per sample)."""

    def __init__(self, w: list[float]):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return x @ self.w


class AffineGenerator(Generator):
    """``G(z) = A z + b``, A = I and b = 0 at the start."""

    def __init__(self, dim: int = 2):
        super().__init__()
        self.latent_dim = dim
        self.A = nn.Parameter(torch.eye(dim))
        self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, z):
        return z @ self.A.T + self.b


class QuadraticRecorder(EntropyEstimator):
    """Surrogate ``½ mean_i ‖x_i‖²``; keeps the last (x, z) it was called with."""

    needs_latents = True

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x, z=None, generator=None):
        self.calls.append((x.detach().clone(), z.detach().clone()))
        return EntropyResult(surrogate=0.5 * x.pow(2).sum(dim=1).mean())


class MeanMetric:
    """The per-coordinate mean of 500 samples from ``generate``."""

    def __call__(self, generate, data):
        return {"mean": generate(500).mean(dim=0).tolist()}


def trainer_for(make_cfg, tmp_path, *overrides: str, penalty: str = "none") -> Trainer:
    cfg = make_cfg("loss=energy_difference", f"penalty={penalty}", "optim.critic.lr=0.0", "optim.schedule=null",
                   f"allowed_targets=[{__name__}.]", *overrides)
    cfg.energy = OmegaConf.create({"_target_": f"{__name__}.LinearCritic", "w": W})
    cfg.generator = OmegaConf.create({"_target_": f"{__name__}.AffineGenerator", "dim": 2})
    cfg.entropy = OmegaConf.create({"_target_": f"{__name__}.QuadraticRecorder"})
    cfg.metric = OmegaConf.create({"_target_": f"{__name__}.MeanMetric"})
    return trainer_from_config(cfg, tmp_path)


def closed_form(x: torch.Tensor, z: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(∂L_G/∂A, ∂L_G/∂b, L_G) for the batch (x, z) in float64."""
    x, z, w = x.double(), z.double(), torch.tensor(W, dtype=torch.float64)
    grad_a = torch.outer(w, z.mean(0)) - lam * x.T @ z / len(x)
    grad_b = w - lam * x.mean(0)
    loss = float((x @ w).mean() - lam * 0.5 * x.pow(2).sum(1).mean())
    return grad_a, grad_b, loss


def test_generator_gradient_is_energy_minus_lambda_h_times_surrogate_on_schedule(make_cfg, tmp_path):
    trainer = trainer_for(make_cfg, tmp_path, "lambda_h=2.0", "lambda_h_end=0.5", "train.steps=4", "ema_decay=null")
    g, est = trainer.generator, trainer.estimator
    assert torch.equal(trainer.critic.w.detach(), torch.tensor(W))
    for step, lam in ((0, 2.0), (3, 2.0 + (0.5 - 2.0) * 3 / 4)):  # λ_H linear over train.steps: 2 → 0.875
        trainer.step = step
        logs = trainer.train_step()
        x, z = est.calls[-1]
        if step == 0:
            assert torch.equal(x, z)  # the identity generator
        grad_a, grad_b, loss = closed_form(x, z, lam)
        assert torch.allclose(g.A.grad.double(), grad_a, atol=1e-5), (step, g.A.grad, grad_a)
        assert torch.allclose(g.b.grad.double(), grad_b, atol=1e-5), (step, g.b.grad, grad_b)
        assert float(logs["generator_loss"]) == pytest.approx(loss, abs=1e-5)
        assert float(logs["generator_energy"]) == pytest.approx(float((x.double() @ torch.tensor(W).double()).mean()), abs=1e-5)
        # the entropy term is not small here: without it the gradient would be off by λ_H·x̄
        assert float((grad_b - torch.tensor(W, dtype=torch.float64)).norm()) > 0.05
    assert torch.equal(trainer.critic.w.detach(), torch.tensor(W))  # the critic stayed fixed


def test_ema_metrics_come_from_the_averaged_weights(make_cfg, tmp_path):
    """Raw b = (1, 2), EMA b = (−3, 0.5), A = 0 in both: every sample is b, so the metric is b."""
    decay = 0.9
    trainer = trainer_for(make_cfg, tmp_path, f"ema_decay={decay}", "optim.generator.lr=0.0", "lambda_h=0.3")
    raw, ema = trainer.generator, trainer.ema.module
    b_raw, b_ema = torch.tensor([1.0, 2.0]), torch.tensor([-3.0, 0.5])
    with torch.no_grad():
        raw.A.zero_(), ema.A.zero_()
        raw.b.copy_(b_raw), ema.b.copy_(b_ema)
    trainer.ema.updates = 1  # the average has started: the next update is a lerp, not a copy
    result = trainer.evaluate(plot=False)
    assert result["metrics"]["mean"] == pytest.approx(b_raw.tolist(), abs=1e-6)
    assert result["ema_metrics"]["mean"] == pytest.approx(b_ema.tolist(), abs=1e-6)

    trainer.train_step()  # generator lr 0: raw weights stay, the average moves one EMA step towards them
    assert torch.equal(raw.b.detach(), b_raw)
    expected = decay * b_ema + (1 - decay) * b_raw  # (−2.6, 0.65)
    result = trainer.evaluate(plot=False)
    assert result["metrics"]["mean"] == pytest.approx(b_raw.tolist(), abs=1e-6)
    assert result["ema_metrics"]["mean"] == pytest.approx(expected.tolist(), abs=1e-5)


class ZeroBase(Generator):
    """``G(z) = 0`` in 2-d: the noisy generator's samples are exactly σε."""

    latent_dim = 2

    def forward(self, z):
        return torch.zeros(z.shape[0], 2)


def test_learned_sigma_gets_the_entropy_gradient():
    """x = σε: Ĥ_kNN(σε) = Ĥ_kNN(ε) + d log σ exactly, so ∂Ĥ/∂log σ = d = 2, and through
    L_G = E U − λ_H Ĥ with U ≡ 0 the generator gradient on log σ is −λ_H d."""
    torch.manual_seed(0)
    generator = NoisyGenerator(ZeroBase(), sigma=0.3, learn_sigma=True)
    assert [name for name, _ in generator.named_parameters()] == ["log_sigma"]
    z = generator.sample_latent(400)
    result = KLEntropy(k=3)(generator(z))
    (grad,) = torch.autograd.grad(result.surrogate, generator.log_sigma)
    assert float(grad) == pytest.approx(2.0, abs=1e-4)

    critic = LinearCritic([0.0, 0.0])
    step = generator_objective(critic, EnergyDifference(), KLEntropy(k=3), 0.5, generator, z)
    step.loss.backward()
    assert float(generator.log_sigma.grad) == pytest.approx(-0.5 * 2.0, abs=1e-4)
    assert math.isfinite(float(step.entropy.value.detach()))


@pytest.mark.parametrize("every", [1, 3])
def test_lazy_penalty_every_kth_critic_update_scaled_by_k(make_cfg, tmp_path, every):
    """penalty_every = k: critic update i (counted over steps × critic_steps) carries k·λ‖w‖² when
    i ≡ 0 mod k and no penalty otherwise, so the expected penalty per update stays λ‖w‖²."""
    weight = 0.5
    trainer = trainer_for(make_cfg, tmp_path, f"penalty.weight={weight}", f"train.penalty_every={every}",
                          "train.critic_steps=2", "ema_decay=null", penalty="real_zero")
    full = weight * sum(w * w for w in W)  # λ‖∇_x wᵀx‖² = λ‖w‖² = 1.09
    seen = []
    original = trainer.penalty.forward
    trainer.penalty.forward = lambda *args: seen.append(1) or original(*args)  # counts the penalty's evaluations
    penalties = []
    for step in range(3):  # critic updates 0..5
        trainer.step = step
        penalties.append(float(trainer.train_step()["penalty"]))  # the last critic update of the step
    expected = [every * full if (2 * step + 1) % every == 0 else 0.0 for step in range(3)]
    assert penalties == pytest.approx(expected, abs=1e-6)
    assert len(seen) == sum(1 for i in range(6) if i % every == 0)  # skipped updates take no input gradient
