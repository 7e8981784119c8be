"""Stein and spectral Stein score estimators: agreement with the true score of a Gaussian, the
entropy gradient of the linear-Gaussian generator, and the symmetries of a score estimate."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mege.entropy.stein import MedianDistanceBandwidth, SSGEScore, SteinScore
from mege.metrics.entropy_tasks import LinearGaussianTask, anisotropic_gaussian

pytestmark = pytest.mark.usefixtures("single_thread")
ESTIMATORS = [SteinScore(eta=0.1), SSGEScore(energy=0.95)]


def cosine(a, b) -> float:
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_score_of_a_gaussian_batch(estimator):
    torch.manual_seed(0)
    task = anisotropic_gaussian(2, condition=4.0)
    x = task.sample(600)
    score, truth = estimator.score(x), task.score(x)
    assert cosine(score, truth) > 0.9  # measured 0.92 for both at n = 600
    assert 0.8 < float(score.norm() / truth.norm()) < 1.2


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_linear_gaussian_entropy_gradient_cosine(estimator):
    """Surrogate gradient w.r.t. A of x = Az + σε against the closed form ∇_A H = C⁻¹A (d = 5)."""
    torch.manual_seed(1)
    task = LinearGaussianTask(5)
    g = task.generator
    z = g.sample_latent(800)
    (grad,) = torch.autograd.grad(estimator(g(z)).surrogate, g.A)
    assert cosine(grad, task.true_gradient()) > 0.95


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_translation_invariance_and_scale_covariance(estimator):
    """ŝ(x + c) = ŝ(x) and ŝ(a x) = ŝ(x)/a: the median bandwidth scales with the samples."""
    torch.manual_seed(2)
    x = torch.randn(200, 3, dtype=torch.float64)
    base = estimator.score(x)
    assert torch.allclose(estimator.score(x + 3.0), base, atol=1e-8)
    assert torch.allclose(estimator.score(2.0 * x), base / 2.0, atol=1e-8)


def test_median_distance_bandwidth_by_hand():
    x = torch.tensor([[0.0], [1.0], [3.0]])  # squared distances off the diagonal: 1, 9, 4 (twice each)
    assert float(MedianDistanceBandwidth(scale=2.0)(x)) == pytest.approx(2.0 * (4.0 / 2) ** 0.5)


def test_stein_estimator_on_two_points_by_hand():
    """n = 2 in 1-D: K = [[1, k], [k, 1]], ⟨∇,K⟩ = k (x₁ − x₂)/h² · (1, −1), Ĝ = −(K + ηI)⁻¹⟨∇,K⟩."""
    x = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    h2 = 4.0 / 2  # median squared distance / 2
    k = torch.exp(torch.tensor(-4.0 / (2 * h2), dtype=torch.float64))
    eta = 0.1
    kernel = torch.tensor([[1.0, k], [k, 1.0]], dtype=torch.float64) + eta * torch.eye(2, dtype=torch.float64)
    div = torch.tensor([[k * (0 - 2) / h2], [k * (2 - 0) / h2]], dtype=torch.float64)
    assert torch.allclose(SteinScore(eta=eta).score(x), -torch.linalg.solve(kernel, div))
