r"""MCMC on an energy: ``π(z) ∝ N(z; 0, I)·exp(−U(z)/T)`` (docs/design.md §8).

Samplers are generic in the energy: ``energy_fn(z) -> (n,)`` is U∘G for a run, or any test
energy; the Gaussian prior term and the temperature are added by the sampler (``prior=False``
drops the prior). Every sampler runs ``n`` independent chains at once, returns an
:class:`MCMCResult`, and shares the signature
``sampler(energy_fn, z0, steps, step_size=..., temperature=..., warmup=..., ...)``.

* :func:`mala` — Metropolis-adjusted Langevin, batched over chains, per-chain step sizes
  adapted during warm-up and then frozen (:mod:`.mala`).
* :func:`hmc`, :func:`nuts` — pyro's ``HMC`` / ``NUTS`` kernels on a *joint* potential over all
  chains (:mod:`.pyro_kernels`).
* :mod:`.ops` — the latent energy, energy-and-gradient and leapfrog, also used by the posterior
  entropy estimators (:mod:`mege.entropy.posterior`).

This package imports nothing from mege but :mod:`mege.errors`; latent sampling of a trained run
is :mod:`mege.sampling`.
"""

from mege.mcmc.mala import mala
from mege.mcmc.ops import EnergyFn, energy_and_grad, latent_energy, leapfrog, value_and_grad
from mege.mcmc.pyro_kernels import hmc, nuts
from mege.mcmc.result import MCMCResult

__all__ = ["EnergyFn", "MCMCResult", "energy_and_grad", "hmc", "latent_energy", "leapfrog", "mala", "nuts",
           "value_and_grad"]
