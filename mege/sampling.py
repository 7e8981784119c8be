r"""Sampling from the learned energy: MCMC in the generator's latent space.

After training, the critic defines an energy model ``p(x) ∝ exp(−U(x))`` and the generator is
a good proposal for it. Pulling the energy back through the generator gives a target on the
latents (Kumar et al. 2019, "Maximum Entropy Generators for Energy-Based Models"):

    π_T(z) ∝ N(z; 0, I) · exp(−U(G(z)) / T),     E(z) = ½‖z‖² + U(G(z)) / T,   π_T ∝ exp(−E),

with a temperature ``T`` (T → ∞ gives back the plain generator; T = 1 is the energy model
itself). Samples ``G(z_K)`` after K steps of a π_T-invariant chain started at ``z_0 ~ N(0, I)``
"roll into the pits" of U at sampling time.

Samplers here are generic in the energy: ``energy_fn(z) -> (n,)`` is U∘G for a run, or any
test energy; the Gaussian prior term and the temperature are added by the sampler
(``prior=False`` drops the prior). Every sampler runs ``n`` independent chains at once,
returns an :class:`MCMCResult`, and shares the signature
``sampler(energy_fn, z0, steps, step_size=..., temperature=..., warmup=..., ...)`` so
:func:`refine` and :class:`LatentMCMC` accept any of them.

* :func:`mala` — Metropolis-adjusted Langevin, batched over chains, per-chain step sizes
  adapted during warm-up and then frozen.
* :func:`hmc`, :func:`nuts` — pyro's ``HMC`` / ``NUTS`` kernels on a *joint* potential over all
  chains (see :func:`hmc` for what that means for adaptation and acceptance).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from mege.errors import MegeError, check

EnergyFn = Callable[[Tensor], Tensor]


# ----------------------------------------------------------------------------- results


@dataclass
class MCMCResult:
    """What a sampler returns.

    z: final state of every chain, (n, *shape).
    chain: post-warm-up states, every ``thin``-th step, (kept, n, *shape); None when not kept.
        These are the valid MCMC draws: the step size is frozen after warm-up.
    path: every state from z0 on (warm-up included) of the first ``keep_path`` chains,
        (steps + 1, keep_path, *shape), for plotting trajectories; None when not kept.
    accept_rate: per chain, fraction of accepted proposals after warm-up, (n,); NaN when there
        were no post-warm-up steps.
    warmup_accept_rate: per chain, the same over warm-up, (n,); NaN without warm-up.
    step_size: per chain step size used after warm-up, (n,).
    steps, warmup: total transitions and how many of them were warm-up.
    sampler: name of the sampler, for protocols.
    """

    z: Tensor
    chain: Tensor | None
    path: Tensor | None
    accept_rate: Tensor
    warmup_accept_rate: Tensor
    step_size: Tensor
    steps: int
    warmup: int
    sampler: str

    def stats(self) -> dict:
        """JSON-ready summary: overall acceptance and step size plus per-chain quantiles."""
        return {
            "sampler": self.sampler,
            "steps": self.steps,
            "warmup": self.warmup,
            "n_chains": int(self.z.shape[0]),
            "accept_rate": _nan_to_none(self.accept_rate.nanmean()),
            "accept_rate_quantiles": _quantiles(self.accept_rate),
            "warmup_accept_rate": _nan_to_none(self.warmup_accept_rate.nanmean()),
            "step_size_median": _nan_to_none(self.step_size.median()),
            "step_size_quantiles": _quantiles(self.step_size),
        }

    @staticmethod
    def concat(results: list[MCMCResult]) -> MCMCResult:
        """Join results of independent batches of chains (same sampler and step counts)."""
        first = results[0]

        def cat(name: str, dim: int) -> Tensor | None:
            parts = [getattr(r, name) for r in results]
            return None if parts[0] is None else torch.cat(parts, dim=dim)

        path = first.path  # the path keeps the first chains only
        return MCMCResult(
            z=cat("z", 0), chain=cat("chain", 1), path=path, accept_rate=cat("accept_rate", 0),
            warmup_accept_rate=cat("warmup_accept_rate", 0), step_size=cat("step_size", 0),
            steps=first.steps, warmup=first.warmup, sampler=first.sampler,
        )


def _nan_to_none(x: Tensor) -> float | None:
    value = float(x)
    return None if math.isnan(value) else value


def _quantiles(x: Tensor, qs: tuple[float, ...] = (0.05, 0.5, 0.95)) -> dict[str, float | None]:
    x = x.detach().double()
    x = x[~torch.isnan(x)]
    if x.numel() == 0:
        return {f"q{round(q * 100):02d}": None for q in qs}
    return {f"q{round(q * 100):02d}": float(torch.quantile(x, q)) for q in qs}


# ----------------------------------------------------------------------------- the target


def latent_energy(energy_fn: EnergyFn, z: Tensor, temperature: float = 1.0, prior: bool = True) -> Tensor:
    """``E(z) = ½‖z‖² + U(G(z)) / T`` per chain, shape (n,); the prior term only when ``prior``."""
    u = energy_fn(z)
    check(u.shape == z.shape[:1], f"energy_fn must return one energy per chain, shape ({z.shape[0]},); got {tuple(u.shape)}")
    e = u / temperature
    if prior:
        e = e + 0.5 * z.flatten(1).pow(2).sum(dim=1)
    return e


def _energy_and_grad(energy_fn: EnergyFn, z: Tensor, temperature: float, prior: bool) -> tuple[Tensor, Tensor]:
    """E(z) and ∇_z E(z) for every chain; no gradient reaches any module's parameters."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        e = latent_energy(energy_fn, z, temperature, prior)
        (grad,) = torch.autograd.grad(e.sum(), z)
    return e.detach(), grad.detach()


