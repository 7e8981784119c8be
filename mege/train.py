"""One training loop for every dataset: critic steps, generator step, evaluation, checkpoints.

Per generator step (DESIGN §1):
  1. ``critic_steps`` times: ``min_U loss.critic(U(x), U(G(z))) + penalty``;
  2. the estimator's own fit steps (``estimator.fit_steps``) on detached samples;
  3. ``min_G loss.generator(U(G(z))) − λ_H·Ĥ``, the estimator's ``aux_loss`` stepping its own
     parameters from the same forward pass;
  4. EMA of the generator's weights and the learning-rate schedules.

A run directory holds ``config.yaml``, ``metrics.jsonl``, ``checkpoint.pt``, ``summary.json``
and the landscape plots; ``resume`` continues from ``checkpoint.pt``.
"""

from __future__ import annotations

import json
import math
import time
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
from mege.objectives import critic_objective, generator_objective
from mege.utils import atomic_write, pick_device, rng_state, seed_everything, set_rng_state, write_json

CHECKPOINT = "checkpoint.pt"


class NonFiniteError(MegeError):
    """A loss or parameter became NaN or Inf."""


def validate(cfg: DictConfig) -> None:
    """Config checks that hydra cannot do, each a one-line error naming the fix."""
    t = cfg.train
    check(cfg.lambda_h >= 0, f"lambda_h must be ≥ 0 (got {cfg.lambda_h}); use lambda_h=0 to switch the entropy term off.")
    for key in ("steps", "batch_size", "critic_steps", "eval_every", "log_every", "ckpt_every"):
        check(int(t[key]) > 0, f"train.{key} must be a positive integer (got {t[key]}).")


