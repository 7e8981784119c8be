"""Reading a sweep's run folders for the report: find them, read each one's summary or last evaluation."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mege.run_dir import RunDir


SEED_KEYS = ("seed",)

"""Override keys pooled over (a key whose last dotted part is one of these)."""

EMA_PREFIX = "ema/"

MCMC_BLOCKS = ("mcmc_T1", "mode_seek")

"""eval.json blocks from ``mege eval --mcmc-steps K``: the model's samples (T = 1) and mode-seeking (T < 1)."""

MCMC_SETTINGS = ("target", "sampler", "temperature", "initial_step_size", "steps", "warmup", "n_chains")

DASH = "—"

@dataclass
class Run:
    """One run folder and what the report needs from it."""

    path: Path
    name: str
    overrides: dict[str, str]
    config: Any  # OmegaConf container of the resolved config, or None
    status: str  # completed | failed | running | no summary | unreadable summary | <other>
    step: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    protocols: dict[str, dict] = field(default_factory=dict)
    nonfinite: dict[str, str] = field(default_factory=dict)
    included: bool = True
    reason: str | None = None  # why the run is excluded, or how an incomplete one was included
    landscape: Path | None = None

    @property
    def seed(self) -> str:
        for key, value in self.overrides.items():
            if _is_seed_key(key):
                return value
        value = _select(self.config, "seed")
        return DASH if value is None else str(value)

def _is_seed_key(key: str) -> bool:
    return key.split(".")[-1] in SEED_KEYS

def _natural_key(text: str) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]

def find_runs(sweep_dir: Path) -> list[Path]:
    """Every folder under ``sweep_dir`` (itself included) with ``.hydra/config.yaml`` or ``config.yaml``.

    Hidden folders (``.hydra``, ``.submitit``) are not searched, nor folders inside a run.
    """
    found = []
    for dirpath, dirnames, _ in os.walk(sweep_dir):
        here = Path(dirpath)
        if RunDir.is_run(here):
            found.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=_natural_key)
    return sorted(found, key=lambda p: _natural_key(str(p.relative_to(sweep_dir))))

def parse_overrides(path: Path) -> dict[str, str]:
    """``.hydra/overrides.yaml`` (a list of ``key=value``) → {key: value}; ``+``/``++``/``~`` stripped,
    hydra's own keys (``hydra.*``, ``hydra/...``) left out."""
    if not path.is_file():
        return {}
    items = yaml.safe_load(path.read_text()) or []
    out = {}
    for item in items:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue
        out[key] = value
    return out

def _load_config(run_dir: Path):
    from omegaconf import OmegaConf

    for path in (run_dir / RunDir.CONFIG, run_dir / RunDir.HYDRA_CONFIG):
        if path.is_file():
            try:
                return OmegaConf.load(path)
            except Exception:  # an unreadable config only costs --by lookups
                return None
    return None

def _select(config, key: str):
    """Value at dotted ``key`` of a config (None when absent or unresolvable); a node with a
    ``_target_`` is named by its class."""
    if config is None:
        return None
    from omegaconf import DictConfig, OmegaConf

    try:
        value = OmegaConf.select(config, key, default=None, throw_on_resolution_failure=False)
    except Exception:
        return None
    if isinstance(value, DictConfig):
        target = value.get("_target_") if "_target_" in value else None
        return str(target).rsplit(".", 1)[-1] if target else json.dumps(OmegaConf.to_container(value), sort_keys=True)
    return value

