"""Toy mode metrics against hand-computed values, and the perfect-sampling floor."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mege.data.mixtures import SwissRoll, custom, grid25, ring8
from mege.errors import MegeError
from mege.metrics.toy import ToyModeMetrics, mode_metrics, perfect_sampling_floor

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "metric" / "toy.yaml"


@pytest.mark.parametrize("make", [ring8, grid25])
def test_one_point_at_each_centre_covers_every_mode_with_zero_divergence(make):
    data = make()
    k = data.centres.shape[0]
    samples = data.centres.repeat(3, 1)  # equal counts, exactly on the centres
    result = mode_metrics(samples, data.centres, data.std, data.weights)
    assert result["modes"] == k and result["n_modes"] == k
    assert result["hq_fraction"] == 1.0
    assert abs(result["reverse_kl"]) < 1e-9
    assert abs(result["js"]) < 1e-9
    assert result["n_samples"] == 3 * k


@pytest.mark.parametrize("make", [ring8, grid25])
def test_all_samples_in_one_mode_give_log_k(make):
    data = make()
    k = data.centres.shape[0]
    samples = data.centres[3] + 0.5 * data.std * torch.randn(100, 2).clamp(-1, 1)
    result = mode_metrics(samples, data.centres, data.std, None)
    assert result["modes"] == 1
    assert result["hq_fraction"] == 1.0
    assert result["reverse_kl"] == pytest.approx(math.log(k), abs=1e-9)
    # JS between a point mass and uniform on k: ½ ln(2k/(k+1)) + ½ ((k−1)/k ln 2 + 1/k ln(2/(k+1)))
    js = 0.5 * math.log(2 * k / (k + 1)) + 0.5 * ((k - 1) / k * math.log(2) + math.log(2 / (k + 1)) / k)
    assert result["js"] == pytest.approx(js, abs=1e-9)


def test_far_away_samples_are_not_high_quality():
    data = ring8()
    samples = torch.full((50, 2), 10.0)
    result = mode_metrics(samples, data.centres, data.std, data.weights)
    assert result["modes"] == 0 and result["hq_fraction"] == 0.0
    assert math.isnan(result["reverse_kl"]) and math.isnan(result["js"])


def test_empty_sample_set_does_not_crash():
    data = grid25()
    result = mode_metrics(torch.empty(0, 2), data.centres, data.std, data.weights)
    assert result["modes"] == 0 and result["n_samples"] == 0
    assert math.isnan(result["reverse_kl"]) and math.isnan(result["js"])


def test_hand_built_mixed_case():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    weights = torch.tensor([0.5, 0.25, 0.25])
    samples = torch.tensor([
        [0.5, 0.0], [0.0, -0.5], [0.0, 0.0],  # mode 0
        [2.9, 0.0],                           # mode 0, just inside 3 std
        [3.1, 0.0],                           # just outside 3 std: not HQ
        [10.0, 1.0],                          # mode 1
        [5.0, 5.0],                           # between modes: not HQ
    ])
    result = mode_metrics(samples, centres, std=1.0, weights=weights, hq_std=3.0)
    assert result["modes"] == 2
    assert result["hq_fraction"] == pytest.approx(5 / 7)
    # q = (0.8, 0.2, 0), w = (0.5, 0.25, 0.25)
    kl = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.25)
    m = (0.65, 0.225, 0.125)
    js = 0.5 * (0.8 * math.log(0.8 / m[0]) + 0.2 * math.log(0.2 / m[1])) + 0.5 * (
        0.5 * math.log(0.5 / m[0]) + 0.25 * math.log(0.25 / m[1]) + 0.25 * math.log(0.25 / m[2]))
    assert result["reverse_kl"] == pytest.approx(kl, abs=1e-12)
    assert result["js"] == pytest.approx(js, abs=1e-12)
    # a looser threshold makes the 3.1 point HQ too: q = (5/6, 1/6, 0)
    loose = mode_metrics(samples, centres, std=1.0, weights=weights, hq_std=3.2)
    assert loose["hq_fraction"] == pytest.approx(6 / 7)
    assert loose["reverse_kl"] == pytest.approx(5 / 6 * math.log(5 / 3) + 1 / 6 * math.log(2 / 3), abs=1e-12)


@pytest.mark.parametrize(("k", "design"), [(25, 0.0046), (8, 0.0014)])
def test_perfect_sampling_floor_matches_design_and_monte_carlo(k, design):
    floor = perfect_sampling_floor(torch.ones(k), 2500)
    assert floor == pytest.approx(design, rel=0.1)
    assert floor == pytest.approx((k - 1) / (2 * 2500), rel=0.02)  # large-n asymptote
    counts = np.random.default_rng(0).multinomial(2500, np.full(k, 1 / k), size=4000)
    q = counts / 2500
    kl = np.where(q > 0, q * np.log(np.where(q > 0, q, 1) * k), 0.0).sum(axis=1)
    assert floor == pytest.approx(kl.mean(), abs=4 * kl.std() / np.sqrt(len(kl)))


def test_perfect_sampling_floor_small_case_by_enumeration():
    # n = 2 draws from w = (0.5, 0.5): q = (1,0),(0,1) with prob ¼ each (KL ln 2), (½,½) with prob ½ (KL 0)
    assert perfect_sampling_floor([1.0, 1.0], 2) == pytest.approx(0.5 * math.log(2), abs=1e-12)


def test_stacked_mnist_floor_matches_design():
    assert perfect_sampling_floor(torch.ones(1000), 26000) == pytest.approx(0.0194, rel=0.01)


def test_exact_data_samples_average_to_the_floor():
    data = grid25()
    metric = ToyModeMetrics(n_samples=2500)
    torch.manual_seed(0)
    kls = [metric(data.sample, data)["reverse_kl"] for _ in range(60)]
    floor = perfect_sampling_floor(data.weights, 2500)
    assert np.mean(kls) == pytest.approx(floor, rel=0.15)


def test_toy_metric_draws_n_samples_and_writes_a_protocol_card():
    data = custom([[0.0, 0.0], [4.0, 0.0]], std=0.1)
    asked = []

    def generate(n):
        asked.append(n)
        return torch.tensor([[0.0, 0.0], [4.0, 0.0]], dtype=torch.float64).repeat(n // 2, 1).requires_grad_()

    result = ToyModeMetrics(n_samples=10, hq_std=3.0)(generate, data)
    assert asked == [10]
    assert result["modes"] == 2 and result["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    protocol = result["protocol"]
    assert protocol["n_samples"] == 10 and protocol["log_base"] == "e"
    assert protocol["hq_threshold"] == "3 std of nearest centre"
    assert "KL(p_gen_HQ || p_data)" in protocol["kl"]
    assert protocol["perfect_sampling_floor"] == pytest.approx(perfect_sampling_floor([1, 1], 10))


def test_toy_metric_refuses_data_without_modes():
    with pytest.raises(MegeError, match="data=ring8"):
        ToyModeMetrics()(lambda n: torch.zeros(n, 2), SwissRoll())


def test_wrong_dimension_raises():
    data = ring8()
    with pytest.raises(MegeError, match="coordinates"):
        mode_metrics(torch.zeros(5, 3), data.centres, data.std)


def test_large_sample_sets_are_fast():
    import time

    data = grid25()
    torch.manual_seed(0)
    samples = data.sample(100_000)
    start = time.perf_counter()
    result = mode_metrics(samples, data.centres, data.std, data.weights)
    assert time.perf_counter() - start < 2.0
    assert result["modes"] == 25
    assert result["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.003)  # P(χ²₂ ≤ 9)


def test_config_instantiates():
    metric = instantiate(OmegaConf.load(CONFIG))
    assert isinstance(metric, ToyModeMetrics)
    assert metric.n_samples == 2500 and metric.hq_std == 3.0