class Trainer:
    def __init__(self, cfg: DictConfig, out_dir: str | Path):
        validate(cfg)
        self.cfg, self.out_dir = cfg, Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = pick_device(cfg.device)
        seed_everything(cfg.seed)
        allowed = cfg.get("allowed_targets")
        self.data = instantiate(cfg.data, allowed)
        self.critic = instantiate(cfg.energy, allowed).to(self.device)
        self.generator = instantiate(cfg.generator, allowed).to(self.device)
        self.loss = instantiate(cfg.loss, allowed)
        self.penalty = instantiate(cfg.penalty, allowed).to(self.device)
        self.estimator = instantiate(cfg.entropy, allowed).to(self.device)
        self.metric = instantiate(cfg.metric, allowed)
        self.ema = ema_of(self.generator, cfg.ema_decay) if cfg.get("ema_decay") else None
        self._check_shapes()

        self.modules: dict[str, nn.Module] = {"critic": self.critic, "generator": self.generator,
                                              "entropy": self.estimator}
        if self.ema is not None:
            self.modules["ema"] = self.ema
        self.optimizers = {"critic": instantiate(cfg.optim.critic, allowed)(self.critic.parameters()),
                           "generator": instantiate(cfg.optim.generator, allowed)(self._params(self.generator))}
        if self._params(self.estimator):
            self.optimizers["entropy"] = instantiate(cfg.optim.entropy, allowed)(self._params(self.estimator))
        schedule = cfg.optim.get("schedule")
        self.schedulers = {name: instantiate(schedule, allowed)(opt) for name, opt in self.optimizers.items()} \
            if schedule else {}
        self.step = 0
        self.elapsed = 0.0

    # ------------------------------------------------------------------ set-up checks
    @staticmethod
    def _params(module: nn.Module) -> list[Tensor]:
        return [p for p in module.parameters() if p.requires_grad]

    def _check_shapes(self) -> None:
        real = self.data.sample(2)
        check(bool(torch.isfinite(real).all()), "the data contains NaN or Inf values; clean the dataset or its config.")
        with torch.no_grad():
            fake = self.generator(self.generator.sample_latent(2, self.device))
        check(tuple(real.shape[1:]) == tuple(fake.shape[1:]),
              f"data samples have shape {tuple(real.shape[1:])} but the generator makes {tuple(fake.shape[1:])}; "
              f"set x_dim (and the network configs) to match the data.")
        check(real[0].numel() == self.cfg.x_dim,
              f"x_dim={self.cfg.x_dim} but data samples have {real[0].numel()} values; set x_dim={real[0].numel()}.")

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, Tensor]:
        t, dev = self.cfg.train, self.device
        g, est = self.generator, self.estimator
        for _ in range(t.critic_steps):
            real = self.data.sample(t.batch_size).to(dev, non_blocking=True)
            with torch.no_grad():
                fake = g(g.sample_latent(t.batch_size, dev))
            c = critic_objective(self.critic, self.loss, self.penalty, real, fake)
            self.optimizers["critic"].zero_grad(set_to_none=True)
            c.loss.backward(inputs=self._params(self.critic))
            self.optimizers["critic"].step()

        z = g.sample_latent(t.batch_size, dev)
        est_opt = self.optimizers.get("entropy")
        if est.fit_steps and est_opt is not None:
            with torch.no_grad():
                x_fit = g(z)
            for _ in range(est.fit_steps):
                fit = est(x_fit, z=z, generator=g)
                est_opt.zero_grad(set_to_none=True)
                fit.aux_loss.backward(inputs=self._params(est))
                est_opt.step()

        step = generator_objective(self.critic, self.loss, est, self.cfg.lambda_h, g, z)
        aux = step.entropy.aux_loss if est_opt is not None else None
        self.optimizers["generator"].zero_grad(set_to_none=True)
        step.loss.backward(inputs=self._params(g), retain_graph=aux is not None)
        if aux is not None:
            est_opt.zero_grad(set_to_none=True)
            aux.backward(inputs=self._params(est))
            est_opt.step()
        self.optimizers["generator"].step()
        if self.ema is not None:
            self.ema.update_parameters(g)
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

    def plot(self) -> None:
        from mege import plots
        torch.manual_seed(self.cfg.train.eval_seed)
        best = self.ema.module if self.ema is not None else self.generator
        fake = self.generate_fn(best)(self.cfg.train.get("plot_samples", 2500)).cpu()
        real = self.data.sample(len(fake))
        title = f"{self.cfg.get('name', 'run')} step {self.step}"
        folder = self.out_dir / "plots"
        folder.mkdir(exist_ok=True)
        for path in (folder / f"step_{self.step:07d}.png", self.out_dir / "landscape.png"):
            plots.save_run_figure(self.critic, real, fake, path, title=title, device=self.device)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {"step": self.step, "elapsed": self.elapsed, "version": mege.__version__,
                "modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "rng": rng_state()}

    def save(self) -> None:
        self.check_finite_parameters()
        state = self.state()
        atomic_write(self.out_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))

    def load(self, path: str | Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # noqa: BLE001 — any unpickling failure means a bad file
            raise MegeError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}); "
                            f"delete it to start over or resume from an intact copy.") from None
        check(isinstance(state, dict) and "modules" in state,
              f"{path} is not a mege checkpoint; point resume at a run directory written by `mege train`.")
        for name, module in self.modules.items():
            module.load_state_dict(state["modules"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        set_rng_state(state["rng"])
        self.step, self.elapsed = state["step"], state.get("elapsed", 0.0)

    # ------------------------------------------------------------------ the loop
    def check_finite(self, logs: dict[str, Tensor]) -> None:
        for name, value in logs.items():
            if not bool(torch.isfinite(value)):
                raise NonFiniteError(f"loss '{name}' became {value.item()} at step {self.step}; lower the learning "
                                     f"rates or λ, or resume from the last checkpoint ({self.out_dir / CHECKPOINT}).")

    def check_finite_parameters(self) -> None:
        for mod_name, module in self.modules.items():
            for name, p in module.named_parameters():
                if not bool(torch.isfinite(p).all()):
                    raise NonFiniteError(f"parameter '{mod_name}.{name}' became non-finite at step {self.step}; "
                                         f"lower the learning rates, or resume from {self.out_dir / CHECKPOINT}.")

    def write_summary(self, status: str, last: dict[str, Any] | None, **extra) -> dict[str, Any]:
        summary = {"status": status, "step": self.step, "steps": int(self.cfg.train.steps),
                   "metrics": last["metrics"] if last else None,
                   "ema_metrics": last["ema_metrics"] if last else None,
                   "elapsed_s": round(self.elapsed, 2), "version": mege.__version__,
                   "device": str(self.device), **extra}
        write_json(self.out_dir / "summary.json", summary)
        return summary

    def fit(self) -> dict[str, Any]:
        t = self.cfg.train
        (self.out_dir / "config.yaml").write_text(OmegaConf.to_yaml(self.cfg, resolve=True))
        ckpt = self.out_dir / CHECKPOINT
        if t.get("resume", True) and ckpt.exists():
            self.load(ckpt)
        last = None
        self.write_summary("running", None)
        bar = tqdm(total=t.steps, initial=self.step, disable=not t.get("progress", True),
                   dynamic_ncols=True, desc=self.cfg.get("name", "train"))
        start = time.perf_counter() - self.elapsed
        try:
            while self.step < t.steps:
                logs = self.train_step()
                self.step += 1
                bar.update(1)
                final = self.step == t.steps
                if self.step % t.log_every == 0 or final:
                    self.check_finite(logs)
                    bar.set_postfix({k: f"{v.item():.3g}" for k, v in logs.items() if "/" not in k})
                if self.step % t.eval_every == 0 or final:
                    self.elapsed = time.perf_counter() - start
                    last = self.evaluate()
                    last["time_s"] = round(self.elapsed, 2)
                    with open(self.out_dir / "metrics.jsonl", "a") as f:
                        f.write(json.dumps(last, default=float) + "\n")
                if self.step % t.ckpt_every == 0 or final:
                    self.elapsed = time.perf_counter() - start
                    self.check_finite(logs)
                    self.save()
        except BaseException as err:
            bar.close()
            self.elapsed = time.perf_counter() - start
            status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
            self.write_summary(status, last, error=f"{type(err).__name__}: {err}")
            raise
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
    cfg = OmegaConf.load(run_dir / "config.yaml")
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