def _per_chain(x: Tensor, like: Tensor) -> Tensor:
    """(n,) -> (n, 1, ..., 1) to broadcast against a batch of states ``like``."""
    return x.reshape(x.shape + (1,) * (like.dim() - 1))


def _check_common(z0: Tensor, steps: int, step_size: float, temperature: float, warmup: int) -> None:
    check(z0.dim() >= 2, f"z0 must be a batch of chains (n, d); got shape {tuple(z0.shape)}")
    check(steps >= 0, f"steps must be >= 0; got {steps}")
    check(0 <= warmup <= steps, f"warmup must lie in [0, steps={steps}]; got {warmup}")
    check(step_size > 0, f"step_size must be > 0; got {step_size}")
    check(temperature > 0, f"temperature must be > 0; got {temperature}")


# ----------------------------------------------------------------------------- MALA


class Target(NamedTuple):
    """What a MALA proposal needs to know about the target and the ratio."""

    energy_fn: EnergyFn
    temperature: float
    prior: bool
    proposal_ratio: bool


def _mala_proposal(target: Target, z: Tensor, e: Tensor, grad: Tensor, log_eps: Tensor) -> tuple[Tensor, ...]:
    """One Langevin proposal per chain and its log MH ratio (−inf when E(z') is not finite)."""
    energy_fn, temperature, prior, proposal_ratio = target
    eps = _per_chain(log_eps.exp(), z)
    noise = torch.randn_like(z)
    z_new = z - eps * grad + (2 * eps).sqrt() * noise
    e_new, grad_new = _energy_and_grad(energy_fn, z_new, temperature, prior)
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
    _check_common(z0, steps, step_size, temperature, warmup)
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

    e, grad = _energy_and_grad(energy_fn, z, temperature, prior)
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

        mask = _per_chain(accept, z)
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


# ----------------------------------------------------------------------------- pyro HMC / NUTS


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
    _check_common(z0, steps, step_size, temperature, warmup)
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


# ----------------------------------------------------------------------------- generator/critic pairs


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put modules in eval mode, restoring each one's training flag afterwards."""
    flags = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, flag in zip(modules, flags):
            m.train(flag)


@dataclass
class LatentMap:
    """A deterministic map from a standard-normal latent u to samples: x = forward(u).

    For a plain generator u = z and forward = G. For a noisy generator x = G(z) + σ ε the
    noise is part of the latent, u = (z, ε) flattened, both standard normal, so MCMC moves
    z and ε together and the target stays N(u; 0, I)·exp(−U(x(u))/T).
    """

    dim: int
    forward: Callable[[Tensor], Tensor]
    latent_dim: int
    noise_shape: tuple[int, ...]

    def sample(self, n: int, device: torch.device) -> Tensor:
        return torch.randn(n, self.dim, device=device)


