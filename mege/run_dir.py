"""The run folder: its file names, atomic writes, ``metrics.jsonl`` and the resume check (docs/design.md §7).

One run folder holds::

    config.yaml      the resolved config (what `mege resume`, `mege eval`, `mege sample` rebuild from)
    checkpoint.pt    weights, optimisers, schedules, RNG states (torch.load(weights_only=True))
    metrics.jsonl    one JSON row per evaluation, appended
    summary.json     status (running / completed / interrupted / failed), last metrics, time
    eval.json        `mege eval`'s re-evaluation (with latent-MCMC blocks)
    landscape.png    the latest figure; plots/step_<step>.png one per evaluation

:class:`RunDir` is the only place these names are spelled; the trainer, the loggers, ``mege eval``,
``mege sample`` and ``mege report`` go through it. Every file but ``metrics.jsonl`` is written
atomically (temp file + rename); ``metrics.jsonl`` is appended and read skipping a torn last line.

A run folder is continued only under the config it was written with: :meth:`RunDir.check_resume`
compares the resolved config against ``config.yaml`` and refuses (one line naming the fix) when
anything but :data:`MAY_CHANGE` (and the keys under :data:`MAY_CHANGE_UNDER`) differs, or when ``train.steps`` shrinks below the checkpoint's step.
A completed folder at the asked ``train.steps`` is kept as it is, not a byte rewritten
(:meth:`RunDir.kept_summary`); one holding only its small files (no checkpoint, e.g. committed run files copied
back into a study's output) is never retrained over.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import yaml

from mege.errors import MegeError, check

# Keys that may differ when a run is continued: more steps, and how it is watched and checkpointed.
MAY_CHANGE = ("train.steps", "train.resume", "train.progress", "train.plot", "train.ckpt_every", "device",
              "optimized_metric")
MAY_CHANGE_UNDER = ("entropy.facts.",)  # what studies know about the estimator (mege.entropy.facts), not how it trains
FORCE = "force"  # train.resume=force continues a run whose config changed
ADDED_WITH_DEFAULT = {"metric.protocol": "mege"}
"""Keys added to configs after runs were written, with the value that reproduces the old behaviour: a
checkpoint written before the key existed continues when the new config holds that value."""


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: readers never see a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str | Path, obj: Any) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, default=float)
    atomic_write(path, write)


def read_jsonl(path: str | Path) -> Iterator[tuple[str, dict]]:
    """``(line, row)`` for every complete JSON-object line (a torn or blank line is skipped)."""
    path = Path(path)
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            yield line, row


def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": leaf}`` for a nested dict (lists are leaves)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(flat(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def _listed(changes: list[str]) -> str:
    """The first three config changes of a refusal, '; '-joined."""
    return '; '.join(changes[:3]) + ('; …' if len(changes) > 3 else '')


def config_changes(old: dict, new: dict) -> list[str]:
    """``key: old → new`` for each leaf that differs, but :data:`MAY_CHANGE` and the values that
    follow ``train.steps`` (e.g. a schedule's ``T_max: ${train.steps}``) while it grows."""
    a, b = flat(old), flat(new)
    steps = (a.get("train.steps"), b.get("train.steps"))
    grows = all(isinstance(s, int) for s in steps) and steps[1] >= steps[0]
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, ADDED_WITH_DEFAULT.get(key, "<absent>")), b.get(key, ADDED_WITH_DEFAULT.get(key, "<absent>"))
        if va == vb or key in MAY_CHANGE or key.startswith(MAY_CHANGE_UNDER) or (grows and (va, vb) == steps):
            continue
        out.append(f"{key}: {va!r} → {vb!r}")
    return out


