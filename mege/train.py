"""One training loop for every dataset: critic steps, generator step, evaluation, checkpoints.

Per generator step (DESIGN §1):
  1. ``critic_steps`` times: ``min_U loss.critic(U(x), U(G(z))) + penalty``;
  2. the estimator's own fit steps (``estimator.fit_steps``) on detached samples;
  3. ``min_G loss.generator(U(G(z))) − λ_H·Ĥ``, the estimator's ``aux_loss`` stepping its own
     parameters from the same forward pass;
  4. EMA of the generator's weights, ``θ̄ ← decay·θ̄ + (1 − decay)·θ``, and the learning-rate schedules.

A run directory holds ``config.yaml``, ``metrics.jsonl``, ``checkpoint.pt``, ``summary.json``
and the landscape plots; ``resume`` continues from ``checkpoint.pt``.

Speed (measured in ``experiments/bench/results.md``): the hot loop reads plain Python copies of
the config; the critic's energies are computed once per batch and shared by loss and penalty
(real and fake as separate batches on CPU, so the penalty's double backward runs over the real
rows only — see :func:`mege.objectives.critic_objective`); nothing in :meth:`Trainer.train_step`
waits for the device: losses stay device tensors, a :class:`NonFiniteWatch` records on the
device the first step at which a loss went NaN/Inf, and the EMA update skips
``AveragedModel``'s per-step ``n_averaged`` check. Host syncs happen at log, eval and
checkpoint intervals only. Flags: ``train.compile`` (``torch.compile`` of the generator-side
forwards), ``train.amp`` (bf16 autocast, CUDA only), ``train.channels_last`` (CUDA, image data).

Fault tolerance:
  * checkpoints, ``config.yaml`` and ``summary.json`` are written atomically (temp file + rename),
    so a ``kill -9`` at any moment loses at most one checkpoint interval; ``mege resume <run_dir>``
    continues, dropping ``metrics.jsonl`` rows written after the checkpoint (and a torn last
    line). A resumed CPU run ends with the same metrics as an uninterrupted one (all RNG states
    are in the checkpoint).
  * SIGTERM / SIGINT: the current step finishes, a checkpoint is saved, ``summary.json`` gets
    status ``"interrupted"``, and :meth:`Trainer.fit` raises :class:`Interrupted`, a
    ``SystemExit`` with code 128 + signal number (143 for SIGTERM, 130 for SIGINT), so shells
    and schedulers see a non-zero status. A second SIGINT aborts at once (no checkpoint).
  * a NaN/Inf loss stops the run with :class:`NonFiniteError` naming the loss and the step it
    first appeared; a checkpoint is never written with non-finite parameters, so the last good
    one stays intact.
  * checkpoints load with ``torch.load(weights_only=True)``; configs instantiate only allowed
    ``_target_`` prefixes (:mod:`mege.config`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import numbers
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from tqdm import tqdm

import mege
from mege.config import instantiate
from mege.errors import MegeError, check
from mege.generators import ema_of
from mege.loggers import METRICS, JsonlLogger
from mege.objectives import critic_objective, generator_objective
from mege.utils import atomic_write, pick_device, rng_state, seed_everything, set_rng_state, write_json

CHECKPOINT = "checkpoint.pt"
POSITIVE_INTS = ("steps", "batch_size", "critic_steps", "eval_every", "log_every", "ckpt_every", "penalty_every")
FLAGS = ("compile", "amp", "channels_last")


class NonFiniteError(MegeError):
    """A loss or parameter became NaN or Inf."""


class Interrupted(SystemExit):
    """SIGTERM/SIGINT: a checkpoint was saved; exit status 128 + signal number."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + signum)
        self.signum, self.message = signum, message

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------- config checks
def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate(cfg: DictConfig) -> None:
    """Config checks that hydra cannot do, each a one-line error naming the fix."""
    lam = cfg.get("lambda_h")
    check(isinstance(lam, numbers.Real) and not isinstance(lam, bool) and math.isfinite(lam) and lam >= 0,
          f"lambda_h must be a finite number ≥ 0 (got {lam!r}); use lambda_h=0 to switch the entropy term off.")
    t = cfg.train
    for key in POSITIVE_INTS:
        value = t.get(key, 1 if key == "penalty_every" else None)
        check(_is_int(value) and value > 0, f"train.{key} must be a positive integer (got {value!r}); e.g. train.{key}=100.")
    check(_is_int(t.get("eval_seed", 0)), f"train.eval_seed must be an integer (got {t.get('eval_seed')!r}).")
    check(_is_int(cfg.get("seed", 0)), f"seed must be an integer (got {cfg.get('seed')!r}).")
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
        check(_is_int(value) and value > 0, f"{key} must be a positive integer (got {value!r}).")
    allowed = cfg.get("allowed_targets") or []
    check(OmegaConf.is_list(allowed) or isinstance(allowed, (list, tuple)),
          f"allowed_targets must be a list of module prefixes (got {allowed!r}); e.g. allowed_targets=[mypkg.].")


