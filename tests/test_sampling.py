r"""Latent MCMC against closed-form Gaussian targets.

Identity "generator" G(z) = z and quadratic energy U(x) = ½ (x − m)ᵀ A (x − m), A diagonal:
the target N(z; 0, I)·exp(−U(z)/T) is Gaussian with precision Λ = I + A/T and mean
Λ⁻¹ (A/T) m. Tolerances come from the chains: chains are independent, so a statistic averaged
over each chain's kept states and then compared across chains has a standard error
std(per-chain averages)/√n_chains, which accounts for autocorrelation along each chain (the
effective sample size is printed). A second check uses only the final state of each chain,
treated as n independent draws: SE(mean) = σ/√n and SE(var) = √(2/n)·σ².
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mege.errors import MegeError
from mege.generators import NoisyGenerator
from mege.sampling import LatentMCMC, hmc, latent_map, mala, nuts, refine

A = torch.tensor([1.0, 4.0, 9.0])
M = torch.tensor([1.0, -2.0, 0.5])


def quadratic(z: torch.Tensor) -> torch.Tensor:
    """U(x) = ½ (x − m)ᵀ diag(A) (x − m)."""
    return 0.5 * ((z - M) ** 2 * A).sum(dim=1)


def gaussian_target(temperature: float, prior: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance (diagonal) of N(0, I)^prior · exp(−U/T)."""
    precision = A / temperature + (1.0 if prior else 0.0)
    return (A / temperature) * M / precision, 1.0 / precision


def chain_z_scores(chain: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, label: str) -> tuple[torch.Tensor, torch.Tensor]:
    """z-scores of the pooled mean and variance using per-chain averages (batch means over chains)."""
    kept, n_chains = chain.shape[:2]
    chain_mean = chain.mean(dim=0)  # (chains, d)
    chain_sq = ((chain - mean) ** 2).mean(dim=0)
    se_mean = chain_mean.std(dim=0) / math.sqrt(n_chains)
    se_var = chain_sq.std(dim=0) / math.sqrt(n_chains)
    z_mean = (chain_mean.mean(dim=0) - mean) / se_mean
    z_var = (chain_sq.mean(dim=0) - var) / se_var
    ess = var / (chain_mean.var(dim=0))  # per chain, from Var(chain average) = σ²/ESS
    print(f"{label}: {n_chains} chains x {kept} kept states, ESS/chain {ess.numpy().round(1)}, "
          f"z(mean) {z_mean.numpy().round(2)}, z(var) {z_var.numpy().round(2)}, "
          f"var ratio {(chain_sq.mean(dim=0) / var).numpy().round(3)}")
    return z_mean, z_var


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_mala_reproduces_gaussian_target(temperature):
    torch.manual_seed(0)
    mean, var = gaussian_target(temperature)
    n = 2000
    result = mala(quadratic, torch.randn(n, 3), steps=300, step_size=0.05, temperature=temperature, warmup=100)
    stats = result.stats()
    print(f"T={temperature}: acceptance {stats['accept_rate']:.3f} (warm-up {stats['warmup_accept_rate']:.3f}), "
          f"step size median {stats['step_size_median']:.3f}")
    assert abs(stats["accept_rate"] - 0.574) < 0.05  # adaptation reached its target

    z_mean, z_var = chain_z_scores(result.chain[-150:], mean, var, f"MALA T={temperature}")
    assert z_mean.abs().max() < 5 and z_var.abs().max() < 5

    final = result.z  # n independent draws
    assert ((final.mean(0) - mean).abs() < 5 * (var / n).sqrt()).all()
    assert ((final.var(0) - var).abs() < 5 * math.sqrt(2 / n) * var).all()


def test_mala_prior_alone_gives_standard_normal():
    torch.manual_seed(1)
    d, n = 4, 2000
    result = mala(lambda z: torch.zeros(z.shape[0]), 3 + torch.randn(n, d), steps=300, step_size=0.3, warmup=100)
    print(f"U=0: acceptance {result.stats()['accept_rate']:.3f}")
    z_mean, z_var = chain_z_scores(result.chain[-150:], torch.zeros(d), torch.ones(d), "MALA U=0")
    assert z_mean.abs().max() < 5 and z_var.abs().max() < 5


def test_mala_without_prior_samples_exp_minus_u():
    torch.manual_seed(2)
    mean, var = gaussian_target(1.0, prior=False)
    assert torch.allclose(mean, M)
    result = mala(quadratic, torch.randn(2000, 3), steps=300, warmup=100, prior=False)
    z_mean, z_var = chain_z_scores(result.chain[-150:], mean, var, "MALA no prior")
    assert z_mean.abs().max() < 5 and z_var.abs().max() < 5