class RunDir:
    """A run folder (created on demand by the writers)."""

    CONFIG, CHECKPOINT, METRICS, SUMMARY, EVAL = "config.yaml", "checkpoint.pt", "metrics.jsonl", "summary.json", "eval.json"
    LANDSCAPE, PLOTS = "landscape.png", "plots"
    HYDRA_CONFIG, HYDRA_OVERRIDES = ".hydra/config.yaml", ".hydra/overrides.yaml"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def eval(self) -> Path:
        return self.path / self.EVAL

    @property
    def landscape(self) -> Path:
        return self.path / self.LANDSCAPE

    def figure(self, step: int) -> Path:
        """The figure of one evaluation: ``plots/step_<step>.png``."""
        return self.path / self.PLOTS / f"step_{step:07d}.png"

    @classmethod
    def is_run(cls, path: str | Path) -> bool:
        """A folder written by ``mege train`` (its own or hydra's config.yaml)."""
        path = Path(path)
        return (path / cls.CONFIG).is_file() or (path / cls.HYDRA_CONFIG).is_file()

    # ------------------------------------------------------------------ writing
    def mkdir(self) -> "RunDir":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, lambda tmp: Path(tmp).write_text(text))

    def write_json(self, name: str, obj: Any) -> None:
        write_json(self.path / name, obj)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_write(self.checkpoint, lambda tmp: torch.save(state, tmp))

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")

    # ------------------------------------------------------------------ reading
    def read_json(self, name: str) -> dict | None:
        """A JSON object file of the run, or None when absent or unreadable."""
        try:
            obj = json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return None
        return obj if isinstance(obj, dict) else None

    def status(self) -> str | None:
        """``summary.json``'s status, or None."""
        return (self.read_json(self.SUMMARY) or {}).get("status")

    def rows(self) -> list[dict]:
        """The evaluation rows of ``metrics.jsonl`` (a torn line skipped)."""
        return [row for _, row in read_jsonl(self.metrics)]

    def last_row(self) -> dict | None:
        rows = self.rows()
        return rows[-1] if rows else None

    def trim_metrics(self, step: int) -> dict | None:
        """Drop rows after ``step`` (written after the checkpoint) and torn lines; return the last kept row."""
        if not self.metrics.exists():
            return None
        lines = self.metrics.read_text().splitlines()
        kept = [(line, row) for line, row in read_jsonl(self.metrics)
                if isinstance(row.get("step"), int) and not isinstance(row.get("step"), bool) and row["step"] <= step]
        if len(kept) != len(lines):
            self.write_text(self.METRICS, "".join(line + "\n" for line, _ in kept))
        return kept[-1][1] if kept else None

    def load_checkpoint(self, device: torch.device | str, path: str | Path | None = None) -> dict[str, Any]:
        """The checkpoint's state dict, or a one-line :class:`MegeError` naming the fix."""
        path = Path(path) if path is not None else self.checkpoint
        check(path.is_file(), f"checkpoint {path} does not exist; train first (`mege train ...`) or pass a run "
                              f"directory that holds {self.CHECKPOINT}.")
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except Exception as err:  # noqa: BLE001 — any unpickling failure means a bad file
            raise MegeError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}); "
                            f"delete it to start over or resume from an intact copy.") from None
        check(isinstance(state, dict) and isinstance(state.get("modules"), dict) and "step" in state,
              f"{path} is not a mege checkpoint; point resume at a run directory written by `mege train`.")
        return state

    def checkpoint_step(self) -> int | None:
        """The step of ``checkpoint.pt`` (None when there is none or it is unreadable)."""
        try:
            return int(torch.load(self.checkpoint, map_location="cpu", weights_only=True)["step"])
        except Exception:  # noqa: BLE001 — a missing or bad checkpoint is reported when it is loaded
            return None

    def kept_summary(self, config_text: str, steps: int) -> dict | None:
        """The summary of a *completed* run folder when ``mege train`` into it has nothing to do: same config
        (:func:`config_changes`) and already at ``steps``; its files are then left untouched. With a checkpoint
        (whose config :meth:`check_resume` has checked) that is not at ``steps`` (more steps, or an unreadable
        one) the run continues from it: None. Without one (e.g. run files copied from a committed study) a
        refusal when it is one of another config or a shorter run."""
        if not self.config.is_file() or self.status() != "completed":
            return None
        summary = self.read_json(self.SUMMARY) or {}
        if self.checkpoint.is_file():  # kept only when the checkpoint too is at the end (else continue from it)
            return summary if summary.get("step") == steps == self.checkpoint_step() else None
        try:
            old = yaml.safe_load(self.config.read_text())
        except yaml.YAMLError:
            return None
        changes = config_changes(old or {}, yaml.safe_load(config_text) or {})
        check(not changes, f"{self.path} holds a completed run (no checkpoint) written under a different config "
                           f"({_listed(changes)}); write to a new folder "
                           f"(hydra.run.dir=… or a new --out), or delete it to train it again.")
        check(summary.get("step") == steps, f"{self.path} holds a run completed at step {summary.get('step')} without its "
                                            f"checkpoint, so it cannot continue to train.steps={steps}; write to a new "
                                            f"folder (hydra.run.dir=…), or delete it to train it again.")
        return summary

    def check_resume(self, config_text: str, resume: bool | str) -> None:
        """Refuse to continue this folder's checkpoint under a different config (see the module docstring)."""
        if resume == FORCE or not self.checkpoint.is_file() or not self.config.is_file():
            return
        try:
            old = yaml.safe_load(self.config.read_text())
        except yaml.YAMLError:
            return  # unreadable: load_run reports it; the trainer writes a fresh one
        new = yaml.safe_load(config_text)
        changes = config_changes(old or {}, new or {})
        step = self.checkpoint_step()
        steps = (new or {}).get("train", {}).get("steps")
        if step is not None and isinstance(steps, int) and steps < step:
            changes.insert(0, f"train.steps: {steps} is below the checkpoint's step {step}")
        check(not changes, f"{self.path} holds a checkpoint written under a different config "
                           f"({_listed(changes)}); write to a new folder "
                           f"(hydra.run.dir=… or a new hydra.sweep.dir), or continue it anyway with train.resume={FORCE}.")