@dataclass(frozen=True)
class LoopSettings:
    """Plain copies of the hot-loop config: reading an OmegaConf node costs microseconds per key."""

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

    @classmethod
    def from_config(cls, cfg: DictConfig, device: torch.device) -> "LoopSettings":
        t = cfg.train
        joint = t.get("joint_critic_forward")
        end = cfg.get("lambda_h_end")
        check(end is None or float(end) >= 0, f"lambda_h_end must be ≥ 0 or null (got {end}).")
        return cls(**{k: int(t.get(k, 1)) for k in POSITIVE_INTS}, lambda_h=float(cfg.lambda_h),
                   lambda_h_end=None if end is None else float(end),
                   joint_critic_forward=device.type == "cuda" if joint is None else bool(joint),
                   amp=bool(t.get("amp", False)), channels_last=bool(t.get("channels_last", False)),
                   compile=bool(t.get("compile", False)))


# ---------------------------------------------------------------------- hot-loop helpers
class NonFiniteWatch:
    """For each logged loss, the first step at which it was NaN/Inf — tracked on the device.

    :meth:`update` is a handful of tiny device ops and never waits for the device; :meth:`check`
    synchronises once and raises :class:`NonFiniteError` naming the loss and its step.
    """

    def __init__(self) -> None:
        self.names: tuple[str, ...] = ()
        self.first: Tensor | None = None
        self.value: Tensor | None = None

    def update(self, logs: dict[str, Tensor], step: int) -> None:
        names = tuple(logs)
        values = torch.stack([v.detach().float().sum() for v in logs.values()])
        if names != self.names:  # a new set of losses (rare): settle the old one, start over
            self.check(where="")
            self.names = names
            self.first = torch.full((len(names),), -1, dtype=torch.long, device=values.device)
            self.value = torch.zeros_like(values)
        bad = ~torch.isfinite(values) & (self.first < 0)
        self.first = torch.where(bad, step, self.first)
        self.value = torch.where(bad, values, self.value)

    def check(self, where: str) -> None:
        if self.first is None:
            return
        first = self.first.tolist()
        hits = [(step, i) for i, step in enumerate(first) if step >= 0]
        if hits:
            step, i = min(hits)
            raise NonFiniteError(f"loss '{self.names[i]}' became {self.value[i].item()} at step {step}; lower the "
                                 f"learning rates or λ, or resume from the last good checkpoint{where}.")


def ema_update(ema: nn.Module, model: nn.Module, decay: float, first: bool) -> None:
    """``θ̄ ← θ`` on the first update, then ``θ̄ ← decay·θ̄ + (1 − decay)·θ`` over parameters and buffers.

    The same arithmetic as ``AveragedModel(use_buffers=True, multi_avg_fn=get_ema_multi_avg_fn(decay))``
    (``torch._foreach_lerp_`` on floating tensors), without its per-step host read of ``n_averaged``.
    """
    mine = [*ema.module.parameters(), *ema.module.buffers()]
    theirs = [*model.parameters(), *model.buffers()]
    with torch.no_grad():
        floats = [(a, b.detach()) for a, b in zip(mine, theirs) if a.is_floating_point() or a.is_complex()]
        others = [(a, b.detach()) for a, b in zip(mine, theirs) if not (a.is_floating_point() or a.is_complex())]
        if first:
            torch._foreach_copy_([a for a, _ in floats + others], [b for _, b in floats + others])
        else:
            if floats:
                torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], 1 - decay)
            for a, b in others:
                a.copy_(a * decay + b * (1 - decay))
        ema.n_averaged += 1


