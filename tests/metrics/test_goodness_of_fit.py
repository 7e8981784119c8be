"""The exact-sampling G-test beside toy KLs, against closed forms and a simulation of exact sampling."""

import math

import numpy as np
import pytest
from scipy import stats

from mege.metrics.goodness_of_fit import exact_sampling_p, g_statistic, pooled_exact_sampling_p


def kl(counts, p):
    q = counts / counts.sum()
    nz = q > 0
    return float(np.sum(q[nz] * np.log(q[nz] / p[nz])))


def test_g_equals_scipys_g_test_on_a_histogram():
    counts = np.array([30, 20, 25, 15, 10])
    p = np.full(5, 0.2)
    g, pvalue = stats.power_divergence(counts, f_exp=p * counts.sum(), lambda_="log-likelihood")
    assert g_statistic(kl(counts, p), counts.sum()) == pytest.approx(g, rel=1e-12)
    assert exact_sampling_p(kl(counts, p), counts.sum(), 5) == pytest.approx(pvalue, rel=1e-10)


def test_exact_sampling_gives_uniform_p_values():
    """Histograms drawn exactly from 25 equal modes: about 5 % of p-values fall below 0.05 (χ² approximation)."""
    rng = np.random.default_rng(0)
    p = np.full(25, 1 / 25)
    ps = np.array([exact_sampling_p(kl(rng.multinomial(2500, p), p), 2500, 25) for _ in range(2000)])
    assert 0.035 <= float((ps < 0.05).mean()) <= 0.065
    assert 0.45 <= float(np.median(ps)) <= 0.55


def test_pooling_sums_g_and_degrees_of_freedom():
    """Issue 21's example: five 25-mode seeds with G summing to 177.7 on 120 df give p ≈ 5e-4."""
    per_seed = [(177.7 / 5 / (2 * 2500), 2500, 25)] * 5
    assert pooled_exact_sampling_p(per_seed) == pytest.approx(stats.chi2.sf(177.7, 120), rel=1e-9)
    assert 3e-4 < pooled_exact_sampling_p(per_seed) < 7e-4
    assert math.isnan(pooled_exact_sampling_p([(0.1, 0, 25)])) and math.isnan(exact_sampling_p(0.1, 100, 1))
