"""EntropyTerm: the only reader of the estimator's flags; its fit steps and aux-loss step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from mege.entropy.base import EntropyEstimator, EntropyResult
from mege.entropy.posterior import ImportancePosteriorScore
from mege.entropy.term import EntropyTerm
from mege.errors import MegeError
from mege.generators import MLPGenerator, NoisyGenerator

REPO = Path(__file__).resolve().parents[2]


class Recorder(EntropyEstimator):
    """Records what it was called with; a one-parameter aux loss ``(w − 3)²``."""

    def __init__(self, needs_latents=False, needs_generator=False, fit_steps=0):
        super().__init__()
        self.needs_latents, self.needs_generator, self.fit_steps = needs_latents, needs_generator, fit_steps
        self.w = nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, x, z=None, generator=None):
        self.calls.append((z is not None, generator is not None))
        return EntropyResult(surrogate=x.sum() * 0, aux_loss=(self.w - 3) ** 2)


def test_estimate_passes_only_what_the_flags_ask_for():
    x, z, g = torch.randn(4, 2), torch.randn(4, 2), nn.Identity()
    for latents, generator in ((False, False), (True, False), (True, True)):
        est = Recorder(latents, generator)
        EntropyTerm(est).estimate(x, z, g)
        assert est.calls == [(latents, generator)]


def test_fit_steps_and_the_aux_step_use_the_estimators_own_optimizer():
    est = Recorder(fit_steps=3)
    term = EntropyTerm(est, lambda params: torch.optim.SGD(params, lr=0.1))
    z = torch.randn(4, 2)
    term.fit(lambda: z * 2, z, nn.Identity())
    assert len(est.calls) == 3 and float(est.w.detach()) == pytest.approx(3 - 3 * 0.8**3)  # w ← w − 0.1·2(w − 3)
    x = torch.randn(4, 2, requires_grad=True)
    result = term.estimate(x)
    aux = term.backward((x**2).sum(), result, [x])
    assert x.grad is not None and aux is not None and float(est.w.detach()) == pytest.approx(3 - 3 * 0.8**4)
    assert EntropyTerm(Recorder(fit_steps=3)).fit_steps == 0  # no optimiser: nothing to fit


def test_an_estimator_that_needs_a_noisy_generator_refuses_another():
    term = EntropyTerm(ImportancePosteriorScore(samples=2))
    plain = MLPGenerator(z_dim=2, x_dim=2, hidden=8, depth=1)
    with pytest.raises(MegeError, match=r"needs a noisy generator x = G\(z\) \+ σε .*use generator=noisy_mlp"):
        term.check_generator(plain)
    term.check_generator(NoisyGenerator(plain, sigma=0.1))


def test_the_trainer_never_mentions_the_estimators_flags_or_aux_steps():
    for path in (REPO / "mege" / "training").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"fit_steps|needs_latents|needs_generator|retain_graph|\.aux_loss", text), path


def test_fit_passes_the_latents_and_generator_its_estimator_asks_for_on_a_detached_batch():
    """fit() steps on one batch generate(); an estimator with needs_latents/needs_generator gets the
    step's own z and generator in every fit step, as in the joint step."""

    class Seen(Recorder):
        def forward(self, x, z=None, generator=None):
            self.seen = getattr(self, "seen", []) + [(x, z, generator)]
            return super().forward(x, z, generator)

    est = Seen(needs_latents=True, needs_generator=True, fit_steps=2)
    term = EntropyTerm(est, lambda params: torch.optim.SGD(params, lr=0.1))
    z, g = torch.randn(4, 2, requires_grad=True), nn.Identity()
    term.fit(lambda: z * 2, z, g)
    assert len(est.seen) == 2
    for x, z_seen, g_seen in est.seen:
        assert torch.equal(x, z.detach() * 2) and not x.requires_grad  # generated without a graph
        assert z_seen is z and g_seen is g
    assert float(est.w.detach()) == pytest.approx(3 - 3 * 0.8**2)


def test_the_aux_step_starts_from_a_zero_gradient():
    """backward() steps aux_loss alone: a gradient left on the estimator (by fit, or anything else)
    is cleared first, so w moves by exactly lr·2(w − 3)."""
    est = Recorder()
    term = EntropyTerm(est, lambda params: torch.optim.SGD(params, lr=0.1))
    est.w.grad = torch.tensor(100.0)  # stale
    x = torch.randn(4, 2, requires_grad=True)
    aux = term.backward((x**2).sum(), term.estimate(x), [x])
    assert float(aux.detach()) == 9.0 and float(est.w.detach()) == pytest.approx(0.6)  # 0 − 0.1·2·(0 − 3)
    assert torch.equal(x.grad, 2 * x.detach())