def ema_decay_at(decay: float, updates: int, warmup: bool) -> float:
    """EMA decay for the update after ``updates`` earlier ones: ``decay``, or with warm-up
    ``min(decay, (1 + updates) / (10 + updates))`` so the average forgets the initial weights
    within a short run (decay 0.999 alone still gives them weight 0.999^t ≈ 0.37 at t = 1 000)."""
    return min(decay, (1 + updates) / (10 + updates)) if warmup else decay


class StopSignals:
    """SIGTERM/SIGINT set :attr:`signum`; the loop reads it after the current step. A second SIGINT aborts."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


# ---------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, cfg: DictConfig, out_dir: str | Path):
        validate(cfg)
        self.cfg, self.out_dir = cfg, Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = pick_device(cfg.device)
        self.settings = LoopSettings.from_config(cfg, self.device)
        check(not (self.settings.amp or self.settings.channels_last) or self.device.type == "cuda",
              "train.amp and train.channels_last are GPU options; set them to false on CPU.")
        seed_everything(cfg.seed)
        allowed = cfg.get("allowed_targets")
        self.logger = instantiate(cfg.logger, allowed, where="logger") if cfg.get("logger") else JsonlLogger()
        self.data = instantiate(cfg.data, allowed, where="data")
        self.critic = instantiate(cfg.energy, allowed, where="energy").to(self.device)
        self.generator = instantiate(cfg.generator, allowed, where="generator").to(self.device)
        self.loss = instantiate(cfg.loss, allowed, where="loss")
        self.penalty = instantiate(cfg.penalty, allowed, where="penalty").to(self.device)
        self.estimator = instantiate(cfg.entropy, allowed, where="entropy").to(self.device)
        self.metric = instantiate(cfg.metric, allowed, where="metric")
        self.ema = ema_of(self.generator, cfg.ema_decay) if cfg.get("ema_decay") else None
        self._check_shapes()
        if hasattr(self.metric, "check_data"):  # a metric that cannot score this data fails now, not at the first evaluation
            self.metric.check_data(self.data)
        if self.settings.channels_last:
            for module in (self.critic, self.generator):
                module.to(memory_format=torch.channels_last)

        self.modules: dict[str, nn.Module] = {"critic": self.critic, "generator": self.generator,
                                              "entropy": self.estimator}
        if self.ema is not None:
            self.modules["ema"] = self.ema
        self._critic_params = self._params(self.critic)
        self._generator_params = self._params(self.generator)
        self._estimator_params = self._params(self.estimator)
        self.optimizers = {"critic": self._optimizer("critic", self._critic_params),
                           "generator": self._optimizer("generator", self._generator_params)}
        if self._estimator_params:
            self.optimizers["entropy"] = self._optimizer("entropy", self._estimator_params)
        schedule = cfg.optim.get("schedule")
        self.schedulers = {name: instantiate(schedule, allowed, where="optim.schedule")(opt) for name, opt in self.optimizers.items()} \
            if schedule else {}
        self._forwards = self._compiled() if self.settings.compile else \
            {"generator": self.generator, "critic": self.critic, "estimator": self.estimator}
        self._ema_decay = float(cfg.ema_decay) if self.ema is not None else 0.0
        self._ema_warmup = bool(cfg.get("ema_warmup", False))
        self._ema_started = False
        self.step = 0
        self.elapsed = 0.0
        self.watch = NonFiniteWatch()

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _params(module: nn.Module) -> list[Tensor]:
        return [p for p in module.parameters() if p.requires_grad]

    def _optimizer(self, name: str, params: list[Tensor]) -> torch.optim.Optimizer:
        build = instantiate(self.cfg.optim[name], self.cfg.get("allowed_targets"), where=f"optim.{name}")
        try:
            return build(params)
        except (ValueError, TypeError) as err:
            raise MegeError(f"optim.{name}: {_first_line(err)}; fix optim.{name} (e.g. optim.{name}.lr=2e-4).") from None

    def _compiled(self) -> dict[str, Any]:
        """``torch.compile`` of the generator and of the critic's forward in the generator step.

        The critic step stays eager (compiled graphs do not support the penalty's double backward)
        and so do estimators (inductor in torch 2.13 fails on the MI critic's split of its scores).
        Random ops keep eager semantics. Measured: no gain on CPU (experiments/bench/results.md).
        """
        import torch._inductor.config as inductor_config
        inductor_config.fallback_random = True
        return {"generator": torch.compile(self.generator), "critic": torch.compile(self.critic),
                "estimator": self.estimator}

    def _autocast(self):
        if self.settings.amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _to_device(self, x: Tensor) -> Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.settings.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _check_shapes(self) -> None:
        """Data, generator, critic and estimator agree on shapes (their own errors become one-line fixes)."""
        real = self.data.sample(2)
        check(bool(torch.isfinite(real).all()), "the data contains NaN or Inf values; clean the dataset or its config.")
        with torch.no_grad():
            fake = self.generator(self.generator.sample_latent(2, self.device))
        check(tuple(real.shape[1:]) == tuple(fake.shape[1:]),
              f"data samples have shape {tuple(real.shape[1:])} but the generator makes {tuple(fake.shape[1:])}; "
              f"set x_dim (and the network configs) to match the data.")
        check(real[0].numel() == self.cfg.x_dim,
              f"x_dim={self.cfg.x_dim} but data samples have {real[0].numel()} values; set x_dim={real[0].numel()}.")
        # The rest runs on copies and a forked RNG: training sees exactly the state it would without it.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            critic = copy.deepcopy(self.critic)
            try:
                with torch.no_grad():
                    u = critic(real.to(self.device))
            except RuntimeError as err:
                raise MegeError(f"the critic cannot take data of shape {tuple(real.shape[1:])} ({_first_line(err)}); "
                                f"set energy.x_dim (or x_dim) to match the data.") from None
            check(tuple(u.shape) == (2,), f"the critic must return one energy per sample, shape (n,), "
                                          f"but returned {tuple(u.shape)}; make its forward end with .squeeze(1).")
            try:
                estimator, generator = copy.deepcopy(self.estimator), copy.deepcopy(self.generator)
            except Exception:  # noqa: BLE001 — a module that cannot be copied is checked by its first step instead
                return
            n = int(self.cfg.train.batch_size)
            z, x = generator.sample_latent(n, self.device), fake
            try:
                x = generator(z)
                estimator(x, z=z if estimator.needs_latents else None,
                          generator=generator if estimator.needs_generator else None)
            except MegeError as err:  # the estimator's own one-line error already names the fix
                raise MegeError(f"entropy ({type(estimator).__name__}): {err}") from None
            except (RuntimeError, ValueError, IndexError) as err:
                raise MegeError(f"the entropy estimator {type(estimator).__name__} fails on {n} generated samples of "
                                f"shape {tuple(x.shape[1:])} with latents of dim {z.shape[1]} ({_first_line(err)}); "
                                f"set its x_dim/z_dim to the config's x_dim={self.cfg.x_dim}, z_dim={self.cfg.z_dim}.") \
                    from None

    # ------------------------------------------------------------------ one step
    def hyperparameters(self) -> dict[str, float]:
        """λ_H and the learning rates (``lr/<optimizer>``, first parameter group) the next step will use."""
        return {"lambda_h": self.lambda_h(),
                **{f"lr/{name}": float(opt.param_groups[0]["lr"]) for name, opt in self.optimizers.items()}}

    def lambda_h(self) -> float:
        """λ_H at the current step: constant, or linear from ``lambda_h`` to ``lambda_h_end`` over the run."""
        s = self.settings
        if s.lambda_h_end is None:
            return s.lambda_h
        return s.lambda_h + (s.lambda_h_end - s.lambda_h) * min(1.0, self.step / s.steps)

    def train_step(self) -> dict[str, Tensor]:
        """One generator step with its critic steps; returns device tensors (no host sync)."""
        s, dev = self.settings, self.device
        g, est = self.generator, self.estimator
        fwd = self._forwards
        opt_c, opt_g, est_opt = self.optimizers["critic"], self.optimizers["generator"], self.optimizers.get("entropy")
        for i in range(s.critic_steps):
            # lazy regularisation: the penalty on every penalty_every-th critic update, scaled by it
            k = s.penalty_every
            penalty_scale = 1.0 if k == 1 else (float(k) if (self.step * s.critic_steps + i) % k == 0 else 0.0)
            real = self._to_device(self.data.sample(s.batch_size))
            with torch.no_grad(), self._autocast():
                fake = fwd["generator"](g.sample_latent(s.batch_size, dev))
            with self._autocast():
                c = critic_objective(self.critic, self.loss, self.penalty, real, fake,
                                     joint_forward=s.joint_critic_forward, penalty_scale=penalty_scale)
            opt_c.zero_grad(set_to_none=True)
            c.loss.backward(inputs=self._critic_params)
            opt_c.step()

        z = g.sample_latent(s.batch_size, dev)
        if est.fit_steps and est_opt is not None:
            with torch.no_grad(), self._autocast():
                x_fit = fwd["generator"](z)
            for _ in range(est.fit_steps):
                with self._autocast():
                    fit = fwd["estimator"](x_fit, z=z, generator=g)
                est_opt.zero_grad(set_to_none=True)
                fit.aux_loss.backward(inputs=self._estimator_params)
                est_opt.step()

        with self._autocast():
            step = generator_objective(fwd["critic"], self.loss, fwd["estimator"], self.lambda_h(), fwd["generator"], z)
        aux = step.entropy.aux_loss if est_opt is not None else None
        opt_g.zero_grad(set_to_none=True)
        step.loss.backward(inputs=self._generator_params, retain_graph=aux is not None)
        if aux is not None:
            est_opt.zero_grad(set_to_none=True)
            aux.backward(inputs=self._estimator_params)
            est_opt.step()
        opt_g.step()
        if self.ema is not None:
            ema_update(self.ema, g, ema_decay_at(self._ema_decay, self.step, self._ema_warmup),
                       first=not self._ema_started)
            self._ema_started = True
        for scheduler in self.schedulers.values():
            scheduler.step()

        logs = {"critic_loss": c.loss, "penalty": c.penalty, "generator_loss": step.loss,
                "generator_energy": step.energy, "entropy_surrogate": step.entropy.surrogate}
        if step.entropy.value is not None:
            logs["entropy_value"] = step.entropy.value
        if aux is not None:
            logs["entropy_aux_loss"] = aux
        logs.update({f"entropy/{k}": v for k, v in step.entropy.info.items()})
        return {k: torch.as_tensor(v).detach() for k, v in logs.items()}

    # ------------------------------------------------------------------ evaluation
    def generate_fn(self, generator: nn.Module, seed: int | None = None, chunk: int = 8192):
        """``generate(n)``: n samples from fixed evaluation latents (its own RNG, no grad)."""
        seed = self.cfg.train.eval_seed if seed is None else seed

        def generate(n: int) -> Tensor:
            rng = torch.Generator().manual_seed(seed)
            was_training = generator.training
            generator.eval()
            try:
                with torch.no_grad():
                    out = [generator(torch.randn(min(chunk, n - i), self.generator.latent_dim, generator=rng).to(self.device))
                           for i in range(0, n, chunk)]
            finally:
                generator.train(was_training)
            return torch.cat(out)
        return generate

    def evaluate(self, plot: bool = True) -> dict[str, Any]:
        """Metric of the raw generator and of its EMA; plots; never touches the training RNG."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            result = {"step": self.step, "metrics": self._metric(self.generator), "ema_metrics": None}
            if self.ema is not None:
                result["ema_metrics"] = self._metric(self.ema.module)
            if plot and self.cfg.train.get("plot", True):
                self.plot()
        return result

    def _metric(self, generator: nn.Module) -> dict[str, Any]:
        out = self.metric(self.generate_fn(generator), self.data)
        out.setdefault("protocol", {})["eval_seed"] = self.cfg.train.eval_seed
        return out

    def figure_path(self) -> Path:
        """The run's figure of the current step: ``plots/step_<step>.png``."""
        return self.out_dir / "plots" / f"step_{self.step:07d}.png"

    def plot(self) -> None:
        from mege import plots
        torch.manual_seed(self.cfg.train.eval_seed)
        best = self.ema.module if self.ema is not None else self.generator
        fake = self.generate_fn(best)(self.cfg.train.get("plot_samples", 2500)).cpu()
        real = self.data.sample(len(fake))
        title = f"{self.cfg.get('name', 'run')} step {self.step}"
        folder = self.out_dir / "plots"
        folder.mkdir(exist_ok=True)
        for path in (self.figure_path(), self.out_dir / "landscape.png"):
            plots.save_run_figure(self.critic, real, fake, path, title=title, device=self.device)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {"step": self.step, "elapsed": self.elapsed, "version": mege.__version__,
                "modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "rng": rng_state()}

    def save(self) -> None:
        """Write ``checkpoint.pt`` atomically; refuse (NonFiniteError) when any parameter is NaN/Inf."""
        self.check_finite_parameters()
        state = self.state()
        atomic_write(self.out_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))

    def load(self, path: str | Path) -> None:
        path = Path(path)
        check(path.is_file(), f"checkpoint {path} does not exist; train first (`mege train ...`) or pass a run "
                              f"directory that holds {CHECKPOINT}.")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # noqa: BLE001 — any unpickling failure means a bad file
            raise MegeError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}); "
                            f"delete it to start over or resume from an intact copy.") from None
        check(isinstance(state, dict) and isinstance(state.get("modules"), dict) and "step" in state,
              f"{path} is not a mege checkpoint; point resume at a run directory written by `mege train`.")
        try:
            for name, module in self.modules.items():
                module.load_state_dict(state["modules"][name])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            for name, sched in self.schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
            set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise MegeError(f"checkpoint {path} does not fit this config ({type(err).__name__}: {_first_line(err)}); "
                            f"load it with the config.yaml of the run that wrote it.") from None
        self.step, self.elapsed = int(state["step"]), float(state.get("elapsed", 0.0))
        if self.ema is not None:
            self._ema_started = bool(self.ema.n_averaged > 0)
        self.check_finite_parameters()

    # ------------------------------------------------------------------ the loop
    def check_finite(self, logs: dict[str, Tensor]) -> None:
        for name, value in logs.items():
            if not bool(torch.isfinite(value).all()):
                raise NonFiniteError(f"loss '{name}' became {value.float().sum().item()} at step {self.step}; lower "
                                     f"the learning rates or λ, or resume from the last checkpoint "
                                     f"({self.out_dir / CHECKPOINT}).")

    def check_finite_parameters(self) -> None:
        for mod_name, module in self.modules.items():
            for name, p in [*module.named_parameters(), *module.named_buffers()]:
                if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                    raise NonFiniteError(f"parameter '{mod_name}.{name}' is non-finite at step {self.step}; lower "
                                         f"the learning rates, or resume from the last good {self.out_dir / CHECKPOINT}.")

    def write_summary(self, status: str, last: dict[str, Any] | None, **extra) -> dict[str, Any]:
        summary = {"status": status, "step": self.step, "steps": int(self.cfg.train.steps),
                   "metrics": last["metrics"] if last else None,
                   "ema_metrics": last["ema_metrics"] if last else None,
                   "elapsed_s": round(self.elapsed, 2), "version": mege.__version__,
                   "device": str(self.device), **extra}
        write_json(self.out_dir / "summary.json", summary)
        return summary

    def _restore(self) -> dict[str, Any] | None:
        """Load ``checkpoint.pt`` (when resuming) and trim ``metrics.jsonl`` to the restored step.

        Rows written after the checkpoint (a crash or ``kill -9`` between them) and a torn last line
        are dropped, so the file matches the state the run continues from. Returns the last kept row.
        """
        ckpt = self.out_dir / CHECKPOINT
        if self.cfg.train.get("resume", True) and ckpt.exists():
            self.load(ckpt)
        path = self.out_dir / METRICS
        if not path.exists():
            return None
        lines = path.read_text().splitlines()
        kept = []
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and _is_int(row.get("step")) and row["step"] <= self.step:
                kept.append((line, row))
        if len(kept) != len(lines):
            text = "".join(line + "\n" for line, _ in kept)
            atomic_write(path, lambda tmp: Path(tmp).write_text(text))
        return kept[-1][1] if kept else None

    def fit(self) -> dict[str, Any]:
        """Train to ``train.steps`` (resuming from ``checkpoint.pt``); see the module docstring for signals."""
        s, t = self.settings, self.cfg.train
        config_text = OmegaConf.to_yaml(self.cfg, resolve=True)
        atomic_write(self.out_dir / "config.yaml", lambda tmp: Path(tmp).write_text(config_text))
        last = self._restore()
        self.logger.start(self.out_dir, self.step, config_text)
        self.write_summary("running", last)
        bar = tqdm(total=s.steps, initial=self.step, disable=not t.get("progress", True),
                   dynamic_ncols=True, desc=self.cfg.get("name", "train"))
        start = time.perf_counter() - self.elapsed
        where = f" ({self.out_dir / CHECKPOINT})"
        try:
            with StopSignals() as stop:
                while self.step < s.steps:
                    log_now = (self.step + 1) % s.log_every == 0 or self.step + 1 == s.steps
                    hyper = self.hyperparameters() if log_now else None
                    logs = self.train_step()
                    self.step += 1
                    self.watch.update(logs, self.step)
                    bar.update(1)
                    final = self.step == s.steps
                    if log_now:
                        self.watch.check(where)
                        scalars = {k: v.float().sum().item() for k, v in logs.items()}
                        bar.set_postfix({k: f"{v:.3g}" for k, v in scalars.items() if "/" not in k})
                        self.logger.log_scalars(self.step, {**scalars, **hyper})
                    if self.step % s.eval_every == 0 or final:
                        self.watch.check(where)
                        self.elapsed = time.perf_counter() - start
                        last = self.evaluate()
                        last["time_s"] = round(self.elapsed, 2)
                        figure = self.figure_path() if t.get("plot", True) else None
                        self.logger.log_evaluation(last, figure)
                    if self.step % s.ckpt_every == 0 or final or stop.signum is not None:
                        self.watch.check(where)
                        self.elapsed = time.perf_counter() - start
                        self.save()
                    if stop.signum is not None and not final:
                        name = signal.Signals(stop.signum).name
                        message = (f"{name} at step {self.step}: checkpoint saved; continue with "
                                   f"`mege resume {self.out_dir}`.")
                        self.write_summary("interrupted", last, error=message)
                        bar.close()
                        print(f"mege: {message}", file=sys.stderr, flush=True)
                        raise Interrupted(stop.signum, message)
        except Interrupted:
            raise
        except BaseException as err:
            bar.close()
            self.elapsed = time.perf_counter() - start
            status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
            self.write_summary(status, last, error=f"{type(err).__name__}: {err}")
            raise
        finally:
            self.logger.close()
        bar.close()
        self.elapsed = time.perf_counter() - start
        return self.write_summary("completed", last)


