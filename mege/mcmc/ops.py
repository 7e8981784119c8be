r"""The operations every sampler shares: the latent target's energy, energy and gradient, leapfrog.

The latent target (docs/design.md §8): ``E(z) = ½‖z‖² + U(z)/T``, ``π(z) ∝ exp(−E(z))``; the
prior term only with ``prior``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mege.errors import check

EnergyFn = Callable[[Tensor], Tensor]


def latent_energy(energy_fn: EnergyFn, z: Tensor, temperature: float = 1.0, prior: bool = True) -> Tensor:
    """``E(z) = ½‖z‖² + U(G(z)) / T`` per chain, shape (n,); the prior term only when ``prior``."""
    u = energy_fn(z)
    check(u.shape == z.shape[:1], f"energy_fn must return one energy per chain, shape ({z.shape[0]},); got {tuple(u.shape)}")
    e = u / temperature
    if prior:
        e = e + 0.5 * z.flatten(1).pow(2).sum(dim=1)
    return e


def value_and_grad(fn: Callable[[Tensor], Tensor], z: Tensor) -> tuple[Tensor, Tensor]:
    """``fn(z)`` (one value per row) and its gradient w.r.t. ``z``, both detached; no gradient
    reaches any module's parameters. Used by the samplers here and the posterior estimators."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        value = fn(z)
        (grad,) = torch.autograd.grad(value.sum(), z)
    return value.detach(), grad.detach()


def energy_and_grad(energy_fn: EnergyFn, z: Tensor, temperature: float, prior: bool) -> tuple[Tensor, Tensor]:
    """E(z) and ∇_z E(z) for every chain (:func:`latent_energy`)."""
    return value_and_grad(lambda q: latent_energy(energy_fn, q, temperature, prior), z)


def leapfrog(q: Tensor, momentum: Tensor, grad: Tensor, eps: Tensor, n_steps: int,
             value_and_grad_fn: Callable[[Tensor], tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``n_steps`` leapfrog steps of size ``eps`` for ``H = −log p(q) + ½‖p‖²``; ``grad`` is
    ∇ log p at ``q`` and ``value_and_grad_fn(q) -> (log p, ∇ log p)``. Returns the final position,
    momentum, log p and its gradient there."""
    p, g, value = momentum + 0.5 * eps * grad, grad, None
    for i in range(n_steps):
        q = q + eps * p
        value, g = value_and_grad_fn(q)
        if i < n_steps - 1:
            p = p + eps * g
    return q, p + 0.5 * eps * g, value, g


def per_chain(x: Tensor, like: Tensor) -> Tensor:
    """(n,) -> (n, 1, ..., 1) to broadcast against a batch of states ``like``."""
    return x.reshape(x.shape + (1,) * (like.dim() - 1))


def check_common(z0: Tensor, steps: int, step_size: float, temperature: float, warmup: int) -> None:
    check(z0.dim() >= 2, f"z0 must be a batch of chains (n, d); got shape {tuple(z0.shape)}")
    check(steps >= 0, f"steps must be >= 0; got {steps}")
    check(0 <= warmup <= steps, f"warmup must lie in [0, steps={steps}]; got {warmup}")
    check(step_size > 0, f"step_size must be > 0; got {step_size}")
    check(temperature > 0, f"temperature must be > 0; got {temperature}")
