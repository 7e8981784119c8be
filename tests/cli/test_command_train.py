"""``mege train``: the value returned to a sweeper is the config's ``optimized_metric``."""

from __future__ import annotations

from mege.cli.train import sweep_objective
from mege.training import Settings, validate


def test_sweep_objective_is_the_configured_metric_of_the_ema_else_the_raw_generator():
    summary = {"metrics": {"reverse_kl": 0.5, "modes": 7}, "ema_metrics": {"reverse_kl": 0.25, "modes": 8}}
    assert sweep_objective(summary, "reverse_kl") == 0.25
    assert sweep_objective(summary, "modes") == 8
    assert sweep_objective({**summary, "ema_metrics": None}, "modes") == 7
    assert sweep_objective(summary, None) is None


def test_optimized_metric_comes_from_the_config(make_cfg):
    import torch
    cfg = make_cfg("optimized_metric=assigned_kl")
    validate(cfg)
    assert Settings.from_config(cfg, torch.device("cpu")).optimized_metric == "assigned_kl"
    assert Settings.from_config(make_cfg(), torch.device("cpu")).optimized_metric == "reverse_kl"