def latent_map(generator: nn.Module) -> LatentMap:
    """The latent map of a generator; a NoisyGenerator (``.base`` and ``.sigma``) gets u = (z, ε)."""
    check(hasattr(generator, "latent_dim"), "generator must have a latent_dim attribute (see mege.generators)")
    if not (hasattr(generator, "base") and hasattr(generator, "sigma")):
        return LatentMap(generator.latent_dim, generator, generator.latent_dim, ())
    base, k = generator.base, generator.latent_dim
    with torch.no_grad():
        noise_shape = tuple(base(torch.zeros(1, k, device=module_device(generator))).shape[1:])
    size = math.prod(noise_shape)

    def forward(u: Tensor) -> Tensor:
        z, eps = u[:, :k], u[:, k:].reshape(-1, *noise_shape)
        return base(z) + generator.sigma * eps

    return LatentMap(k + size, forward, k, noise_shape)


def refine(
    generator: nn.Module,
    critic: nn.Module,
    n: int,
    steps: int,
    step_size: float = 0.05,
    temperature: float = 1.0,
    warmup: int | None = None,
    sampler: Callable[..., MCMCResult] = mala,
    batch_size: int = 4096,
    return_result: bool = False,
    **sampler_kwargs,
) -> Tensor | tuple[Tensor, MCMCResult]:
    r"""n samples ``G(z_K)`` after K = ``steps`` latent MCMC transitions from ``z_0 ~ N(0, I)``.

    Target ``π_T(z) ∝ N(z; 0, I) · exp(−U(G(z))/T)``; ``steps = 0`` gives plain generator
    samples. Chains run in independent batches of ``batch_size`` on the generator's device,
    both modules in eval mode. The chains themselves are not kept (``keep_chain=False``) unless
    ``sampler_kwargs`` say so. Returns detached samples (n, *shape), and the
    :class:`MCMCResult` of the latents when ``return_result``.
    """
    check(n >= 1, f"n must be >= 1; got {n}")
    device = module_device(generator)
    lmap = latent_map(generator)
    sampler_kwargs.setdefault("keep_chain", False)

    def energy_fn(u: Tensor) -> Tensor:
        return critic(lmap.forward(u))

    xs, results = [], []
    with eval_mode(generator, critic):
        for start in range(0, n, batch_size):
            u0 = lmap.sample(min(batch_size, n - start), device)
            if steps == 0:
                result = mala(energy_fn, u0, 0, step_size, temperature, warmup=0, keep_chain=False)
            else:
                result = sampler(energy_fn, u0, steps, step_size=step_size, temperature=temperature, warmup=warmup, **sampler_kwargs)
            with torch.no_grad():
                xs.append(lmap.forward(result.z))
            results.append(result)
    x = torch.cat(xs)
    return (x, MCMCResult.concat(results)) if return_result else x


class LatentMCMC:
    """A metric wrapper: the base metric computed on latent-MCMC-refined samples.

    ``LatentMCMC(metric, generator, critic, steps=50)`` is itself a metric,
    ``(generate, data) -> dict``: it ignores ``generate`` (plain generator samples carry no
    latents) and feeds the base metric ``refine(generator, critic, n, steps, ...)`` instead.
    The returned dict is the base metric's, plus ``mcmc_accept_rate`` and, under
    ``protocol["latent_mcmc"]``, the sampler settings and acceptance statistics. With
    ``steps=0`` it reproduces the plain metric, so plain vs refined is one loop over steps.
    Hydra: ``_target_: mege.sampling.LatentMCMC`` with ``_partial_: true``, then bind
    ``metric``, ``generator`` and ``critic`` at run time.
    """

    def __init__(
        self,
        metric: Callable,
        generator: nn.Module,
        critic: nn.Module,
        steps: int = 50,
        step_size: float = 0.05,
        temperature: float = 1.0,
        warmup: int | None = None,
        sampler: Callable[..., MCMCResult] = mala,
        batch_size: int = 4096,
        **sampler_kwargs,
    ):
        self.metric, self.generator, self.critic = metric, generator, critic
        self.steps, self.step_size, self.temperature, self.warmup = steps, step_size, temperature, warmup
        self.sampler, self.batch_size, self.sampler_kwargs = sampler, batch_size, sampler_kwargs
        self.last_result: MCMCResult | None = None
        self.last_samples: Tensor | None = None

    def generate(self, n: int) -> Tensor:
        """n refined samples; they and their :class:`MCMCResult` are kept as ``last_*``."""
        self.last_samples, self.last_result = refine(
            self.generator, self.critic, n, self.steps, self.step_size, self.temperature, self.warmup,
            self.sampler, self.batch_size, return_result=True, **self.sampler_kwargs,
        )
        return self.last_samples

    def __call__(self, generate: Callable[[int], Tensor] | None, data) -> dict:
        out = dict(self.metric(self.generate, data))
        stats = self.last_result.stats() if self.last_result is not None else {}
        out["mcmc_accept_rate"] = stats.get("accept_rate")
        protocol = dict(out.get("protocol", {}))
        protocol["latent_mcmc"] = {
            "target": "N(z;0,I)·exp(-U(G(z))/T)", "temperature": self.temperature,
            "initial_step_size": self.step_size, **stats,
        }
        out["protocol"] = protocol
        return out


