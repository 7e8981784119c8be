r"""The entropy term ``−λ_H·Ĥ`` of the generator's objective, with everything its estimator needs.

:class:`EntropyTerm` holds the estimator and, when the estimator has parameters of its own, their
optimiser. It is the only place that reads the estimator's flags (docs/design.md §3):

* ``needs_latents`` / ``needs_generator``: what :meth:`EntropyTerm.estimate` passes to ``forward``;
* ``needs_noisy_generator``: the generator must be a :class:`mege.generators.NoisyGenerator`
  (checked once, by :meth:`EntropyTerm.check_generator`);
* ``fit_steps``: the extra ``aux_loss`` steps :meth:`EntropyTerm.fit` takes per generator step on
  detached samples, before the joint step;
* ``aux_loss``: stepped by :meth:`EntropyTerm.backward` from the generator step's own forward pass.

The trainer calls :meth:`fit`, :meth:`estimate` (through :func:`mege.objectives.generator_objective`)
and :meth:`backward`; it never looks at the flags.
"""

from __future__ import annotations

import contextlib
from typing import Callable

from torch import Tensor, nn
from torch.optim import Optimizer

from mege.entropy.base import EntropyEstimator, EntropyResult
from mege.errors import check

OptimizerFactory = Callable[[list[Tensor]], Optimizer]


def estimate(estimator: nn.Module, x: Tensor, z: Tensor | None, generator: nn.Module | None,
             forward: Callable[..., EntropyResult] | None = None) -> EntropyResult:
    """``estimator(x, z=…, generator=…)`` passing only what its flags ask for."""
    return (forward or estimator)(x, z=z if getattr(estimator, "needs_latents", False) else None,
                                  generator=generator if getattr(estimator, "needs_generator", False) else None)


def trainable(module: nn.Module) -> list[Tensor]:
    """The parameters of ``module`` that require a gradient."""
    return [p for p in module.parameters() if p.requires_grad]


class EntropyTerm:
    """The estimator, its optional optimiser and the steps that train it.

    estimator: an :class:`~mege.entropy.base.EntropyEstimator`.
    optimizer: a factory ``params -> Optimizer`` (a ``_partial_`` config); used only when the
        estimator has trainable parameters.
    forward: the callable used for the forward pass (e.g. a compiled estimator); default the estimator.
    """

    def __init__(self, estimator: EntropyEstimator, optimizer: OptimizerFactory | None = None,
                 forward: Callable[..., EntropyResult] | None = None):
        self.estimator = estimator
        self.params = trainable(estimator)
        self.optimizer = optimizer(self.params) if optimizer is not None and self.params else None
        self.forward = forward or estimator
        self.fit_steps = int(getattr(estimator, "fit_steps", 0)) if self.optimizer is not None else 0

    def check_generator(self, generator: nn.Module) -> None:
        """An estimator that needs a noisy generator refuses any other, with the fix."""
        from mege.generators import NoisyGenerator
        if getattr(self.estimator, "needs_noisy_generator", False):
            check(isinstance(generator, NoisyGenerator),
                  f"{type(self.estimator).__name__} needs a noisy generator x = G(z) + σε "
                  f"(mege.generators.NoisyGenerator); use generator=noisy_mlp.")

    def estimate(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        return estimate(self.estimator, x, z, generator, self.forward)

    __call__ = estimate

    def fit(self, generate: Callable[[], Tensor], z: Tensor, generator: nn.Module,
            autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        """``fit_steps`` optimiser steps of ``aux_loss`` on one detached batch ``generate()``."""
        if not self.fit_steps:
            return
        import torch
        with torch.no_grad(), autocast():
            x = generate()
        for _ in range(self.fit_steps):
            with autocast():
                result = self.estimate(x, z, generator)
            self.optimizer.zero_grad(set_to_none=True)
            result.aux_loss.backward(inputs=self.params)
            self.optimizer.step()

    def backward(self, loss: Tensor, result: EntropyResult, inputs: list[Tensor]) -> Tensor | None:
        """Backpropagate the generator's ``loss`` into ``inputs``, then step the estimator's own
        ``aux_loss`` from the same forward pass. Returns that aux loss (None when there is none)."""
        aux = result.aux_loss if self.optimizer is not None else None
        loss.backward(inputs=inputs, retain_graph=aux is not None)
        if aux is not None:
            self.optimizer.zero_grad(set_to_none=True)
            aux.backward(inputs=self.params)
            self.optimizer.step()
        return aux
