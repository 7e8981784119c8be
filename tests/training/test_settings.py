"""Settings: the λ_H schedule in closed form, the checks of validate(), the auto rules of from_config.

Direct and fast (no training): ``Settings.from_config`` on a composed config, values asserted
against the documented rule, not against the code's own output.
"""

from __future__ import annotations

import pytest
import torch

from mege.errors import MegeError
from mege.training.settings import Settings, validate

CPU = torch.device("cpu")


def test_lambda_h_schedule_is_linear_then_held_at_the_end(make_cfg):
    s = Settings.from_config(make_cfg("lambda_h=2.0", "lambda_h_end=0.5", "train.steps=40"), CPU)
    # λ_H(t) = 2 + (0.5 − 2)·min(1, t/40): 2 at the start, 1.25 half-way, 0.5 from step 40 on
    assert [s.lambda_h_at(t) for t in (0, 10, 20, 40, 80)] == pytest.approx([2.0, 1.625, 1.25, 0.5, 0.5])
    rising = Settings.from_config(make_cfg("lambda_h=0.0", "lambda_h_end=1.0", "train.steps=4"), CPU)
    assert [rising.lambda_h_at(t) for t in range(6)] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    constant = Settings.from_config(make_cfg("lambda_h=0.7", "train.steps=40"), CPU)
    assert constant.lambda_h_end is None and constant.lambda_h_at(0) == constant.lambda_h_at(1000) == 0.7


def test_a_schedule_down_to_zero_is_allowed_and_reaches_zero(make_cfg):
    """lambda_h_end=0 anneals the entropy term away; only a negative end is refused."""
    s = Settings.from_config(make_cfg("lambda_h=1.0", "lambda_h_end=0", "train.steps=10"), CPU)
    assert s.lambda_h_end == 0.0 and s.lambda_h_at(5) == pytest.approx(0.5) and s.lambda_h_at(10) == 0.0
    with pytest.raises(MegeError, match=r"lambda_h_end must be ≥ 0 or null \(got -0\.1\)"):
        validate(make_cfg("lambda_h_end=-0.1"))


@pytest.mark.parametrize("key", ["steps", "batch_size", "critic_steps", "eval_every", "log_every", "ckpt_every"])
def test_counts_must_be_positive_integers_not_zero_nor_booleans(make_cfg, key):
    with pytest.raises(MegeError, match=rf"train\.{key} must be a positive integer \(got 0\)"):
        validate(make_cfg(f"train.{key}=0"))
    # a YAML `true` is a bool, not the count 1 (int(True) == 1 would otherwise train one step)
    with pytest.raises(MegeError, match=rf"train\.{key} must be a positive integer \(got True\)"):
        validate(make_cfg(f"train.{key}=true"))
    assert getattr(Settings.from_config(make_cfg(f"train.{key}=3"), CPU), key) == 3


def test_the_seed_must_be_an_integer_not_a_boolean(make_cfg):
    with pytest.raises(MegeError, match=r"seed must be an integer \(got True\)"):
        validate(make_cfg("seed=true"))


def test_joint_critic_forward_auto_is_on_only_on_a_gpu(make_cfg):
    """train.joint_critic_forward=null (auto) means one joint critic pass on CUDA, two passes on CPU."""
    auto = make_cfg("++train.joint_critic_forward=null")
    assert Settings.from_config(auto, torch.device("cuda")).joint_critic_forward is True
    assert Settings.from_config(auto, CPU).joint_critic_forward is False
    assert Settings.from_config(make_cfg("++train.joint_critic_forward=true"), CPU).joint_critic_forward is True
    assert Settings.from_config(make_cfg("++train.joint_critic_forward=false"), torch.device("cuda")).joint_critic_forward is False
