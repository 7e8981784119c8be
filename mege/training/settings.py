"""The run's config, checked once and frozen into :class:`Settings` (docs/design.md §6).

:func:`validate` holds the checks hydra cannot do, each a one-line error naming the fix.
:class:`Settings` is a frozen dataclass of plain Python values: the hot loop reads these, not
OmegaConf nodes (reading a node costs microseconds per key), and nothing downstream of
:func:`Settings.from_config` sees the config again.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mege.errors import check

POSITIVE_INTS = ("steps", "batch_size", "critic_steps", "eval_every", "log_every", "ckpt_every", "penalty_every")
FLAGS = ("compile", "amp", "channels_last")
DEFAULT_OPTIMIZED_METRIC = "reverse_kl"


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate(cfg: DictConfig) -> None:
    """Config checks that hydra cannot do, each a one-line error naming the fix."""
    lam = cfg.get("lambda_h")
    check(isinstance(lam, numbers.Real) and not isinstance(lam, bool) and math.isfinite(lam) and lam >= 0,
          f"lambda_h must be a finite number ≥ 0 (got {lam!r}); use lambda_h=0 to switch the entropy term off.")
    t = cfg.train
    for key in POSITIVE_INTS:
        value = t.get(key, 1 if key == "penalty_every" else None)
        check(is_int(value) and value > 0, f"train.{key} must be a positive integer (got {value!r}); e.g. train.{key}=100.")
    check(is_int(t.get("eval_seed", 0)), f"train.eval_seed must be an integer (got {t.get('eval_seed')!r}).")
    check(is_int(cfg.get("seed", 0)), f"seed must be an integer (got {cfg.get('seed')!r}).")
    for key in FLAGS:
        value = t.get(key, False)
        check(isinstance(value, bool), f"train.{key} must be true or false (got {value!r}).")
    joint = t.get("joint_critic_forward")
    check(joint is None or isinstance(joint, bool),
          f"train.joint_critic_forward must be true, false or null (= auto) (got {joint!r}).")
    check(isinstance(cfg.get("ema_warmup", False), bool),
          f"ema_warmup must be true or false (got {cfg.get('ema_warmup')!r}).")
    decay = cfg.get("ema_decay")
    check(decay is None or (isinstance(decay, numbers.Real) and not isinstance(decay, bool) and 0 < decay < 1),
          f"ema_decay must be in (0, 1) (got {decay!r}); e.g. ema_decay=0.999, or ema_decay=null to turn EMA off.")
    for key in ("x_dim", "z_dim"):
        value = cfg.get(key)
        check(is_int(value) and value > 0, f"{key} must be a positive integer (got {value!r}).")
    allowed = cfg.get("allowed_targets") or []
    check(OmegaConf.is_list(allowed) or isinstance(allowed, (list, tuple)),
          f"allowed_targets must be a list of module prefixes (got {allowed!r}); e.g. allowed_targets=[mypkg.].")
    end = cfg.get("lambda_h_end")
    check(end is None or float(end) >= 0, f"lambda_h_end must be ≥ 0 or null (got {end}).")
    resume = t.get("resume", True)
    check(isinstance(resume, bool) or resume == "force",
          f"train.resume must be true, false or force (got {resume!r}); force continues a checkpoint written "
          f"under another config.")
    metric = cfg.get("optimized_metric", DEFAULT_OPTIMIZED_METRIC)
    check(metric is None or isinstance(metric, str),
          f"optimized_metric must be a metric name such as reverse_kl, or null (got {metric!r}).")


@dataclass(frozen=True)
class Settings:
    """Everything the trainer reads from the config, as plain values."""

    steps: int
    batch_size: int
    critic_steps: int
    log_every: int
    eval_every: int
    ckpt_every: int
    penalty_every: int
    lambda_h: float
    lambda_h_end: float | None
    joint_critic_forward: bool
    amp: bool
    channels_last: bool
    compile: bool
    device: torch.device
    name: str
    eval_seed: int
    resume: bool | str  # true, false, or "force" (continue a checkpoint written under another config)
    progress: bool
    plot: bool
    plot_samples: int
    optimized_metric: str | None
    config_text: str  # the resolved config, written to the run folder as config.yaml

    @classmethod
    def from_config(cls, cfg: DictConfig, device: torch.device) -> "Settings":
        validate(cfg)
        t = cfg.train
        joint = t.get("joint_critic_forward")
        end = cfg.get("lambda_h_end")
        settings = cls(**{k: int(t.get(k, 1)) for k in POSITIVE_INTS}, lambda_h=float(cfg.lambda_h),
                       lambda_h_end=None if end is None else float(end),
                       joint_critic_forward=device.type == "cuda" if joint is None else bool(joint),
                       amp=bool(t.get("amp", False)), channels_last=bool(t.get("channels_last", False)),
                       compile=bool(t.get("compile", False)), device=device, name=str(cfg.get("name", "train")),
                       eval_seed=int(t.get("eval_seed", 0)), resume=t.get("resume", True),
                       progress=bool(t.get("progress", True)), plot=bool(t.get("plot", True)),
                       plot_samples=int(t.get("plot_samples", 2500)),
                       optimized_metric=cfg.get("optimized_metric", DEFAULT_OPTIMIZED_METRIC),
                       config_text=OmegaConf.to_yaml(cfg, resolve=True))
        check(not (settings.amp or settings.channels_last) or device.type == "cuda",
              "train.amp and train.channels_last are GPU options; set them to false on CPU.")
        return settings

    def lambda_h_at(self, step: int) -> float:
        """λ_H at ``step``: constant, or linear from ``lambda_h`` to ``lambda_h_end`` over the run."""
        if self.lambda_h_end is None:
            return self.lambda_h
        return self.lambda_h + (self.lambda_h_end - self.lambda_h) * min(1.0, step / self.steps)
