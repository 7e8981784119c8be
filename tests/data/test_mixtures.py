"""Toy data: exact centres, sample moments, weights, validation, configs."""

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy import stats

from mege.data.mixtures import GaussianMixture, SwissRoll, custom, grid25, ring8
from mege.errors import MegeError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def test_ring8_has_eight_distinct_centres_on_the_unit_circle_at_2pi_k_over_8():
    data = ring8()
    assert data.centres.shape == (8, 2)
    assert data.shape == (2,)
    for k, centre in enumerate(data.centres.tolist()):
        assert centre == pytest.approx([math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)], abs=1e-6)
    assert torch.linalg.vector_norm(data.centres, dim=1) == pytest.approx([1.0] * 8, abs=1e-6)
    # distinct: the smallest pairwise distance is the chord 2 sin(π/8), not 0 (the linspace endpoint bug)
    distances = torch.cdist(data.centres, data.centres) + 10 * torch.eye(8)
    assert float(distances.min()) == pytest.approx(2 * math.sin(math.pi / 8), abs=1e-6)
    assert data.std == 0.01
    assert data.weights.tolist() == pytest.approx([1 / 8] * 8)


def test_grid25_has_exactly_the_25_centres():
    data = grid25()
    expected = {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert {tuple(c) for c in data.centres.tolist()} == expected
    assert data.centres.shape == (25, 2)
    assert data.std == 0.05


def test_one_centre_mixture_sample_mean_and_std_match():
    torch.manual_seed(0)
    data = custom([[3.0, -1.0, 0.5]], std=0.2)
    x = data.sample(20000)
    assert x.shape == (20000, 3) and x.dtype == torch.float32
    # standard error of the mean is 0.2/sqrt(20000) ≈ 0.0014; of the std ≈ 0.001
    assert x.mean(0).tolist() == pytest.approx([3.0, -1.0, 0.5], abs=0.01)
    assert x.std(0).tolist() == pytest.approx([0.2, 0.2, 0.2], abs=0.01)


def test_weights_are_honoured_chi_square():
    torch.manual_seed(1)
    data = custom([[-10.0, 0.0], [0.0, 0.0], [10.0, 0.0]], std=0.1, weights=[2.0, 1.0, 1.0])
    assert data.weights.tolist() == pytest.approx([0.5, 0.25, 0.25])
    x = data.sample(8000)
    nearest = torch.cdist(x, data.centres).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=3).numpy()
    result = stats.chisquare(counts, f_exp=8000 * data.weights.double().numpy())
    assert result.pvalue > 1e-3, counts


def test_sampling_is_reproducible_with_the_global_seed():
    data = grid25()
    torch.manual_seed(5)
    a = data.sample(10)
    torch.manual_seed(5)
    b = data.sample(10)
    assert torch.equal(a, b)
    assert data.sample(0).shape == (0, 2)


@pytest.mark.parametrize("std", [0.0, -0.1, float("nan")])
def test_non_positive_std_raises(std):
    with pytest.raises(MegeError, match="std"):
        GaussianMixture([[0.0, 0.0]], std=std)


@pytest.mark.parametrize(
    ("centres", "weights", "match"),
    [
        ([[0.0, 0.0], [1.0, 1.0]], [1.0, -1.0], "non-negative"),
        ([[0.0, 0.0], [1.0, 1.0]], [0.0, 0.0], "positive sum"),
        ([[0.0, 0.0], [1.0, 1.0]], [1.0], "one entry per centre"),
        ([], None, "non-empty"),
        ([[0.0, float("inf")]], None, "finite"),
        ([[0.0, 0.0], [1.0]], None, "equal-length"),
    ],
)
def test_bad_mixtures_raise_one_line_errors(centres, weights, match):
    with pytest.raises(MegeError, match=match) as error:
        GaussianMixture(centres, std=0.1, weights=weights)
    assert "\n" not in str(error.value)


def test_swiss_roll_lies_on_the_scaled_curve():
    torch.manual_seed(2)
    roll = SwissRoll(noise=0.0)
    x = roll.sample(5000)
    assert roll.shape == (2,) and x.shape == (5000, 2)
    # without noise, |x| / scale = t ∈ [1.5π, 4.5π]
    t = torch.linalg.vector_norm(x, dim=1) / roll.scale
    assert float(t.min()) >= 1.5 * math.pi - 1e-3 and float(t.max()) <= 4.5 * math.pi + 1e-3
    assert torch.allclose(x, roll.scale * t[:, None] * torch.stack([t.cos(), t.sin()], dim=1), atol=1e-4)
    assert float(x.abs().max()) < 2.1
    assert not hasattr(roll, "centres")


@pytest.mark.parametrize("name", ["ring8", "grid25", "swiss_roll", "custom"])
def test_configs_instantiate(name):
    data = instantiate(OmegaConf.load(CONFIGS / f"{name}.yaml"))
    torch.manual_seed(0)
    assert data.sample(7).shape == (7, *data.shape)


def test_custom_config_keeps_its_centres_and_weights():
    data = instantiate(OmegaConf.load(CONFIGS / "custom.yaml"))
    assert data.centres.tolist() == [[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]]
    assert data.weights.tolist() == pytest.approx([0.5, 0.25, 0.25])