def load_run(run_dir: str | Path, checkpoint: bool = True, **overrides) -> Trainer:
    """A trainer rebuilt from ``run_dir/config.yaml`` with the weights of its checkpoint."""
    run_dir = Path(run_dir)
    check(run_dir.is_dir(), f"run directory {run_dir} does not exist; pass a folder written by `mege train` "
                            f"(it holds config.yaml and checkpoint.pt).")
    check((run_dir / "config.yaml").exists(),
          f"{run_dir} has no config.yaml; pass a folder written by `mege train`.")
    try:
        cfg = OmegaConf.load(run_dir / "config.yaml")
    except Exception as err:  # noqa: BLE001 — a yaml or omegaconf parse error
        raise MegeError(f"{run_dir / 'config.yaml'} is not a readable config ({_first_line(err)}); "
                        f"restore it from the run's .hydra/config.yaml.") from None
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    trainer = Trainer(cfg, run_dir)
    if checkpoint:
        check((run_dir / CHECKPOINT).exists(), f"{run_dir} has no {CHECKPOINT}; train it first (`mege resume {run_dir}`).")
        trainer.load(run_dir / CHECKPOINT)
    return trainer


def format_table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    """A markdown table of ``keys`` for each row (floats to 4 significant digits)."""
    def fmt(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)
