r"""Posterior scores for the noisy generator ``x = G(z) + σ ε`` (z ~ N(0, I), ε ~ N(0, I)).

The generated density is ``p(x) = ∫ N(z; 0, I) N(x; G(z), σ² I) dz``, whose score is a posterior
expectation (Fisher's identity):

    s(x) = ∇_x log p(x) = E_{z ~ p(z | x)} [ −(x − G(z)) / σ² ],
    log p(z | x) = −½‖z‖² − ‖x − G(z)‖² / 2σ² + const.

Both estimators plug a Monte-Carlo estimate of s into the score surrogate; they give gradients
only (no value). The gradient also reaches a learned σ through ``x = G(z) + σε``.

* :class:`HMCPosteriorScore` (Dieng et al. 2019, PresGAN): a short HMC chain per sample, started
  at the true latent z (an exact posterior draw, so the chain is stationary from the start),
  ``steps`` iterations of ``leapfrog`` leapfrog steps with a Metropolis correction; samples after
  ``burn_in`` are averaged. Each chain's step size is jittered uniformly by ±``jitter`` per
  iteration (a fixed trajectory length resonates on near-Gaussian posteriors and can return to
  its start). The step size adapts multiplicatively towards an acceptance rate of
  ``target_accept`` (training mode only).
* :class:`ImportancePosteriorScore` (Grathwohl et al. 2021, VERA): ``samples`` proposals
  ``z_m ~ q = N(z, τ² I)`` around the true latent, self-normalised weights
  ``w_m ∝ p(z_m) p(x | z_m) / q(z_m)``; τ = ``proposal_scale`` · σ. With ``learn_scale`` the
  log of ``proposal_scale`` is a parameter and ``aux_loss`` is minus the importance-weighted
  bound ``(1/n) Σ_i log (1/M) Σ_m w_im ≤ log p(x_i)`` (reparameterised in τ), so the entropy term
  tunes τ for the tightest bound, as VERA tunes its proposal.

Both proposals start at the true z: the chain (or the proposal cloud) must move away from it,
because ``−(x − G(z))/σ² = −ε/σ`` at the true z is uncorrelated with z and gives an
entropy gradient of zero in expectation. Short chains therefore shrink the gradient.

The generator must be a :class:`mege.generators.NoisyGenerator` (``mean(z)`` = G(z), ``sigma``); the
estimators say so with ``needs_noisy_generator``. HMC's integrator and the energy gradient are
:mod:`mege.mcmc.ops`'.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from mege.entropy.base import EntropyEstimator, EntropyResult, flatten, score_surrogate
from mege.errors import check
from mege.generators import NoisyGenerator
from mege.mcmc.ops import leapfrog, value_and_grad


def _noisy_parts(estimator: EntropyEstimator, z: Tensor | None, generator: nn.Module | None) -> Tensor:
    name = type(estimator).__name__
    check(z is not None and generator is not None, f"{name} needs the latents and the generator; call it as estimator(x, z, generator).")
    check(isinstance(generator, NoisyGenerator),
          f"{name} needs a noisy generator x = G(z) + σε; use generator=noisy_mlp (or wrap yours in mege.generators.NoisyGenerator).")
    return torch.as_tensor(generator.sigma).detach()


def log_joint(z: Tensor, x: Tensor, generator: nn.Module, sigma: Tensor) -> Tensor:
    """``log N(z; 0, I) + log N(x; G(z), σ² I)`` up to constants, per row (n,)."""
    residual = x - flatten(generator.mean(z))
    return -0.5 * z.pow(2).sum(dim=1) - residual.pow(2).sum(dim=1) / (2 * sigma**2)


def _log_joint_and_grad(z: Tensor, x: Tensor, generator: nn.Module, sigma: Tensor) -> tuple[Tensor, Tensor]:
    return value_and_grad(lambda q: log_joint(q, x, generator, sigma), z)


class HMCPosteriorScore(EntropyEstimator):
    """``ŝ(x_i) = −(1/T) Σ_t (x_i − G(z_i^t)) / σ²`` with z^t from HMC on p(z | x_i), started at z_i."""

    needs_latents = True
    needs_generator = True
    needs_noisy_generator = True

    def __init__(self, steps: int = 6, burn_in: int = 2, leapfrog: int = 5, step_size: float = 0.1,
                 target_accept: float = 0.67, adapt_rate: float = 0.2, jitter: float = 0.5):
        super().__init__()
        check(steps > burn_in >= 0, f"HMC needs steps > burn_in >= 0, got steps = {steps}, burn_in = {burn_in}")
        check(0 <= jitter < 1, f"jitter must be in [0, 1), got {jitter}")
        self.steps, self.burn_in, self.leapfrog = int(steps), int(burn_in), int(leapfrog)
        self.jitter = float(jitter)
        self.target_accept, self.adapt_rate = float(target_accept), float(adapt_rate)
        self.register_buffer("step_size", torch.tensor(float(step_size)))

    def sample_posterior(self, x: Tensor, z: Tensor, generator: nn.Module, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """Chain states after burn-in (T, n, k) and the mean acceptance rate."""
        current, (log_p, grad) = z.detach(), _log_joint_and_grad(z, x, generator, sigma)
        kept, accepted = [], []
        for step in range(self.steps):
            spread = 1 + self.jitter * (2 * torch.rand(z.shape[0], 1, dtype=z.dtype, device=z.device) - 1)
            eps = self.step_size.to(z.dtype) * spread  # per-chain jitter breaks periodic trajectories
            momentum = torch.randn_like(current)
            q, p, new_log_p, g = leapfrog(current, momentum, grad, eps, self.leapfrog,
                                          lambda q: _log_joint_and_grad(q, x, generator, sigma))
            log_ratio = new_log_p - log_p - 0.5 * (p.pow(2).sum(1) - momentum.pow(2).sum(1))
            accept = torch.rand_like(log_ratio).log() < log_ratio
            current = torch.where(accept[:, None], q, current)
            log_p = torch.where(accept, new_log_p, log_p)
            grad = torch.where(accept[:, None], g, grad)
            accepted.append(accept.to(z.dtype).mean())
            if step >= self.burn_in:
                kept.append(current)
        rate = torch.stack(accepted).mean()
        if self.training:
            self.step_size.mul_(torch.exp(self.adapt_rate * (rate - self.target_accept)))
        return torch.stack(kept), rate

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        sigma = _noisy_parts(self, z, generator)
        x_flat = flatten(x).detach()
        with torch.no_grad():
            chain, rate = self.sample_posterior(x_flat, z, generator, sigma)
            states = rearrange(chain, "t n k -> (t n) k")
            means = rearrange(flatten(generator.mean(states)), "(t n) d -> t n d", t=chain.shape[0])
            score = -(x_flat - means).mean(dim=0) / sigma**2
        return EntropyResult(surrogate=score_surrogate(x, score),
                             info={"hmc_accept": rate, "hmc_step_size": self.step_size.clone()})


class ImportancePosteriorScore(EntropyEstimator):
    """``ŝ(x_i) = −Σ_m w̄_im (x_i − G(z_im)) / σ²`` with z_im ~ N(z_i, τ²I), self-normalised weights."""

    needs_latents = True
    needs_generator = True
    needs_noisy_generator = True

    def __init__(self, samples: int = 20, proposal_scale: float = 1.0, learn_scale: bool = True):
        super().__init__()
        check(samples >= 1 and proposal_scale > 0, "samples must be >= 1 and proposal_scale > 0")
        self.samples = int(samples)
        log_scale = torch.tensor(math.log(proposal_scale))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def log_weights(self, x: Tensor, z: Tensor, generator: nn.Module, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """Log importance weights ``log p(z_m) p(x|z_m) / q(z_m)``, constants included (m, n), and residuals x − G(z_m)."""
        n, k = z.shape
        tau = self.log_scale.exp() * sigma
        noise = torch.randn(self.samples, n, k, dtype=z.dtype, device=z.device)
        proposals = z.detach() + tau * noise  # (m, n, k)
        means = flatten(generator.mean(rearrange(proposals, "m n k -> (m n) k")))
        residual = x - rearrange(means, "(m n) d -> m n d", m=self.samples)
        log_w = (-0.5 * proposals.pow(2).sum(-1) - residual.pow(2).sum(-1) / (2 * sigma**2)
                 + 0.5 * noise.pow(2).sum(-1) + k * torch.log(tau))
        log_w = log_w - 0.5 * x.shape[1] * math.log(2 * math.pi) - x.shape[1] * torch.log(sigma)  # (2π)^{k/2} cancels
        return log_w, residual

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        sigma = _noisy_parts(self, z, generator)
        x_flat = flatten(x).detach()
        learn = isinstance(self.log_scale, nn.Parameter)
        with torch.set_grad_enabled(learn):
            log_w, residual = self.log_weights(x_flat, z, generator, sigma)
        aux = -(torch.logsumexp(log_w, dim=0) - math.log(self.samples)).mean() if learn else None
        weights = torch.softmax(log_w.detach(), dim=0)  # (m, n)
        score = -(weights[..., None] * residual.detach()).sum(dim=0) / sigma**2
        ess = 1.0 / weights.pow(2).sum(dim=0)
        return EntropyResult(surrogate=score_surrogate(x, score), aux_loss=aux,
                             info={"is_ess_fraction": ess.mean() / self.samples, "is_scale": self.log_scale.detach().exp()})
