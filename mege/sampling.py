r"""Sampling a trained run from its learned energy: MCMC in the generator's latent space.

After training, the critic defines an energy model ``p(x) ∝ exp(−U(x))`` and the generator is
a good proposal for it. Pulling the energy back through the generator gives a target on the
latents (Kumar et al. 2019, "Maximum Entropy Generators for Energy-Based Models"):

    π_T(z) ∝ N(z; 0, I) · exp(−U(G(z)) / T),     E(z) = ½‖z‖² + U(G(z)) / T,   π_T ∝ exp(−E),

with a temperature ``T`` (T → ∞ gives back the plain generator; T = 1 is the energy model
itself). Samples ``G(z_K)`` after K steps of a π_T-invariant chain started at ``z_0 ~ N(0, I)``
"roll into the pits" of U at sampling time. The samplers are :mod:`mege.mcmc`'s
(docs/design.md §8); the command is ``mege sample`` (:mod:`mege.cli.sample`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mege.errors import check
from mege.generators import NoisyGenerator
from mege.mcmc import MCMCResult, hmc, mala, nuts
from mege.utils import eval_mode, module_device

__all__ = ["LatentMCMC", "LatentMap", "MCMCResult", "compare_metrics", "eval_mode", "hmc", "latent_map", "mala",
           "mcmc_block_name", "module_device", "nuts", "refine", "refined_metric", "run_generator"]


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
    """The latent map of a generator; a :class:`~mege.generators.NoisyGenerator` gets u = (z, ε)."""
    check(hasattr(generator, "latent_dim"), "generator must have a latent_dim attribute (see mege.generators)")
    if not isinstance(generator, NoisyGenerator):
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

    ``run`` is a loaded run (:func:`mege.training.load_run`): ``.generator``, ``.critic``, ``.metric``,
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
