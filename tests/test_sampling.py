r"""Latent MCMC of a run (mege.sampling): refine, the noisy generator's latent, the metric wrapper, configs.

The target is the closed-form Gaussian of ``conftest`` (identity generator, quadratic energy).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import A, M, Identity, StubRun, gaussian_target, quadratic
from mege.generators import NoisyGenerator
from mege.sampling import LatentMCMC, latent_map, refine


def Noisy(sigma: float) -> NoisyGenerator:
    """x = z + σ ε: the noisy generator type around the identity."""
    return NoisyGenerator(Identity(), sigma=sigma)


class Quadratic(nn.Module):
    def forward(self, x):
        return quadratic(x)


def test_refine_samples_the_pulled_back_energy():
    torch.manual_seed(8)
    mean, var = gaussian_target(1.0)
    generator, critic = Identity(), Quadratic()
    generator.train()
    x, result = refine(generator, critic, n=3000, steps=200, batch_size=1000, return_result=True)
    assert generator.training  # training flag restored
    assert result.z.shape == (3000, 3) and result.chain is None
    assert ((x.mean(0) - mean).abs() < 5 * (var / 3000).sqrt()).all()
    assert ((x.var(0) - var).abs() < 5 * math.sqrt(2 / 3000) * var).all()
    plain = refine(generator, critic, n=3000, steps=0)
    assert (plain.var(0) - 1).abs().max() < 5 * math.sqrt(2 / 3000)


def test_noisy_generator_moves_noise_with_latent():
    """x = z + σε with (z, ε) ~ N(0, I): the x-prior is N(0, 1 + σ²), so x has precision 1/(1+σ²) + A."""
    torch.manual_seed(9)
    sigma = 0.5
    generator = Noisy(sigma)
    lmap = latent_map(generator)
    assert lmap.dim == 6 and lmap.noise_shape == (3,)
    x = refine(generator, Quadratic(), n=3000, steps=200)
    precision = 1 / (1 + sigma**2) + A
    mean, var = A * M / precision, 1 / precision
    print(f"noisy generator: mean {x.mean(0).numpy().round(3)} vs {mean.numpy().round(3)}, var {x.var(0).numpy().round(3)} vs {var.numpy().round(3)}")
    assert ((x.mean(0) - mean).abs() < 5 * (var / 3000).sqrt()).all()
    assert ((x.var(0) - var).abs() < 5 * math.sqrt(2 / 3000) * var).all()


def test_latent_mcmc_metric_wrapper():
    torch.manual_seed(10)

    def mean_metric(generate, data):
        x = generate(2000)
        return {"mean_0": float(x[:, 0].mean()), "protocol": {"n": 2000}}

    generator, critic = Identity(), Quadratic()
    plain = LatentMCMC(mean_metric, generator, critic, steps=0)(None, None)
    refined = LatentMCMC(mean_metric, generator, critic, steps=100)(None, None)
    assert abs(plain["mean_0"]) < 5 / math.sqrt(2000)
    assert abs(refined["mean_0"] - 0.5) < 5 * math.sqrt(0.5 / 2000)
    assert refined["protocol"]["n"] == 2000
    assert refined["protocol"]["latent_mcmc"]["steps"] == 100
    assert 0.3 < refined["mcmc_accept_rate"] < 0.8



@pytest.mark.parametrize("name", ["mala", "nuts"])
def test_sampling_configs_build_a_latent_mcmc_metric(name):
    from pathlib import Path

    from omegaconf import OmegaConf

    from mege.config import instantiate

    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "configs" / "sampling" / f"{name}.yaml")
    cfg.steps = 30 if name == "mala" else 20
    run = StubRun()
    if name == "nuts":  # pyro: one joint state per batch of 50 chains, slow per step; fewer samples
        from mege.metrics.toy import ToyModeMetrics

        run.metric = ToyModeMetrics(n_samples=100)
    torch.manual_seed(12)
    metric = instantiate(cfg)(metric=run.metric, generator=run.generator, critic=run.critic)
    plain = run.metric(lambda n: run.generator(torch.randn(n, 2)), run.data)
    refined = metric(None, run.data)
    print(f"sampling={name}: HQ {plain['hq_fraction']:.3f} -> {refined['hq_fraction']:.3f}, "
          f"acceptance {refined['mcmc_accept_rate']:.3f}")
    assert refined["protocol"]["latent_mcmc"]["sampler"] == name
    assert refined["hq_fraction"] > plain["hq_fraction"] + 0.2
