"""Every registered estimator trains grid-25 end to end through the trainer with finite losses
(a few steps; the posterior estimators with the noisy generator they require)."""

from __future__ import annotations

import math

import pytest
from conftest import TINY
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mege.config import config_dir
from mege.entropy.catalogue import CONFIG_DIR, estimator_names
from mege.train import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")


def config_for(name: str):
    """conftest's tiny config on grid-25; the noisy MLP generator for estimators that need one."""
    noisy = "posterior" in OmegaConf.load(CONFIG_DIR / f"{name}.yaml")._target_
    generator = ["generator=noisy_mlp", "generator.base.hidden=32", "generator.base.depth=2"] if noisy else []
    tiny = [o for o in TINY if not (noisy and o.startswith("generator."))]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("config", overrides=[*tiny, f"entropy={name}", "data=grid25", "train.steps=3",
                                            "train.eval_every=3", "train.log_every=1", "ema_decay=null", *generator])


@pytest.mark.parametrize("name", estimator_names())
def test_estimator_trains_grid25_with_finite_losses(name, tmp_path):
    trainer = Trainer(config_for(name), tmp_path)
    logs = [trainer.train_step() for _ in range(2)]
    for row in logs:
        for key, value in row.items():
            assert math.isfinite(float(value.float().sum())), f"{name}: {key} = {value}"
    trainer.step = 2
    summary = trainer.fit()
    assert summary["status"] == "completed" and summary["step"] == 3
