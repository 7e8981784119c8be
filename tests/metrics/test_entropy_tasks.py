"""Ground-truth entropy tasks (mege.metrics.entropy_tasks) against scipy and autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from mege.data.mixtures import GaussianMixture
from mege.metrics.entropy_tasks import (LinearGaussianTask, MixtureTask, StudentTTask, anisotropic_gaussian,
                                        isotropic_gaussian, ring_mixture, uniform_box, value_tasks)


@pytest.mark.parametrize("task", [isotropic_gaussian(3, std=0.7), anisotropic_gaussian(4, condition=50.0)], ids=str)
def test_gaussian_entropy_samples_and_score(task):
    cov = task.cov.numpy()
    assert task.entropy == pytest.approx(stats.multivariate_normal(cov=cov).entropy(), rel=1e-12)
    torch.manual_seed(0)
    x = task.sample(40000).double()
    assert np.allclose(np.cov(x.numpy().T), cov, atol=0.03 * np.abs(cov).max())
    xs = x[:5].clone().requires_grad_(True)
    log_p = torch.distributions.MultivariateNormal(task.mean, task.cov).log_prob(xs).sum()
    assert torch.allclose(task.score(x[:5]), torch.autograd.grad(log_p, xs)[0])


def test_uniform_box():
    task = uniform_box(3, width=2.5)
    assert task.entropy == pytest.approx(3 * stats.uniform(scale=2.5).entropy())
    torch.manual_seed(1)
    x = task.sample(1000)
    assert float(x.abs().max()) <= 1.25 and float(x.abs().max()) > 1.2


def test_student_t_entropy_matches_the_monte_carlo_of_its_own_samples():
    task = StudentTTask(3, df=5.0, scale=1.5)
    torch.manual_seed(2)
    x = task.sample(100000).double().numpy()
    log_p = stats.multivariate_t(loc=np.zeros(3), shape=1.5**2 * np.eye(3), df=5.0).logpdf(x)
    assert task.entropy == pytest.approx(-log_p.mean(), abs=4 * log_p.std() / math.sqrt(len(x)))


def test_mixture_log_density_and_monte_carlo_truth():
    task = ring_mixture(2, modes=4, radius=1.0, std=0.6, mc_samples=200_000)
    x = task.sample(50).double()
    parts = np.stack([stats.multivariate_normal(mean=c, cov=0.36 * np.eye(2)).logpdf(x.numpy())
                      for c in task.mixture.centres.double().numpy()])
    assert np.allclose(task.log_prob(x).numpy(), logsumexp(parts, axis=0) - math.log(4))
    assert 0 < task.entropy_se < 3e-3
    separated = MixtureTask(GaussianMixture([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]], std=0.5), mc_samples=200_000)
    assert separated.entropy == pytest.approx(math.log(3) + math.log(2 * math.pi * math.e * 0.25), abs=3e-3)


def test_linear_gaussian_entropy_gradient_and_score():
    task = LinearGaussianTask(4, k=3, sigma=0.7, seed=5)
    a = task.generator.A.detach().double().requires_grad_(True)
    c = a @ a.T + 0.49 * torch.eye(4, dtype=torch.float64)
    entropy = 0.5 * torch.logdet(2 * math.pi * math.e * c)
    assert float(entropy.detach()) == pytest.approx(task.entropy, rel=1e-12)
    assert float(entropy.detach()) == pytest.approx(stats.multivariate_normal(cov=c.detach().numpy()).entropy(), rel=1e-12)
    (grad,) = torch.autograd.grad(entropy, a)
    assert torch.allclose(task.true_gradient(), grad)
    torch.manual_seed(3)
    x = task.sample(50000).double()
    assert np.allclose(np.cov(x.numpy().T), c.detach().numpy(), atol=0.03)
    assert torch.allclose(task.score(x[:3]), -(torch.linalg.inv(c.detach()) @ x[:3].T).T, atol=1e-5)


def test_value_tasks_cover_the_issue_list():
    names = [t.name for t in value_tasks()]
    for d in (2, 10, 100):
        assert f"gauss-iso-d{d}" in names and f"gauss-aniso-d{d}" in names and f"linear-gauss-d{d}" in names
    assert any(n.startswith("mixture") for n in names) and any(n.startswith("uniform") for n in names)
    assert any(n.startswith("student-t") for n in names)