def test_metropolis_correction_matters_at_large_step():
    """At ε = 0.15 (ελ up to 1.5) MALA is exact; ULA and MALA without q-ratio are not."""
    eps, n = 0.15, 2000
    mean, var = gaussian_target(1.0)
    precision = 1 / var

    torch.manual_seed(3)
    exact = mala(quadratic, torch.randn(n, 3), steps=250, step_size=eps, adapt=False)
    print(f"MALA fixed eps: acceptance {exact.stats()['accept_rate']:.3f}")
    z_mean, z_var = chain_z_scores(exact.chain[-150:], mean, var, "MALA fixed eps")
    assert z_mean.abs().max() < 5 and z_var.abs().max() < 5

    torch.manual_seed(3)
    ula = mala(quadratic, torch.randn(n, 3), steps=250, step_size=eps, adapt=False, metropolis=False)
    _, z_var = chain_z_scores(ula.chain[-150:], mean, var, "ULA")
    assert z_var.min() > 10  # variance inflated, far beyond sampling error
    # ...and by exactly the closed-form ULA bias: x' = (1 − ελ) x + √(2ε) ξ has variance 1 / (λ (1 − ελ/2)).
    ula_var = 1 / (precision * (1 - eps * precision / 2))
    _, z_ula = chain_z_scores(ula.chain[-150:], mean, ula_var, "ULA vs its closed-form variance")
    assert z_ula.abs().max() < 5

    torch.manual_seed(3)
    no_q = mala(quadratic, torch.randn(n, 3), steps=250, step_size=eps, adapt=False, proposal_ratio=False)
    print(f"MALA without q-ratio: acceptance {no_q.stats()['accept_rate']:.3f}")
    _, z_var = chain_z_scores(no_q.chain[-150:], mean, var, "MALA without q-ratio")
    assert z_var.abs().max() > 10


def test_mala_bookkeeping():
    torch.manual_seed(4)
    z0 = torch.randn(7, 3)
    result = mala(quadratic, z0, steps=20, warmup=10, thin=5, keep_path=2)
    assert result.chain.shape == (2, 7, 3)  # post-warm-up steps 15 and 20
    assert torch.equal(result.chain[-1], result.z)
    assert result.path.shape == (21, 2, 3) and torch.equal(result.path[0], z0[:2])
    assert torch.equal(result.path[-1], result.z[:2])
    # acceptance = the share of transitions that moved the chain (a continuous proposal never repeats
    # the state), over warm-up (10 steps) and after it (10 steps), per chain
    full = mala(quadratic, z0, steps=20, warmup=10, keep_path=7)
    moved = (full.path[1:] != full.path[:-1]).any(dim=2).float()  # (20, 7)
    assert torch.equal(full.warmup_accept_rate, moved[:10].mean(dim=0))
    assert torch.equal(full.accept_rate, moved[10:].mean(dim=0))
    assert 0 < float(full.accept_rate.mean()) < 1  # some moves accepted, some rejected
    assert full.stats()["accept_rate"] == pytest.approx(float(moved[10:].mean()))
    # a flat target without prior accepts every symmetric-ratio proposal: α = 1 exactly
    flat = mala(lambda z: 0 * z.sum(dim=1), z0, steps=10, step_size=0.5, adapt=False, prior=False)
    assert torch.equal(flat.accept_rate, torch.ones(7))
    # no adaptation: step size unchanged, every state reachable from z0 only through accepted moves
    fixed = mala(quadratic, z0, steps=5, step_size=0.01, adapt=False)
    assert fixed.warmup == 0 and torch.allclose(fixed.step_size, torch.full((7,), 0.01))
    zero = mala(quadratic, z0, steps=0)
    assert torch.equal(zero.z, z0) and zero.stats()["accept_rate"] is None


def test_mala_rejects_bad_input():
    with pytest.raises(MegeError, match="one energy per chain"):
        mala(lambda z: z, torch.randn(5, 3), steps=2)
    with pytest.raises(MegeError, match="warmup"):
        mala(quadratic, torch.randn(5, 3), steps=2, warmup=3)
    with pytest.raises(MegeError, match="step_size"):
        mala(quadratic, torch.randn(5, 3), steps=2, step_size=0.0)


def test_mala_rejects_non_finite_proposals():
    torch.manual_seed(5)

    def walled(z):  # energy infinite for x_0 < 0: the chain never enters that half-space
        return torch.where(z[:, 0] < 0, torch.full_like(z[:, 0], math.inf), torch.zeros_like(z[:, 0]))

    result = mala(walled, torch.rand(500, 2) + 0.1, steps=50, step_size=0.5, adapt=False)
    assert (result.chain[:, :, 0] >= 0).all()


