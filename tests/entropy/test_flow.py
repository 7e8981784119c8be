"""Flow entropy: the flow is a normalised density, its score is the gradient of its log-density,
the surrogate's gradient is −score/n, the fitted cross-entropy upper-bounds the entropy of a
non-Gaussian target and comes within 0.1 nats of it where the whitening alone is 1.1 nats off,
and the trainer's repeated fit calls on one tensor see fresh parameters."""

from __future__ import annotations

import math

import pytest
import torch

from mege.entropy.flow import AffineCouplingFlow, FlowEntropy, SplineCouplingFlow
from mege.errors import MegeError

pytestmark = pytest.mark.usefixtures("single_thread")
FLOWS = [AffineCouplingFlow, SplineCouplingFlow]


@pytest.mark.parametrize("family", FLOWS)
def test_flow_density_integrates_to_one(family):
    torch.manual_seed(0)
    flow = family(2, layers=2, hidden=16).double()
    with torch.no_grad():  # away from the identity start, smoothly
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    flow.update_statistics(torch.randn(500, 2, dtype=torch.float64) * torch.tensor([1.0, 0.5]) + 0.3)
    axis = torch.linspace(-9, 9, 501, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        mass = flow.log_prob(grid).exp().sum() * (axis[1] - axis[0]) ** 2
    assert float(mass) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("family", FLOWS)
def test_score_is_the_log_density_gradient_and_drives_the_surrogate(family):
    torch.manual_seed(1)
    est = FlowEntropy(family(3, layers=2, hidden=16)).double()
    with torch.no_grad():
        for p in est.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(20, 3, dtype=torch.float64, requires_grad=True)
    est.eval()
    assert torch.autograd.gradcheck(lambda y: est.flow.log_prob(y), (x,), eps=1e-6, atol=1e-6)
    result = est(x)
    (grad_x,) = torch.autograd.grad(result.surrogate, x)
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        (score,) = torch.autograd.grad(est.flow.log_prob(leaf).sum(), leaf)
    assert torch.allclose(grad_x, -score / 20, atol=1e-12)
    with torch.no_grad():
        assert float(result.value) == pytest.approx(float(-est.flow.log_prob(x).mean()), abs=1e-12)


def banana(n: int, a: float = 1.0, s: float = 0.5) -> torch.Tensor:
    """x₁ ~ N(0, 1), x₂ = a x₁² + s ε: H = ½ log(2πe) + ½ log(2πe s²) (x₂ | x₁ is Gaussian), while the
    Gaussian with the same covariance (Var x₂ = 2a² + s², Cov = a E x₁³ = 0) has ½ log((2a² + s²)/s²)
    = ½ log 9 = 1.10 nats more: the whitening alone is 1.1 nats off; an affine coupling fits it exactly."""
    x1 = torch.randn(n)
    return torch.stack([x1, a * x1**2 + s * torch.randn(n)], dim=1)


def test_fitted_cross_entropy_beats_the_whitening_and_approaches_a_non_gaussian_entropy():
    """Banana target (above): before any optimiser step the flow is the whitened Gaussian (value 3.243);
    after 150 Adam steps the cross-entropy must be within 0.1 nats of H = 2.145 (measured +0.01 to
    +0.04 over learning rates 3e-3–1e-2 and 2–4 layers) and not below it beyond sampling error."""
    truth = 0.5 * math.log(2 * math.pi * math.e) + 0.5 * math.log(2 * math.pi * math.e * 0.25)
    whitened = 0.5 * math.log(2 * math.pi * math.e) + 0.5 * math.log(2 * math.pi * math.e * 2.25)
    torch.manual_seed(2)
    est = FlowEntropy(AffineCouplingFlow(2, layers=2, hidden=32))

    def value() -> tuple[float, float]:
        est.eval()
        with torch.no_grad():
            values = torch.stack([est(banana(4000)).value for _ in range(5)])
        est.train()
        return float(values.mean()), float(values.std() / math.sqrt(5))

    est(banana(4000))  # training mode: sets the whitening statistics, no optimiser step
    start, _ = value()
    assert start == pytest.approx(whitened, abs=0.06)
    opt = torch.optim.Adam(est.parameters(), lr=5e-3)
    for _ in range(150):
        opt.zero_grad()
        est(banana(256)).aux_loss.backward()
        opt.step()
    mean, se = value()
    print(f"banana: whitened {start:.3f}, fitted {mean:.3f} ± {se:.3f}, H = {truth:.3f}")
    assert mean >= truth - 3 * se - 1e-3  # cross-entropy ≥ entropy
    assert mean <= truth + 0.1  # 1 nat better than the whitening


def test_repeated_fit_calls_on_one_tensor_see_updated_parameters():
    """The trainer passes the same detached tensor to every fit step: no stale transform cache."""
    torch.manual_seed(3)
    est = FlowEntropy(SplineCouplingFlow(2, layers=2, hidden=16))
    x = torch.randn(64, 2) * 3
    opt = torch.optim.SGD(est.parameters(), lr=0.1)
    losses = []
    for _ in range(3):
        loss = est(x).aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[0] > losses[1] > losses[2]


@pytest.mark.parametrize("family", FLOWS)
def test_flow_starts_as_the_gaussian_of_the_running_moments(family):
    torch.manual_seed(4)
    flow = family(3, layers=2, hidden=16).double()
    x = torch.randn(500, 3, dtype=torch.float64) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.3]], dtype=torch.float64) + 1
    flow.update_statistics(x)
    gaussian = torch.distributions.MultivariateNormal(flow.running_mean, flow.running_cov)
    with torch.no_grad():
        assert torch.allclose(flow.log_prob(x), gaussian.log_prob(x), atol=1e-2)


def test_statistics_update_in_training_mode_only():
    est = FlowEntropy(AffineCouplingFlow(2, layers=1, hidden=8))
    x = torch.randn(100, 2) + 5
    est.eval()
    est(x)
    assert torch.equal(est.flow.running_mean, torch.zeros(2))
    est.train()
    est(x)
    assert torch.allclose(est.flow.running_mean, x.mean(0))  # first update sets the mean outright
    est(x + 1)
    assert torch.allclose(est.flow.running_mean, x.mean(0) + est.flow.momentum)


def test_one_dimensional_data_is_a_clear_error():
    with pytest.raises(MegeError, match="at least 2 dimensions"):
        AffineCouplingFlow(1)
