"""Grouping runs by the swept keys and aggregating each metric: mean ± standard error."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from mege.errors import MegeError
from mege.report.runs import DASH, EMA_PREFIX, SEED_KEYS, Run, _is_seed_key, _select, find_runs, read_run


HOW_KEYS = ("sweep", "launcher")

"""Keys that say how runs were launched; not grouped by when the other keys already split the runs the same way."""

@dataclass
class Stat:
    """mean ± standard error (ddof=1) over n runs; nan mean for n = 0, nan s.e. for n ≤ 1."""

    mean: float
    se: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        n = len(values)
        if n == 0:
            return cls(math.nan, math.nan, 0)
        mean = math.fsum(values) / n
        if n == 1:
            return cls(mean, math.nan, 1)
        var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
        return cls(mean, math.sqrt(var / n), n)

@dataclass
class Group:
    values: tuple[str, ...]  # one per group key
    runs: list[Run]  # aggregated runs
    excluded: list[Run]
    stats: dict[str, Stat]
    missing: dict[str, dict[str, str]]  # run name -> {metric: 'absent' | 'nan' | 'inf'}

@dataclass
class Report:
    sweep_dir: Path
    keys: list[str]
    fixed: dict[str, str]
    implied: list[str]
    runs: list[Run]
    groups: list[Group]
    metrics: list[str]
    protocol: dict[str, str]

    def label(self, group: Group) -> str:
        if not self.keys:
            return "all runs"
        return ", ".join(f"{k}={v}" for k, v in zip(self.keys, group.values))

def _sortable(value: str):
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))

def swept_keys(runs: list[Run]) -> tuple[list[str], dict[str, str]]:
    """(keys whose override value differs between runs, seed excluded; {key: value} of the rest)."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.overrides if k not in keys]
    varying, fixed = [], {}
    for key in keys:
        if _is_seed_key(key):
            continue
        values = {run.overrides.get(key) for run in runs}
        if len(values) > 1:
            varying.append(key)
        else:
            fixed[key] = values.pop()
    return varying, fixed

def _group_value(run: Run, key: str) -> str:
    if key in run.overrides:
        return run.overrides[key]
    value = _select(run.config, key)
    return DASH if value is None else str(value)

def _merge_protocols(runs: list[Run]) -> dict[str, str]:
    """One protocol line: each card field that agrees across runs, 'varies (...)' where it does not;
    ``seed`` left out; the EMA card folded into the raw one when they agree."""
    fields: dict[str, list[str]] = {}
    for run in runs:
        for prefix, card in run.protocols.items():
            base = prefix.removeprefix(EMA_PREFIX.rstrip("/")).lstrip("/") if prefix.split("/")[0] == "ema" else prefix
            for key, value in card.items():
                if key in SEED_KEYS:
                    continue
                name = f"{base}/{key}" if base else key
                text = value if isinstance(value, str) else json.dumps(value)
                seen = fields.setdefault(name, [])
                if text not in seen:
                    seen.append(text)
    return {k: v[0] if len(v) == 1 else f"varies ({', '.join(v)})" for k, v in fields.items()}

def build_report(sweep_dir: str | os.PathLike, by: list[str] | None = None, include_incomplete: bool = False) -> Report:
    """Find, read and group the runs under ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise MegeError(f"sweep folder {sweep_dir} does not exist; pass the folder hydra multirun wrote, e.g. multirun/<date>/<time>")
    paths = find_runs(sweep_dir)
    if not paths:
        raise MegeError(f"no run under {sweep_dir} (a run is a folder with .hydra/config.yaml or config.yaml); pass a sweep folder such as multirun/<date>/<time>")
    runs = [read_run(p, sweep_dir, include_incomplete) for p in paths]

    keys, fixed = swept_keys(runs)
    implied = []
    if by is not None:
        keys = list(by)
        fixed = {k: v for k, v in fixed.items() if k not in keys}
    else:
        for key in [k for k in keys if k in HOW_KEYS]:
            rest = [k for k in keys if k != key]
            if _partition(runs, rest) == _partition(runs, keys):
                keys, implied = rest, implied + [key]

    metrics: list[str] = []
    for prefix in ("", EMA_PREFIX):
        for run in runs:
            for name in list(run.metrics) + list(run.nonfinite):
                if name.startswith(EMA_PREFIX) == bool(prefix) and name not in metrics:
                    metrics.append(name)

    by_values: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        by_values.setdefault(tuple(_group_value(run, k) for k in keys), []).append(run)

    groups = []
    for values in sorted(by_values, key=lambda vs: [_sortable(v) for v in vs]):
        members = by_values[values]
        included = [r for r in members if r.included]
        present = {m for r in included for m in list(r.metrics) + list(r.nonfinite)}
        stats = {m: Stat.of([r.metrics[m] for r in included if m in r.metrics]) for m in metrics}
        missing = {}
        for r in included:
            gone = {m: r.nonfinite.get(m, "absent") for m in metrics if m in present and m not in r.metrics}
            if gone:
                missing[r.name] = gone
        groups.append(Group(values, included, [r for r in members if not r.included], stats, missing))

    return Report(sweep_dir, keys, fixed, implied, runs, groups, metrics, _merge_protocols([r for r in runs if r.included]))

def _partition(runs: list[Run], keys: list[str]) -> set[frozenset[str]]:
    groups: dict[tuple[str, ...], set[str]] = {}
    for run in runs:
        groups.setdefault(tuple(_group_value(run, k) for k in keys), set()).add(run.name)
    return {frozenset(g) for g in groups.values()}