def test_pyro_hmc_reproduces_gaussian_target():
    torch.manual_seed(6)
    mean, var = gaussian_target(1.0)
    result = hmc(quadratic, torch.randn(40, 3), steps=400, warmup=200)
    stats = result.stats()
    print(f"pyro HMC (40 chains joint): acceptance {stats['accept_rate']:.3f}, shared step size {stats['step_size_median']:.3f}")
    assert stats["accept_rate"] > 0.5
    z_mean, z_var = chain_z_scores(result.chain, mean, var, "pyro HMC")
    assert z_mean.abs().max() < 6 and z_var.abs().max() < 6


def test_pyro_nuts_runs_on_joint_state():
    torch.manual_seed(7)
    mean, var = gaussian_target(1.0)
    result = nuts(quadratic, torch.randn(20, 3), steps=150, warmup=75)
    print(f"pyro NUTS (20 chains joint): acceptance {result.stats()['accept_rate']:.3f}")
    assert result.chain.shape == (75, 20, 3) and result.sampler == "nuts"
    z_mean, z_var = chain_z_scores(result.chain, mean, var, "pyro NUTS")
    assert z_mean.abs().max() < 6 and z_var.abs().max() < 6


# ----------------------------------------------------------------------------- generator/critic pairs


class Identity(nn.Module):
    latent_dim = 3

    def __init__(self):
        super().__init__()
        self.unused = nn.Linear(1, 1)  # gives the module a device and a training flag

    def sample_latent(self, n, device=None):
        return torch.randn(n, self.latent_dim, device=device)

    def forward(self, z):
        return z


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


def test_adaptation_recovers_from_a_poor_initial_step():
    """A narrow target (precision 400) from ε = 1: the doubling/halving start plus 25 warm-up steps suffice."""
    torch.manual_seed(11)
    narrow = lambda z: 200.0 * (z**2).sum(dim=1)  # noqa: E731 — E = ½·401‖z‖²
    result = mala(narrow, torch.randn(1000, 2) * 0.05, steps=125, step_size=1.0, warmup=25)
    stats = result.stats()
    print(f"narrow target from eps=1: acceptance {stats['accept_rate']:.3f}, step size {stats['step_size_median']:.4f}")
    assert abs(stats["accept_rate"] - 0.574) < 0.05
    assert 1e-3 < stats["step_size_median"] < 1e-2
    no_init = mala(narrow, torch.randn(1000, 2) * 0.05, steps=125, step_size=1.0, warmup=25, init_step_size=False)
    print(f"... without the initial doubling/halving: acceptance {no_init.stats()['accept_rate']:.3f}")


class StubRun:
    """What ``mege.training.load_run`` returns, reduced to what ``mege sample`` reads."""

    def __init__(self):
        from types import SimpleNamespace

        from mege.data.mixtures import grid25
        from mege.metrics.toy import ToyModeMetrics

        self.generator, self.ema, self.data = Identity2d(), None, grid25()
        self.critic = GridCritic(self.data.centres)
        self.metric = ToyModeMetrics(n_samples=500)
        self.settings = SimpleNamespace(eval_seed=3)


class Identity2d(Identity):
    latent_dim = 2

    def forward(self, z):
        return 2.0 * z


class GridCritic(nn.Module):
    """U(x) = 50 · min_k ‖x − μ_k‖² / 2 : pits at the grid centres."""

    def __init__(self, centres):
        super().__init__()
        self.register_buffer("centres", centres)

    def forward(self, x):
        return 25.0 * torch.cdist(x, self.centres).pow(2).min(dim=1).values


def test_sample_cli_writes_samples_stats_and_landscape(tmp_path, monkeypatch, capsys):
    import json

    import mege.cli.sample
    from mege.cli.sample import main

    monkeypatch.setattr(mege.cli.sample, "load_run", lambda run_dir: StubRun())
    out = tmp_path / "out"
    assert main([str(tmp_path), "--steps", "40", "--out", str(out), "--chains-plotted", "5"]) == 0
    printed = capsys.readouterr().out
    print(printed)
    saved = torch.load(out / "samples.pt", weights_only=True)
    assert saved["x"].shape == (500, 2) and saved["paths"].shape == (5, 41, 2)
    report = json.loads((out / "acceptance.json").read_text())
    plain, refined = report["metrics"]
    assert plain["steps"] == "plain" and refined["steps"] == "40 (mcmc_T1)"  # T = 1: the model's samples, named
    assert 0.3 < report["acceptance"]["accept_rate"] < 0.8
    # the pits pull samples in: far more high-quality samples after MCMC than from G alone
    assert refined["hq_fraction"] > plain["hq_fraction"] + 0.2
    assert (out / "landscape.png").stat().st_size > 10_000
    assert "| plain |" in printed and "| 40 (mcmc_T1) |" in printed
    with pytest.raises(MegeError, match="--sampler"):
        main([str(tmp_path), "--steps", "4", "--sampler", "os.system"])


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
