"""Every registered estimator trains grid-25 end to end through the trainer (a few steps; the
posterior estimators with the noisy generator they require), and at every step the trainer's
generator loss is exactly ``energy − λ_H(step) · surrogate`` with λ_H on its schedule, and an
estimator with parameters of its own has them stepped by the trainer."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY
from hydra import compose, initialize_config_dir

from mege.config import config_dir
from mege.entropy.catalogue import estimator_names
from mege.entropy.facts import facts_of
from mege.training import trainer_from_config

pytestmark = pytest.mark.usefixtures("single_thread")
LAMBDA, LAMBDA_END, STEPS = 0.3, 0.9, 3  # λ_H(step) = 0.3 + 0.6·step/3: 0.3, 0.5, 0.7


def config_for(name: str):
    """conftest's tiny config on grid-25; the noisy MLP generator for estimators that need one."""
    noisy = facts_of(name).needs_noisy_generator
    generator = ["generator=noisy_mlp", "generator.base.hidden=32", "generator.base.depth=2"] if noisy else []
    tiny = [o for o in TINY if not (noisy and o.startswith("generator."))]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("config", overrides=[*tiny, f"entropy={name}", "data=grid25", f"train.steps={STEPS}",
                                            "train.eval_every=3", "train.log_every=1", "ema_decay=null",
                                            f"lambda_h={LAMBDA}", f"lambda_h_end={LAMBDA_END}", *generator])


@pytest.mark.parametrize("name", estimator_names())
def test_estimator_trains_grid25_with_the_entropy_term_on_schedule(name, tmp_path):
    trainer = trainer_from_config(config_for(name), tmp_path)
    own = [p for p in trainer.estimator.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in own]
    for step in range(2):
        trainer.step = step
        logs = trainer.train_step()
        lam = LAMBDA + (LAMBDA_END - LAMBDA) * step / STEPS
        expected = logs["generator_energy"] - lam * logs["entropy_surrogate"]
        assert torch.allclose(logs["generator_loss"], expected, rtol=1e-5, atol=1e-6), (name, step, logs)
        if name != "none":  # otherwise the identity would hold with any λ_H
            assert float(logs["entropy_surrogate"].abs()) > 0
    if own:  # the trainer steps the estimator's own parameters (aux_loss)
        assert any(not torch.equal(a, p.detach()) for a, p in zip(before, own)), name
    trainer.step = 2
    summary = trainer.fit()
    assert summary["status"] == "completed" and summary["step"] == STEPS
