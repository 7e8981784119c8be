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

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "metric" / "toy.yaml"


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


def test_hand_built_assigned_kl_and_floors_at_the_counts_that_entered():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    weights = torch.tensor([0.5, 0.25, 0.25])
    samples = torch.tensor([[0.5, 0.0], [0.0, -0.5], [3.1, 0.0],   # nearest 0 (the last not HQ)
                            [10.0, 1.0], [6.0, 0.0],                # nearest 1 (the last not HQ)
                            [0.0, 9.0]])                            # nearest 2
    result = mode_metrics(samples, centres, std=1.0, weights=weights, hq_std=3.0)
    assert result["n_hq"] == 4
    # all six by nearest centre: a = (3/6, 2/6, 1/6)
    a = (0.5, 1 / 3, 1 / 6)
    assigned = a[0] * math.log(a[0] / 0.5) + a[1] * math.log(a[1] / 0.25) + a[2] * math.log(a[2] / 0.25)
    assert result["assigned_kl"] == pytest.approx(assigned, abs=1e-12)
    assert result["reverse_kl_floor"] == pytest.approx(perfect_sampling_floor(weights, 4), abs=1e-12)
    assert result["assigned_kl_floor"] == pytest.approx(perfect_sampling_floor(weights, 6), abs=1e-12)
    # q = (2/4, 1/4, 1/4) = w: KL 0, within 2x the floor
    assert result["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert result["reverse_kl"] <= 2 * result["reverse_kl_floor"]


def test_a_blur_has_a_low_assigned_kl_but_a_reverse_kl_floor_near_the_blur_kl():
    """Uniform noise on the grid-25 box: few HQ samples, whose KL sits at its (large) floor."""
    data = grid25()
    samples = (torch.rand(2500, 2, generator=torch.Generator().manual_seed(0)) * 10 - 5)
    result = mode_metrics(samples, data.centres, data.std, data.weights)
    assert result["n_hq"] < 100
    assert result["reverse_kl_floor"] > 0.1                      # tens of samples: a large floor
    assert result["reverse_kl"] < 2.5 * result["reverse_kl_floor"]
    assert result["assigned_kl"] < 0.02 and result["assigned_kl_floor"] == pytest.approx(0.00481, rel=0.02)


@pytest.mark.parametrize(("k", "n"), [(25, 67), (8, 10), (3, 5)])
def test_perfect_sampling_floor_at_small_n_matches_monte_carlo(k, n):
    w = np.arange(1, k + 1, dtype=float)
    w /= w.sum()
    counts = np.random.default_rng(1).multinomial(n, w, size=40000)
    q = counts / n
    kl = np.where(q > 0, q * np.log(np.where(q > 0, q, 1) / w), 0.0).sum(axis=1)
    floor = perfect_sampling_floor(w, n)
    assert floor == pytest.approx(kl.mean(), abs=4 * kl.std() / np.sqrt(len(kl)))
    if k == 25:
        assert 0.15 < floor < 0.25  # the ~0.2 that a 2.7 % HQ blur's KL sits on


def test_standardised_mixture_is_scored_in_data_units():
    raw, scaled = grid25(), grid25(scale=2.828)
    torch.manual_seed(0)
    x = scaled.sample(4000)
    assert float(x.abs().max()) < 4.5 / 2.828 + 0.3          # networks see the standardised grid
    metric = ToyModeMetrics(n_samples=2000)
    result = metric(lambda n: scaled.sample(n), scaled)
    assert result["modes"] == 25 and result["hq_fraction"] > 0.98
    assert result["assigned_kl"] < 3 * result["assigned_kl_floor"]
    assert torch.equal(scaled.centres, raw.centres) and scaled.std == raw.std
    with pytest.raises(MegeError, match="scale must be a positive"):
        grid25(scale=0)
