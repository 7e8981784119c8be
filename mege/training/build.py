"""The composition root: a validated config in, the run's components out (docs/design.md §6).

:func:`build` is the only place that instantiates anything from a config: data, critic,
generator, loss, penalty, the entropy term (estimator + its optimiser), metric, logger, the EMA,
optimisers and schedules. It seeds the RNGs first and then checks that data, generator, critic and
estimator agree on shapes, turning their own errors into one-line fixes. The trainer receives
the finished :class:`Components` and never reads the config.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from mege.config import instantiate
from mege.ema import EMA, ema_or_none
from mege.entropy.facts import constructor_node
from mege.entropy.term import EntropyTerm, estimate, trainable
from mege.errors import MegeError, check
from mege.loggers import JsonlLogger
from mege.training.settings import Settings
from mege.utils import seed_everything


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@dataclass
class Components:
    """Everything a run is made of; built by :func:`build`."""

    data: Any
    critic: nn.Module
    generator: nn.Module
    loss: Any
    penalty: nn.Module
    entropy: EntropyTerm
    metric: Any
    logger: Any
    ema: EMA | None
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    schedulers: dict[str, Any] = field(default_factory=dict)
    forwards: dict[str, Callable[..., Tensor]] = field(default_factory=dict)

    @property
    def estimator(self) -> nn.Module:
        return self.entropy.estimator

    @property
    def modules(self) -> dict[str, nn.Module]:
        """The modules a checkpoint holds, by name."""
        out = {"critic": self.critic, "generator": self.generator, "entropy": self.estimator}
        if self.ema is not None:
            out["ema"] = self.ema
        return out


def _optimizer(cfg: DictConfig, name: str, node: DictConfig | None = None) -> Callable[[list[Tensor]], torch.optim.Optimizer]:
    """The ``_partial_`` optimiser ``node`` (default ``optim.<name>``), its errors as one-line fixes."""
    node = cfg.optim[name] if node is None else node
    build = instantiate(node, cfg.get("allowed_targets"), where=f"optim.{name}")

    def make(params: list[Tensor]) -> torch.optim.Optimizer:
        try:
            return build(params)
        except (ValueError, TypeError) as err:
            raise MegeError(f"optim.{name}: {first_line(err)}; fix optim.{name} (e.g. optim.{name}.lr=2e-4).") from None
    return make


def build(cfg: DictConfig, settings: Settings) -> Components:
    """Instantiate the run's components from ``cfg`` (seeded by ``cfg.seed``) and check their shapes."""
    device = settings.device
    seed_everything(cfg.seed)
    allowed = cfg.get("allowed_targets")
    logger = instantiate(cfg.logger, allowed, where="logger") if cfg.get("logger") else JsonlLogger()
    data = instantiate(cfg.data, allowed, where="data")
    critic = instantiate(cfg.energy, allowed, where="energy").to(device)
    generator = instantiate(cfg.generator, allowed, where="generator").to(device)
    loss = instantiate(cfg.loss, allowed, where="loss")
    penalty = instantiate(cfg.penalty, allowed, where="penalty").to(device)
    # an estimator's yaml may carry its own optimiser (`optimizer:`, a _partial_; else optim.entropy) and
    # its facts (mege.entropy.facts); neither reaches the constructor
    own_optimizer = cfg.entropy.get("optimizer")
    estimator = instantiate(constructor_node(cfg.entropy), allowed, where="entropy").to(device)
    metric = instantiate(cfg.metric, allowed, where="metric")
    ema = ema_or_none(generator, cfg.get("ema_decay"), bool(cfg.get("ema_warmup", False)))
    check_shapes(data, critic, generator, estimator, cfg, settings)
    if hasattr(metric, "check_data"):  # a metric that cannot score this data fails now, not at the first evaluation
        metric.check_data(data)
    if settings.channels_last:
        for module in (critic, generator):
            module.to(memory_format=torch.channels_last)

    optimizers = {"critic": _optimizer(cfg, "critic")(trainable(critic)),
                  "generator": _optimizer(cfg, "generator")(trainable(generator))}
    entropy = EntropyTerm(estimator, _optimizer(cfg, "entropy", own_optimizer) if trainable(estimator) else None)
    if entropy.optimizer is not None:
        optimizers["entropy"] = entropy.optimizer
    schedule = cfg.optim.get("schedule")
    schedulers = {name: instantiate(schedule, allowed, where="optim.schedule")(opt)
                  for name, opt in optimizers.items()} if schedule else {}
    forwards = compiled(generator, critic) if settings.compile else {"generator": generator, "critic": critic}
    return Components(data, critic, generator, loss, penalty, entropy, metric, logger, ema,
                      optimizers, schedulers, forwards)


