"""pyro's ``HMC`` and ``NUTS`` kernels on the latent target, all chains as one joint state."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mege.errors import check
from mege.mcmc.ops import EnergyFn, check_common, latent_energy
from mege.mcmc.result import MCMCResult


def _pyro_mcmc(
    kernel_cls: type,
    energy_fn: EnergyFn,
    z0: Tensor,
    steps: int,
    step_size: float,
    temperature: float,
    warmup: int | None,
    target_accept: float,
    adapt: bool,
    adapt_mass_matrix: bool,
    thin: int,
    keep_chain: bool,
    keep_path: int,
    prior: bool,
    **kernel_kwargs,
) -> MCMCResult:
    from pyro.infer.mcmc import MCMC

    warmup = (steps // 2 if adapt else 0) if warmup is None else warmup
    check_common(z0, steps, step_size, temperature, warmup)
    check(steps > warmup, f"pyro's MCMC needs at least one post-warm-up step: steps ({steps}) > warmup ({warmup})")
    check(thin >= 1, f"thin must be >= 1; got {thin}")
    n = z0.shape[0]

    def potential_fn(params: dict[str, Tensor]) -> Tensor:
        return latent_energy(energy_fn, params["z"], temperature, prior).sum()

    kernel = kernel_cls(
        potential_fn=potential_fn,
        step_size=step_size,
        adapt_step_size=adapt,
        adapt_mass_matrix=adapt and adapt_mass_matrix,
        target_accept_prob=target_accept,
        **kernel_kwargs,
    )
    moved = {True: 0, False: 0}
    path: list[Tensor] = [z0[:keep_path].detach().clone()] if keep_path else []
    previous = [z0.detach()]
    final_step_size = [step_size]

    def hook(kernel, params, stage, i):
        z = params["z"].detach()
        moved[stage.startswith("Warmup")] += int(not torch.equal(z, previous[0]))
        previous[0] = z
        final_step_size[0] = float(kernel.step_size)
        if keep_path:
            path.append(z[:keep_path].clone())

    mcmc = MCMC(
        kernel, num_samples=steps - warmup, warmup_steps=warmup, initial_params={"z": z0.detach()},
        hook_fn=hook, disable_progbar=True,
    )
    with torch.enable_grad():  # metrics call generate() under no_grad; pyro needs ∇E
        mcmc.run()
    samples = mcmc.get_samples()["z"]  # (steps - warmup, n, *shape)
    ones = torch.ones(n, device=z0.device)
    return MCMCResult(
        z=samples[-1].clone(),
        chain=samples[thin - 1 :: thin] if keep_chain else None,
        path=torch.stack(path) if keep_path else None,
        accept_rate=ones * moved[False] / (steps - warmup),
        warmup_accept_rate=ones * (moved[True] / warmup if warmup else math.nan),
        step_size=ones * final_step_size[0],
        steps=steps,
        warmup=warmup,
        sampler=kernel_cls.__name__.lower(),
    )


def hmc(
    energy_fn: EnergyFn,
    z0: Tensor,
    steps: int,
    step_size: float = 0.05,
    temperature: float = 1.0,
    warmup: int | None = None,
    trajectory_length: float = math.pi / 2,
    target_accept: float = 0.8,
    adapt: bool = True,
    adapt_mass_matrix: bool = True,
    thin: int = 1,
    keep_chain: bool = True,
    keep_path: int = 0,
    prior: bool = True,
) -> MCMCResult:
    r"""Hamiltonian Monte Carlo on ``π(z) ∝ exp(−E(z))`` with pyro's ``HMC`` kernel.

    ``E(z) = ½‖z‖² + U(z)/T`` as for :func:`mala`; leapfrog steps of size ε over a fixed
    integration time ``trajectory_length`` (pyro recomputes the number of steps
    ``⌊trajectory_length / ε⌋`` as ε adapts; fixing a step count instead would freeze the
    trajectory at (initial ε)·steps), then a Metropolis accept/reject on the change of the
    Hamiltonian ``H(z, r) = E(z) + ½ rᵀ M⁻¹ r``. The default π/2 is a quarter period of a
    unit Gaussian: for the prior-dominated latent target (and after mass-matrix adaptation)
    it moves to a nearly independent point, where pyro's default 2π would return to the start.

    Batching: pyro runs one chain per call (its ``num_chains > 1`` spawns processes). Here all
    n chains form ONE joint state ``(n, *shape)`` with potential ``Σ_i E(z_i)``: the chains
    stay statistically independent (the target factorises), but

    * there is one shared step size (and one shared trajectory length) for every chain, tuned
      by pyro's dual averaging toward ``target_accept`` for the joint state;
    * the Metropolis test is joint: all chains accept or reject together, and the joint energy
      error grows like √n, so the adapted step size shrinks as chains are added (roughly
      ∝ n^(−1/4)) — fine for tens of chains, wasteful for thousands (use :func:`mala` there);
    * mass-matrix adaptation (diagonal) is per coordinate of every chain, i.e. per chain.

    ``warmup`` (default ``steps // 2``) transitions adapt; ``steps − warmup`` are kept.
    Per-chain acceptance is reported as the fraction of transitions in which the joint state
    moved, hence identical across chains.
    """
    from pyro.infer.mcmc import HMC

    return _pyro_mcmc(
        HMC, energy_fn, z0, steps, step_size, temperature, warmup, target_accept, adapt, adapt_mass_matrix,
        thin, keep_chain, keep_path, prior, trajectory_length=trajectory_length,
    )


def nuts(
    energy_fn: EnergyFn,
    z0: Tensor,
    steps: int,
    step_size: float = 0.05,
    temperature: float = 1.0,
    warmup: int | None = None,
    max_tree_depth: int = 8,
    target_accept: float = 0.8,
    adapt: bool = True,
    adapt_mass_matrix: bool = True,
    thin: int = 1,
    keep_chain: bool = True,
    keep_path: int = 0,
    prior: bool = True,
) -> MCMCResult:
    r"""No-U-Turn sampler on ``π(z) ∝ exp(−E(z))`` with pyro's ``NUTS`` kernel.

    Same joint-state batching as :func:`hmc` (one potential ``Σ_i E(z_i)``, one shared step
    size, joint accept/reject), and in addition one shared trajectory: the U-turn criterion and
    the tree depth are decided on the joint state, so every chain runs as many leapfrog steps
    as the hardest one needs. Acceptance is the fraction of transitions in which the joint
    state moved.
    """
    from pyro.infer.mcmc import NUTS

    return _pyro_mcmc(
        NUTS, energy_fn, z0, steps, step_size, temperature, warmup, target_accept, adapt, adapt_mass_matrix,
        thin, keep_chain, keep_path, prior, max_tree_depth=max_tree_depth,
    )
