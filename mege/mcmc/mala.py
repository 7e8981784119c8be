"""Metropolis-adjusted Langevin (:func:`mala`), batched over chains with per-chain step sizes."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from mege.errors import check
from mege.mcmc.ops import EnergyFn, check_common, energy_and_grad, per_chain
from mege.mcmc.result import MCMCResult


class Target(NamedTuple):
    """What a MALA proposal needs to know about the target and the ratio."""

    energy_fn: EnergyFn
    temperature: float
    prior: bool
    proposal_ratio: bool


def _mala_proposal(target: Target, z: Tensor, e: Tensor, grad: Tensor, log_eps: Tensor) -> tuple[Tensor, ...]:
    """One Langevin proposal per chain and its log MH ratio (−inf when E(z') is not finite)."""
    energy_fn, temperature, prior, proposal_ratio = target
    eps = per_chain(log_eps.exp(), z)
    noise = torch.randn_like(z)
    z_new = z - eps * grad + (2 * eps).sqrt() * noise
    e_new, grad_new = energy_and_grad(energy_fn, z_new, temperature, prior)
    log_alpha = e - e_new
    if proposal_ratio:
        log_q_forward = -0.5 * noise.flatten(1).pow(2).sum(dim=1)  # ‖z'−z+ε∇E(z)‖²/(4ε) = ½‖ξ‖²
        log_q_backward = -(z - z_new + eps * grad_new).flatten(1).pow(2).sum(dim=1) / (4 * eps.flatten())
        log_alpha = log_alpha + log_q_backward - log_q_forward
    finite = torch.isfinite(log_alpha) & torch.isfinite(e_new)
    log_alpha = torch.where(finite, log_alpha, torch.full_like(log_alpha, -math.inf))
    return z_new, e_new, grad_new, log_alpha


def _initial_log_step_size(target: Target, z: Tensor, e: Tensor, grad: Tensor, log_eps: Tensor,
                           max_iter: int = 12) -> Tensor:
    """Per chain, double (α > ½) or halve (α ≤ ½) ε until a trial proposal's α crosses ½.

    Doubling stops at the last ε with α > ½; halving at the first ε with α > ½ (or after
    ``max_iter`` tries). Uses trial proposals only: the chains do not move.
    """
    log_half, log_two = math.log(0.5), math.log(2.0)
    up = _mala_proposal(target, z, e, grad, log_eps)[-1] > log_half
    active = torch.ones_like(up)
    for _ in range(max_iter):
        trial = log_eps + torch.where(up, log_two, -log_two)
        above = _mala_proposal(target, z, e, grad, trial)[-1] > log_half
        crossed = torch.where(up, ~above, above)
        log_eps = torch.where(active & ~(crossed & up), trial, log_eps)
        active = active & ~crossed
        if not bool(active.any()):
            break
    return log_eps


def mala(
    energy_fn: EnergyFn,
    z0: Tensor,
    steps: int,
    step_size: float = 0.05,
    temperature: float = 1.0,
    target_accept: float = 0.574,
    adapt: bool = True,
    warmup: int | None = None,
    thin: int = 1,
    keep_chain: bool = True,
    keep_path: int = 0,
    prior: bool = True,
    metropolis: bool = True,
    proposal_ratio: bool = True,
    adapt_rate: float = 2.0,
    init_step_size: bool = True,
) -> MCMCResult:
    r"""Metropolis-adjusted Langevin algorithm on ``π(z) ∝ exp(−E(z))``, one chain per row of z0.

    ``E(z) = ½‖z‖² + U(z)/T`` with ``U = energy_fn`` (the prior term only when ``prior``).
    Each of ``steps`` transitions, with per-chain step size ε and ξ ~ N(0, I):

        proposal      z' = z − ε ∇E(z) + √(2ε) ξ
        q(z'|z)       ∝ exp(−‖z' − z + ε ∇E(z)‖² / (4ε))
        log α         = E(z) − E(z') + log q(z|z') − log q(z'|z)
        accept        with probability min(1, α)   (a non-finite E(z') is rejected).

    The ratio includes the Gaussian prior (inside E) and the asymmetric proposal densities.
    ``metropolis=False`` accepts every proposal (the unadjusted Langevin algorithm, biased
    at finite ε) and ``proposal_ratio=False`` drops the q-ratio from log α (also biased);
    both exist for ablations and for the test that shows the correction matters.

    Step-size adaptation (``adapt``): with ``init_step_size`` each chain's ε is first doubled or
    halved (at most 12 times, at z0, no move made) until a trial proposal's acceptance
    probability crosses ½ (the Stan/pyro heuristic), so a poor ``step_size`` costs a few energy
    evaluations rather than the warm-up. Then, during the first ``warmup`` transitions
    (default ``steps // 2``; 0 without adaptation) each chain's ε follows the Robbins–Monro rule

        log ε_i ← log ε_i + (adapt_rate / √(t+1)) · (min(1, α_i) − target_accept)

    and is then frozen at the average of log ε_i over the second half of warm-up, so the
    post-warm-up transitions form a time-homogeneous π-invariant chain per chain. The
    default target 0.574 is the optimal MALA acceptance rate (Roberts & Rosenthal 1998).

    Returns an :class:`MCMCResult`: final z, post-warm-up states every ``thin`` steps
    (when ``keep_chain``), the full path of the first ``keep_path`` chains, and acceptance
    rates per chain over warm-up and over sampling.
    """
    warmup = (steps // 2 if adapt else 0) if warmup is None else warmup
    check_common(z0, steps, step_size, temperature, warmup)
    check(thin >= 1, f"thin must be >= 1; got {thin}")
    check(0 < target_accept < 1, f"target_accept must lie in (0, 1); got {target_accept}")

    n = z0.shape[0]
    z = z0.detach().clone()
    log_eps = torch.full((n,), math.log(step_size), dtype=z.dtype, device=z.device)
    log_eps_sum = torch.zeros_like(log_eps)
    n_averaged = 0
    accepted = {True: torch.zeros(n, device=z.device), False: torch.zeros(n, device=z.device)}
    chain: list[Tensor] = []
    path: list[Tensor] = [z[:keep_path].clone()] if keep_path else []

    e, grad = energy_and_grad(energy_fn, z, temperature, prior)
    target = Target(energy_fn, temperature, prior, proposal_ratio)
    if adapt and warmup and init_step_size:
        log_eps = _initial_log_step_size(target, z, e, grad, log_eps)
    for t in range(steps):
        in_warmup = t < warmup
        z_new, e_new, grad_new, log_alpha = _mala_proposal(target, z, e, grad, log_eps)
        if metropolis:
            accept = torch.rand_like(log_alpha).log() < log_alpha
        else:
            accept = torch.isfinite(e_new)

        mask = per_chain(accept, z)
        z = torch.where(mask, z_new, z)
        grad = torch.where(mask, grad_new, grad)
        e = torch.where(accept, e_new, e)
        accepted[in_warmup] += accept.float()

        if in_warmup and adapt:
            accept_prob = log_alpha.clamp(max=0).exp()
            log_eps = log_eps + adapt_rate / math.sqrt(t + 1) * (accept_prob - target_accept)
            log_eps = log_eps.clamp(math.log(1e-8), math.log(1e3))
            if t >= warmup // 2:
                log_eps_sum += log_eps
                n_averaged += 1
            if t == warmup - 1:
                log_eps = log_eps_sum / n_averaged
        if not in_warmup and keep_chain and (t + 1 - warmup) % thin == 0:
            chain.append(z.clone())
        if keep_path:
            path.append(z[:keep_path].clone())

    nan = torch.full((n,), math.nan, device=z.device)
    return MCMCResult(
        z=z,
        chain=torch.stack(chain) if chain else (z.new_zeros((0, *z.shape)) if keep_chain else None),
        path=torch.stack(path) if keep_path else None,
        accept_rate=accepted[False] / (steps - warmup) if steps > warmup else nan,
        warmup_accept_rate=accepted[True] / warmup if warmup else nan.clone(),
        step_size=log_eps.exp(),
        steps=steps,
        warmup=warmup,
        sampler="mala" if metropolis and proposal_ratio else ("ula" if not metropolis else "mala-no-proposal-ratio"),
    )