def compiled(generator: nn.Module, critic: nn.Module) -> dict[str, Callable[..., Tensor]]:
    """``torch.compile`` of the generator and of the critic's forward in the generator step.

    The critic step stays eager (compiled graphs do not support the penalty's double backward)
    and so do estimators (inductor in torch 2.13 fails on the MI critic's split of its scores).
    Random ops keep eager semantics. Measured: no gain on CPU (tools/bench/results.md).
    """
    import torch._inductor.config as inductor_config
    inductor_config.fallback_random = True
    return {"generator": torch.compile(generator), "critic": torch.compile(critic)}


def check_shapes(data, critic: nn.Module, generator: nn.Module, estimator: nn.Module, cfg: DictConfig,
                 settings: Settings) -> None:
    """Data, generator, critic and estimator agree on shapes (their own errors become one-line fixes)."""
    device = settings.device
    real = data.sample(2)
    check(bool(torch.isfinite(real).all()), "the data contains NaN or Inf values; clean the dataset or its config.")
    with torch.no_grad():
        fake = generator(generator.sample_latent(2, device))
    check(tuple(real.shape[1:]) == tuple(fake.shape[1:]),
          f"data samples have shape {tuple(real.shape[1:])} but the generator makes {tuple(fake.shape[1:])}; "
          f"set x_dim (and the network configs) to match the data.")
    check(real[0].numel() == cfg.x_dim,
          f"x_dim={cfg.x_dim} but data samples have {real[0].numel()} values; set x_dim={real[0].numel()}.")
    EntropyTerm(estimator).check_generator(generator)
    # The rest runs on copies and a forked RNG: training sees exactly the state it would without it.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        critic = copy.deepcopy(critic)
        try:
            with torch.no_grad():
                u = critic(real.to(device))
        except RuntimeError as err:
            raise MegeError(f"the critic cannot take data of shape {tuple(real.shape[1:])} ({first_line(err)}); "
                            f"set energy.x_dim (or x_dim) to match the data.") from None
        check(tuple(u.shape) == (2,), f"the critic must return one energy per sample, shape (n,), "
                                      f"but returned {tuple(u.shape)}; make its forward end with .squeeze(1).")
        try:
            estimator, generator = copy.deepcopy(estimator), copy.deepcopy(generator)
        except Exception:  # noqa: BLE001 — a module that cannot be copied is checked by its first step instead
            return
        n = settings.batch_size
        z, x = generator.sample_latent(n, device), fake
        try:
            x = generator(z)
            estimate(estimator, x, z, generator)
        except MegeError as err:  # the estimator's own one-line error already names the fix
            raise MegeError(f"entropy ({type(estimator).__name__}): {err}") from None
        except (RuntimeError, ValueError, IndexError) as err:
            raise MegeError(f"the entropy estimator {type(estimator).__name__} fails on {n} generated samples of "
                            f"shape {tuple(x.shape[1:])} with latents of dim {z.shape[1]} ({first_line(err)}); "
                            f"set its x_dim/z_dim to the config's x_dim={cfg.x_dim}, z_dim={cfg.z_dim}.") from None