def flatten_metrics(metrics: dict, prefix: str = "") -> tuple[dict[str, float], dict[str, dict], dict[str, str]]:
    """Nested metric dict → (numeric {name: value}, protocol cards {prefix: card}, non-finite {name: 'nan'|'inf'}).

    Nested dicts join names with '/'; a key ``protocol`` holds a protocol card, not metrics, and
    a number repeated in its block's card with the same value (e.g. the sample count) is a
    protocol field, not a result; strings, lists and booleans are not metrics.
    """
    numeric, protocols, nonfinite = {}, {}, {}
    card = (metrics or {}).get("protocol")
    card = card if isinstance(card, dict) else {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if key == "protocol" and isinstance(value, dict):
            protocols[prefix.rstrip("/")] = value
        elif key in card and card[key] == value:
            continue
        elif isinstance(value, dict):
            n, p, b = flatten_metrics(value, f"{name}/")
            numeric.update(n), protocols.update(p), nonfinite.update(b)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                numeric[name] = float(value)
            else:
                nonfinite[name] = "nan" if math.isnan(value) else "inf"
    return numeric, protocols, nonfinite

def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""

def read_run(run_dir: Path, sweep_dir: Path, include_incomplete: bool = False) -> Run:
    """Read one run: summary.json when completed, else the last line of metrics.jsonl."""
    name = str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name
    folder = RunDir(run_dir)
    run = Run(
        path=run_dir,
        name=name,
        overrides=parse_overrides(folder / RunDir.HYDRA_OVERRIDES),
        config=_load_config(run_dir),
        status="no summary",
        step=None,
        landscape=folder.landscape if folder.landscape.is_file() else None,
    )
    summary, problem = None, "no summary.json"
    summary_path = folder.summary
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
            if not isinstance(summary, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            summary, run.status, problem = None, "unreadable summary", f"unreadable summary.json ({err})"
    if summary is not None:
        run.status = str(summary.get("status", "no status"))
        run.step = summary.get("step")
        if run.status == "completed":
            _take_metrics(run, summary.get("metrics"), summary.get("ema_metrics"))
            _take_refined(run, folder.eval)
            return run
        problem = {
            "failed": "failed" + (f": {_last_line(summary['error'])}" if summary.get("error") else ""),
            "running": "incomplete: summary says running",
        }.get(run.status, f"status {run.status!r}")
        if run.step is not None:
            problem += f" at step {run.step}"

    last = folder.last_row()
    if last is None:
        run.included, run.reason = False, f"{problem}; no evaluation in metrics.jsonl"
        return run
    where = f"last evaluation at step {last.get('step')} in metrics.jsonl"
    if include_incomplete:
        run.step = last.get("step")
        _take_metrics(run, last.get("metrics"), last.get("ema_metrics"))
        run.reason = f"{problem}; included with its {where} (--include-incomplete)"
    else:
        run.included, run.reason = False, f"{problem}; {where}"
    return run

def _take_metrics(run: Run, metrics: dict | None, ema_metrics: dict | None) -> None:
    ema_metrics = {k: v for k, v in (ema_metrics or {}).items() if k != "reference"}  # real data: shown once
    _add_block(run, metrics, "")
    _add_block(run, ema_metrics, EMA_PREFIX)

def _add_block(run: Run, block: dict | None, prefix: str) -> None:
    """A metric block's numbers, non-finite entries and protocol cards, names prefixed."""
    numeric, protocols, nonfinite = flatten_metrics(block or {}, prefix)
    run.metrics.update(numeric)
    run.nonfinite.update(nonfinite)
    for key, card in protocols.items():
        run.protocols.setdefault(key, card)

def _take_refined(run: Run, path: Path) -> None:
    """Columns ``mcmc_T1/<metric>`` and ``mode_seek/<metric>`` from ``mege eval --mcmc-steps K``
    (``eval.json``'s blocks of those names; an older file's ``refined`` block is named by its
    temperature). K goes into each block's protocol card, which the report prints."""
    if not path.is_file():
        return
    try:
        blocks = json.loads(path.read_text())
        blocks = dict(blocks)
    except (ValueError, AttributeError, TypeError):
        run.nonfinite["mcmc_T1/*"] = "unreadable eval.json"
        return
    legacy = blocks.pop("refined", None)
    if isinstance(legacy, dict):
        from mege.sampling import mcmc_block_name
        temperature = ((legacy.get("protocol") or {}).get("latent_mcmc") or {}).get("temperature", 1.0)
        blocks.setdefault(mcmc_block_name(float(temperature)), legacy)
    for name in MCMC_BLOCKS:
        if isinstance(blocks.get(name), dict):
            _add_mcmc_block(run, blocks[name], name + "/")

def _add_mcmc_block(run: Run, refined: dict, prefix: str) -> None:
    refined = dict(refined)
    protocol = dict(refined.get("protocol") or {})
    protocol["mcmc_steps"] = refined.pop("steps", None)
    chain = protocol.get("latent_mcmc")
    if isinstance(chain, dict):  # the sampler's settings; its per-run chain statistics are not protocol
        protocol["latent_mcmc"] = {k: v for k, v in chain.items() if k in MCMC_SETTINGS}
    refined["protocol"] = protocol
    _add_block(run, refined, prefix)
