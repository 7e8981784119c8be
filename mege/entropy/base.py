r"""The estimator contract.

The generator minimises ``E_z U(G(z)) − λ_H · H(G(Z))``. Every estimator returns an
:class:`EntropyResult` whose ``surrogate`` is a scalar with ``∇_θ surrogate ≈ ∇_θ H`` when
``x = G_θ(z)`` carries the graph back to the generator.

For score-based estimators, with ``s(x) = ∇_x log p_θ(x)``,

    ∇_θ H = −E_z[ s(x)ᵀ ∂x/∂θ ]   so   surrogate = −mean_i Σ_d stopgrad(ŝ(x_i))_d · x_{i,d}.

A subclass of :class:`ScoreEstimator` implements only :meth:`ScoreEstimator.score`.
Value estimators (KDE, kNN, flow cross-entropy) return a differentiable ``value`` and use it
as the surrogate. Estimators with parameters of their own (an MI critic, a flow) return an
``aux_loss``; :class:`mege.entropy.term.EntropyTerm` owns their optimiser and backpropagates
``aux_loss`` into the estimator's parameters only.

Class-level flags say what an estimator needs and gives; the generic contract tests check
that they are honest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from einops import rearrange
from torch import Tensor, nn


@dataclass
class EntropyResult:
    """What an estimator returns for one batch.

    surrogate: scalar; its gradient w.r.t. the samples (and through them the generator)
        is the entropy-gradient estimate.
    value: entropy estimate in nats (a detached-or-not scalar), or None when there is none.
    aux_loss: loss for the estimator's own parameters, or None.
    info: scalars to log (floats or 0-d tensors; the trainer converts them only at log
        intervals, so estimators need no host sync).
    """

    surrogate: Tensor
    value: Tensor | None = None
    aux_loss: Tensor | None = None
    info: dict[str, float | Tensor] = field(default_factory=dict)


class EntropyEstimator(nn.Module):
    """Base class. ``forward(x, z=None, generator=None) -> EntropyResult``.

    Flags (class attributes):
      needs_latents: forward needs the latents ``z`` with ``x = G(z)``.
      needs_generator: forward needs the generator module itself.
      needs_noisy_generator: that generator must be a :class:`mege.generators.NoisyGenerator`.
      gives_value: ``value`` is an entropy estimate in nats (not None).
      value_bound: 'upper', 'lower' or None (an estimate with no guaranteed side).
      fit_steps: extra optimisation steps of ``aux_loss`` the entropy term takes per generator step
        (on detached samples) before the joint step.
    """

    needs_latents: ClassVar[bool] = False
    needs_generator: ClassVar[bool] = False
    needs_noisy_generator: ClassVar[bool] = False
    gives_value: ClassVar[bool] = False
    value_bound: ClassVar[Literal["upper", "lower"] | None] = None
    fit_steps: int = 0

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        raise NotImplementedError


def flatten(x: Tensor) -> Tensor:
    """(b, ...) -> (b, d): every non-batch axis is one sample's coordinates."""
    return rearrange(x, "b ... -> b (...)")


def score_surrogate(x: Tensor, score: Tensor) -> Tensor:
    """``−mean_i Σ_d stopgrad(ŝ(x_i))_d x_{i,d}``: its gradient is the entropy gradient."""
    return -(score.detach() * flatten(x)).sum(dim=1).mean()


class ScoreEstimator(EntropyEstimator):
    """Estimators of the score ``∇_x log p(x)``; subclasses implement :meth:`score` on (n, d)."""

    def score(self, x: Tensor) -> Tensor:
        """Score estimate at each sample, shape (n, d) for flattened input (n, d)."""
        raise NotImplementedError

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        return EntropyResult(surrogate=score_surrogate(x, self.score(flatten(x).detach())))