# ----------------------------------------------------------------------------- runs and the CLI


def run_generator(run, raw: bool = False) -> nn.Module:
    """The generator of a loaded run: its weight EMA when it has one (unless ``raw``)."""
    ema = getattr(run, "ema", None)
    return run.generator if raw or ema is None else ema.module


def mcmc_block_name(temperature: float) -> str:
    """What latent-MCMC samples at temperature T are, as a result-block name.

    ``mcmc_T1``: T = 1 samples the learned energy model π(z) ∝ N(z;0,I)·exp(−U(G(z))) (for the
    non-saturating loss, U = −logit, the discriminator-driven latent sampling target of Che et al.
    2020; the sampler of Kumar et al. 2019). ``mode_seek``: T < 1 sharpens π towards the critic's
    minima (T → 0 is gradient descent into the pits), so it is not a sample of the model.
    T > 1 flattens π towards the plain generator: ``mcmc_T<T>``.
    """
    if temperature == 1:
        return "mcmc_T1"
    return "mode_seek" if temperature < 1 else f"mcmc_T{temperature:g}"


def refined_metric(run, steps: int, raw: bool = False, seed: int = 0, **mcmc_kwargs) -> tuple[dict, LatentMCMC]:
    """The run's metric after K = ``steps`` latent-MCMC steps from z0 drawn with ``seed``.

    ``run`` is a loaded run (``mege.train.load_run``): ``.generator``, ``.critic``, ``.metric``,
    ``.data`` (and ``.ema``). Returns the metric row ``{"steps": K, ...}`` and the
    :class:`LatentMCMC` wrapper, whose ``last_samples`` / ``last_result`` hold the samples and
    the chains' statistics. The same seed gives the same z0 for every K, so rows at different K
    differ only by the MCMC; K = 0 is the plain generator. The global RNG is restored afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wrapped = LatentMCMC(run.metric, run_generator(run, raw), run.critic, steps=steps, **mcmc_kwargs)
        row = wrapped(None, run.data)
    return {"steps": steps, **row}, wrapped


def compare_metrics(run, steps: list[int], raw: bool = False, seed: int = 0, **mcmc_kwargs) -> list[dict]:
    """Rows of :func:`refined_metric` for K = 0 ("plain") and each K in ``steps``."""
    rows = [refined_metric(run, k, raw, seed, **mcmc_kwargs)[0] for k in [0, *steps]]
    rows[0]["steps"] = "plain"
    return rows


def metric_table(rows: list[dict]) -> str:
    """A markdown table of every float/int entry of the metric rows (protocol dicts left out)."""
    keys = ["steps"] + [k for k, v in rows[0].items() if k != "steps" and isinstance(v, (int, float))]
    for row in rows[1:]:
        keys += [k for k, v in row.items() if k not in keys and isinstance(v, (int, float))]

    def fmt(v) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def _resolve_sampler(path: str) -> Callable[..., MCMCResult]:
    """A sampler function from a dotted path; only ``mege.`` modules (as for config targets)."""
    import hydra.utils

    check(path.startswith("mege."), f"--sampler must be a dotted path inside mege (e.g. mege.sampling.hmc); got {path}")
    try:
        return hydra.utils.get_method(path)
    except Exception:  # noqa: BLE001 — any import failure is a bad path
        raise MegeError(f"--sampler {path} is not importable; use mege.sampling.mala, mege.sampling.hmc or mege.sampling.nuts") from None


def main(argv: list[str]) -> int:
    """``mege sample <run_dir> --steps K [--step-size E] [--n N] [--temperature T] ...``.

    Loads the run, draws N refined samples ``G(z_K)`` (default: as many as the run's metric
    asks for), prints the run's metric plain vs refined, and writes to ``--out`` (default
    ``<run_dir>/sample-K<steps>-T<temperature>``): ``samples.pt`` (refined samples, final
    latents, first-chain paths), ``acceptance.json`` (acceptance statistics and both metric
    rows) and, for 2-D data, ``landscape.png`` with chains overlaid in data space.
    """
    parser = argparse.ArgumentParser(prog="mege sample", description=main.__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--steps", type=int, required=True, help="MCMC transitions K (warm-up included)")
    parser.add_argument("--step-size", type=float, default=0.05, help="initial step size (adapted during warm-up)")
    parser.add_argument("--warmup", type=int, default=None, help="adaptation steps (default K // 2)")
    parser.add_argument("--temperature", type=float, default=1.0, help="T in exp(-U(G(z))/T)")
    parser.add_argument("--n", type=int, default=None, help="samples to draw (default: the metric's count)")
    parser.add_argument("--sampler", default="mege.sampling.mala", help="mege.sampling.mala | .hmc | .nuts")
    parser.add_argument("--seed", type=int, default=None, help="RNG seed (default: the run's train.eval_seed)")
    parser.add_argument("--raw", action="store_true", help="use the raw generator even when the run has an EMA")
    parser.add_argument("--chains-plotted", type=int, default=50, help="chains drawn on the landscape")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    check(args.steps >= 0, f"--steps must be >= 0; got {args.steps}")

    from mege.train import load_run

    run = load_run(args.run_dir)
    sampler = _resolve_sampler(args.sampler)
    seed = int(run.cfg.train.eval_seed) if args.seed is None else args.seed
    generator = run_generator(run, args.raw)
    mcmc = dict(step_size=args.step_size, temperature=args.temperature, warmup=args.warmup, sampler=sampler)
    out = args.out or args.run_dir / f"sample-K{args.steps}-T{args.temperature:g}"
    out.mkdir(parents=True, exist_ok=True)

    plain, _ = refined_metric(run, 0, args.raw, seed, **mcmc)
    refined, wrapped = refined_metric(run, args.steps, args.raw, seed, keep_path=args.chains_plotted, **mcmc)
    kind = mcmc_block_name(args.temperature)  # mcmc_T1: the energy model's samples; mode_seek: T < 1
    rows = [{**plain, "steps": "plain"}, {**refined, "steps": f"{args.steps} ({kind})"}]
    x, result = wrapped.last_samples, wrapped.last_result
    if args.n is not None and args.n != len(x):
        torch.manual_seed(seed)
        x, result = refine(generator, run.critic, args.n, args.steps, return_result=True,
                           keep_path=min(args.chains_plotted, args.n), **mcmc)
    n = len(x)
    lmap = latent_map(generator)
    paths = None
    if result.path is not None:
        with torch.no_grad(), eval_mode(generator):
            paths = torch.stack([lmap.forward(u) for u in result.path], dim=1).cpu()  # (chains, steps+1, *shape)

    torch.save({"x": x.cpu(), "latents": result.z.cpu(), "paths": paths, "stats": result.stats(),
                "generator": "raw" if args.raw or getattr(run, "ema", None) is None else "ema"}, out / "samples.pt")
    report = {"run_dir": str(args.run_dir), "seed": seed, "sampler": args.sampler, "step_size_initial": args.step_size,
              "temperature": args.temperature, "acceptance": result.stats(), "metrics": rows}
    (out / "acceptance.json").write_text(json.dumps(report, indent=2, default=float))

    if x.dim() == 2 and x.shape[1] == 2:
        from mege import plots

        real = run.data.sample(n)
        plots.landscape(run.critic, real, x.cpu(), out / "landscape.png", device=module_device(run.critic),
                        title=f"latent {result.sampler}: K={args.steps}, T={args.temperature:g} ({kind})", chains=paths)
    print(metric_table(rows))
    stats = result.stats()
    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    print(f"acceptance {rate(stats['accept_rate'])} (warm-up {rate(stats['warmup_accept_rate'])}), "
          f"median step size {stats['step_size_median']:.3g}; wrote {out}")
    return 0
