"""Gaussian KDE: values against scipy (gaussian_kde for resubstitution, multivariate_normal for
leave-one-out) to ≤ 1e-4 relative, bandwidth rules against scipy's factors, the learned bandwidth
against a grid search of the leave-one-out likelihood, and the KDE score against −x/(σ² + h²)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import gaussian_kde, multivariate_normal

from mege.entropy.kde import (FixedBandwidth, KDEEntropy, KDEScore, LearnedBandwidth, MedianBandwidth,
                              ScottBandwidth, SilvermanBandwidth, kde_log_density, median_bandwidth)
from mege.errors import MegeError

pytestmark = pytest.mark.usefixtures("single_thread")


def samples(n: int, d: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    mix = torch.randn(d, d) / math.sqrt(d) + torch.eye(d)
    return torch.randn(n, d) @ mix + torch.linspace(-1, 1, d)


@pytest.mark.parametrize("rule, name", [(ScottBandwidth(), "scott"), (SilvermanBandwidth(), "silverman")])
@pytest.mark.parametrize("n, d", [(400, 1), (600, 2), (800, 5), (500, 20)])
def test_resubstitution_matches_scipy_gaussian_kde(rule, name, n, d):
    x = samples(n, d, seed=n + d)
    points = x.double().numpy().T
    ref = -gaussian_kde(points, bw_method=name).logpdf(points).mean()
    ours = float(KDEEntropy(rule, leave_one_out=False, whiten=True)(x).value)
    assert abs(ours - ref) <= 1e-4 * abs(ref)


@pytest.mark.parametrize("n, d", [(300, 2), (500, 6)])
def test_leave_one_out_matches_scipy_normals(n, d):
    x = samples(n, d, seed=7)
    data = x.double().numpy()
    kde = gaussian_kde(data.T)  # scipy's Scott kernel covariance, reused for the leave-one-out sum
    log_k = np.stack([multivariate_normal(mean=xj, cov=kde.covariance).logpdf(data) for xj in data])  # (j, i)
    np.fill_diagonal(log_k, -np.inf)
    ref = -(logsumexp(log_k, axis=0) - math.log(n - 1)).mean()
    ours = float(KDEEntropy(ScottBandwidth(), leave_one_out=True, whiten=True)(x).value)
    assert abs(ours - ref) <= 1e-4 * abs(ref)


def test_unwhitened_fixed_bandwidth_matches_scipy_normals():
    x = samples(400, 3, seed=8)
    h, data = 0.4, x.double().numpy()
    log_k = np.stack([multivariate_normal(mean=xj, cov=h**2 * np.eye(3)).logpdf(data) for xj in data])
    ref = -(logsumexp(log_k, axis=0) - math.log(400)).mean()
    ours = float(KDEEntropy(FixedBandwidth(h), leave_one_out=False, whiten=False)(x).value)
    assert abs(ours - ref) <= 1e-4 * abs(ref)


def test_bandwidth_rules_are_scipys_factors_on_whitened_samples():
    x = samples(700, 4, seed=9).double()
    centred = x - x.mean(0)
    white = torch.linalg.solve_triangular(torch.linalg.cholesky(centred.T @ centred / 699), centred.T, upper=False).T
    for rule, name in ((ScottBandwidth(), "scott"), (SilvermanBandwidth(), "silverman")):
        assert float(rule(white)) == pytest.approx(gaussian_kde(x.numpy().T, bw_method=name).factor, rel=1e-10)
    sq = torch.cdist(x, x).pow(2).numpy()[~np.eye(700, dtype=bool)]
    assert float(MedianBandwidth()(x)) == pytest.approx(math.sqrt(np.median(sq) / (2 * math.log(701))), rel=1e-6)


def test_value_is_differentiable_and_scale_equivariant():
    x = samples(60, 3, seed=10).double().requires_grad_(True)
    est = KDEEntropy(ScottBandwidth(), leave_one_out=True, whiten=True)
    assert torch.autograd.gradcheck(lambda y: est(y).value, (x,), eps=1e-6, atol=1e-6)
    with torch.no_grad():
        assert float(est(3 * x).value - est(x).value) == pytest.approx(3 * math.log(3), abs=1e-8)


def test_learned_bandwidth_reaches_the_leave_one_out_optimum():
    x = samples(400, 2, seed=11)
    est = KDEEntropy(LearnedBandwidth(init_factor=3.0), leave_one_out=True, whiten=True)
    opt = torch.optim.Adam(est.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        est(x).aux_loss.backward()
        opt.step()
    factors = torch.linspace(0.2, 3.0, 281)
    scott = 400 ** (-1 / 6)  # Scott's h on whitened samples (s = 1) in d = 2
    nll = [float(-kde_log_density(x, FixedBandwidth(f * scott), True, True).mean()) for f in factors]
    best = float(factors[int(np.argmin(nll))])
    assert float(est.bandwidth.log_factor.detach().exp()) == pytest.approx(best, abs=0.02)


def test_whitening_needs_more_samples_than_dimensions():
    with pytest.raises(MegeError, match="set whiten=false or enlarge the batch"):
        KDEEntropy()(torch.randn(5, 8))


def test_kde_score_of_a_gaussian_batch_is_the_smoothed_gaussian_score():
    """Score of p ∗ N(0, h²I) for p = N(0, σ²I) is −x/(σ² + h²); in the bulk the KDE gets it within 10 %."""
    torch.manual_seed(12)
    sigma, h = 1.0, 0.5
    x = sigma * torch.randn(4000, 2)
    score = KDEScore(bandwidth=h).score(x)
    bulk = x.norm(dim=1) < 1.5
    expected = -x[bulk] / (sigma**2 + h**2)
    assert float((score[bulk] - expected).norm() / expected.norm()) < 0.1
    assert float(median_bandwidth(x)) > 0
    assert torch.allclose(KDEScore(FixedBandwidth(h)).score(x), score)
