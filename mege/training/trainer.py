"""One training loop for every dataset (docs/design.md §4–§7).

Per generator step:
  1. ``critic_steps`` times: ``min_U loss.critic(U(x), U(G(z))) + penalty`` (lazy: the penalty every
     ``penalty_every``-th critic update, scaled by it);
  2. the entropy term's own fit steps (:meth:`mege.entropy.term.EntropyTerm.fit`);
  3. ``min_G loss.generator(U(G(z))) − λ_H·Ĥ``, the entropy term stepping its estimator from the same
     forward pass (:meth:`~mege.entropy.term.EntropyTerm.backward`);
  4. the EMA update and the learning-rate schedules.

:class:`Trainer` gets finished :class:`~mege.training.build.Components`, frozen
:class:`~mege.training.settings.Settings` and a :class:`~mege.run_dir.RunDir`; it instantiates
nothing and never reads the config. :func:`mege.training.runs.trainer_from_config` and
:func:`~mege.training.runs.load_run` put the three together.

Speed (``tools/bench/results.md``): the hot loop reads plain settings; nothing in
:meth:`Trainer.train_step` waits for the device (losses stay device tensors, the
:class:`~mege.training.guards.NonFiniteWatch` records on the device); host syncs happen at log,
eval and checkpoint intervals only.

Fault tolerance: checkpoints, ``config.yaml`` and ``summary.json`` are written atomically, so a
``kill -9`` loses at most one checkpoint interval; a rerun or ``mege resume <run_dir>`` continues
from ``checkpoint.pt`` (refused when the config changed: :meth:`mege.run_dir.RunDir.check_resume`),
dropping ``metrics.jsonl`` rows written after it; a resumed CPU run ends with the same metrics as
an uninterrupted one (all RNG states are in the checkpoint). SIGTERM/SIGINT finish the step, save,
mark ``summary.json`` ``"interrupted"`` and raise :class:`~mege.training.guards.Interrupted`
(exit 128 + signal). A NaN/Inf loss stops the run with
:class:`~mege.training.guards.NonFiniteError`; a checkpoint is never written with non-finite
parameters.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

import mege
from mege.ema import averaged
from mege.errors import MegeError
from mege.objectives import critic_objective, generator_objective
from mege.run_dir import FORCE, RunDir
from mege.training.build import Components, first_line
from mege.training.guards import Interrupted, NonFiniteWatch, StopSignals, check_finite_parameters
from mege.training.settings import Settings
from mege.utils import eval_mode, rng_state, set_rng_state


class Trainer:
    def __init__(self, components: Components, settings: Settings, run_dir: RunDir | str | Path):
        self.components, self.settings = components, settings
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.run_dir.mkdir()
        self.device = settings.device
        c = components
        self.data, self.critic, self.generator, self.loss, self.penalty = c.data, c.critic, c.generator, c.loss, c.penalty
        self.entropy, self.metric, self.logger, self.ema = c.entropy, c.metric, c.logger, c.ema
        self.optimizers, self.schedulers, self.modules = c.optimizers, c.schedulers, c.modules
        self._critic_params = [p for p in self.critic.parameters() if p.requires_grad]
        self._generator_params = [p for p in self.generator.parameters() if p.requires_grad]
        self.step, self.elapsed = 0, 0.0
        self.watch = NonFiniteWatch()

    @property
    def estimator(self) -> nn.Module:
        return self.entropy.estimator

    @property
    def out_dir(self) -> Path:
        return self.run_dir.path

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        if self.settings.amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _to_device(self, x: Tensor) -> Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.settings.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def hyperparameters(self) -> dict[str, float]:
        """λ_H and the learning rates (``lr/<optimizer>``, first parameter group) the next step will use."""
        return {"lambda_h": self.lambda_h(),
                **{f"lr/{name}": float(opt.param_groups[0]["lr"]) for name, opt in self.optimizers.items()}}

    def lambda_h(self) -> float:
        return self.settings.lambda_h_at(self.step)

    def train_step(self) -> dict[str, Tensor]:
        """One generator step with its critic steps; returns device tensors (no host sync)."""
        s, dev, g, fwd = self.settings, self.device, self.generator, self.components.forwards
        opt_c, opt_g = self.optimizers["critic"], self.optimizers["generator"]
        for i in range(s.critic_steps):
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
        self.entropy.fit(lambda: fwd["generator"](z), z, g, self._autocast)
        with self._autocast():
            step = generator_objective(fwd["critic"], self.loss, self.entropy, self.lambda_h(), fwd["generator"], z)
        opt_g.zero_grad(set_to_none=True)
        aux = self.entropy.backward(step.loss, step.entropy, self._generator_params)
        opt_g.step()
        if self.ema is not None:
            self.ema.update(g)
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
        """``generate(n)``: n samples from fixed evaluation latents (their own RNG, no grad, eval mode)."""
        seed = self.settings.eval_seed if seed is None else seed

        def generate(n: int) -> Tensor:
            rng = torch.Generator().manual_seed(seed)
            with eval_mode(generator), torch.no_grad():
                return torch.cat([generator(torch.randn(min(chunk, n - i), self.generator.latent_dim,
                                                        generator=rng).to(self.device)) for i in range(0, n, chunk)])
        return generate

    def evaluate(self, plot: bool = True) -> dict[str, Any]:
        """Metric of the raw generator and of its EMA; plots; never touches the training RNG."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            result = {"step": self.step, "metrics": self._metric(self.generator), "ema_metrics": None}
            if self.ema is not None:
                result["ema_metrics"] = self._metric(self.ema.module)
            if plot and self.settings.plot:
                self.plot()
        return result

    def _metric(self, generator: nn.Module) -> dict[str, Any]:
        out = self.metric(self.generate_fn(generator), self.data)
        out.setdefault("protocol", {})["eval_seed"] = self.settings.eval_seed
        return out

    def figure_path(self) -> Path:
        return self.run_dir.figure(self.step)

    def plot(self) -> None:
        from mege import plots
        torch.manual_seed(self.settings.eval_seed)
        fake = self.generate_fn(averaged(self.ema, self.generator))(self.settings.plot_samples).cpu()
        real = self.data.sample(len(fake))
        self.figure_path().parent.mkdir(exist_ok=True)
        for path in (self.figure_path(), self.run_dir.landscape):
            plots.save_run_figure(self.critic, real, fake, path, title=f"{self.settings.name} step {self.step}",
                                  device=self.device)

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
        self.run_dir.save_checkpoint(self.state())

    def load(self, path: str | Path | None = None) -> None:
        path = Path(path) if path is not None else self.run_dir.checkpoint
        state = self.run_dir.load_checkpoint(self.device, path)
        try:
            for name, module in self.modules.items():
                module.load_state_dict(state["modules"][name])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            for name, sched in self.schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
            set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise MegeError(f"checkpoint {path} does not fit this config ({type(err).__name__}: {first_line(err)}); "
                            f"load it with the config.yaml of the run that wrote it.") from None
        self.step, self.elapsed = int(state["step"]), float(state.get("elapsed", 0.0))
        self.check_finite_parameters()

    def check_finite_parameters(self) -> None:
        check_finite_parameters(self.modules, self.step, self.run_dir.checkpoint)

    def write_summary(self, status: str, last: dict[str, Any] | None, **extra) -> dict[str, Any]:
        summary = {"status": status, "step": self.step, "steps": self.settings.steps,
                   "metrics": last["metrics"] if last else None,
                   "ema_metrics": last["ema_metrics"] if last else None,
                   "elapsed_s": round(self.elapsed, 2), "version": mege.__version__,
                   "device": str(self.device), **extra}
        self.run_dir.write_json(RunDir.SUMMARY, summary)
        return summary

    def _restore(self) -> dict[str, Any] | None:
        """Load ``checkpoint.pt`` (when resuming) and trim ``metrics.jsonl`` to the restored step."""
        if self.settings.resume and self.run_dir.checkpoint.exists():
            self.load()
        return self.run_dir.trim_metrics(self.step)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, Any]:
        """Train to ``train.steps`` (resuming from ``checkpoint.pt``); see the module docstring for signals."""
        s = self.settings
        if s.resume:
            self.run_dir.check_resume(s.config_text, s.resume)  # refuses a checkpoint of another config
            kept = None if s.resume == FORCE else self.run_dir.kept_summary(s.config_text, s.steps)
            if kept is not None:  # completed at these steps: keep its files as they are, train nothing
                print(f"{self.out_dir}: completed run kept (same config, step {kept.get('step')})")
                return kept
        self.run_dir.write_text(RunDir.CONFIG, s.config_text)
        last = self._restore()
        self.logger.start(self.out_dir, self.step, s.config_text)
        self.write_summary("running", last)
        bar = tqdm(total=s.steps, initial=self.step, disable=not s.progress, dynamic_ncols=True, desc=s.name)
        start = time.perf_counter() - self.elapsed
        where = f" ({self.run_dir.checkpoint})"
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
                        self.logger.log_evaluation(last, self.figure_path() if s.plot else None)
                    if self.step % s.ckpt_every == 0 or final or stop.signum is not None:
                        self.watch.check(where)
                        self.elapsed = time.perf_counter() - start
                        self.save()
                    if stop.signum is not None and not final:
                        message = (f"{signal.Signals(stop.signum).name} at step {self.step}: checkpoint saved; "
                                   f"continue with `mege resume {self.out_dir}`.")
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
