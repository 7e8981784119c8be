r"""The samplers (mege.mcmc) against closed-form Gaussian targets.

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

from conftest import M, chain_z_scores, gaussian_target, quadratic
from mege.errors import MegeError
from mege.mcmc import hmc, mala, nuts


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
