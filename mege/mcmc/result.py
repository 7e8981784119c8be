"""What every sampler returns: :class:`MCMCResult` (final states, kept chain, acceptance, step sizes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


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
