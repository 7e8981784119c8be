r"""Aggregate a sweep folder into tables and plots: ``mege report <sweep_dir> [--by k1,k2] [--out DIR]``.

A *run* is a folder holding ``.hydra/config.yaml`` (hydra) or ``config.yaml`` (the trainer's
resolved config), at any depth under the sweep folder. Runs are grouped by the keys the sweep
varied (read from ``.hydra/overrides.yaml``), pooled over ``seed``; ``--by`` names the keys
instead (looked up in the overrides, then in the run's resolved config).

For each group and each numeric metric, over the n runs of the group that have it,

    mean = (1/n) Σ_i m_i,     s.e. = s / √n,     s² = Σ_i (m_i − mean)² / (n − 1)   (ddof = 1),

with s.e. = nan for n = 1 (shown '—'). The summary's ``metrics`` (raw generator) and
``ema_metrics`` (EMA generator, columns ``ema/<name>``) are separate column sets.

Only runs whose ``summary.json`` says ``completed`` are aggregated. Failed runs, runs still
``running`` and runs without a summary are listed in the report with the reason and the last
evaluation found in ``metrics.jsonl``; ``--include-incomplete`` aggregates that last evaluation
instead. A metric missing (or nan) in some runs of a group lowers that cell's n, and the run
is listed. Nothing is dropped silently.

Outputs in ``--out`` (default: the sweep folder): ``report.md``, ``report.csv``,
``report_bars.png`` (metrics named like modes / KL, mean ± s.e. per group) and
``report_landscapes.png`` (the runs' final ``landscape.png``, when present).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mege.errors import MegeError

SEED_KEYS = ("seed",)
"""Override keys pooled over (a key whose last dotted part is one of these)."""

HOW_KEYS = ("sweep", "launcher")
"""Keys that say how runs were launched; not grouped by when the other keys already split the runs the same way."""

DEFAULT_PLOT_PATTERN = r"^modes$|kl"
"""Metrics plotted as bar charts by default: leaf name matching this (case-insensitive)."""

MAX_LANDSCAPE_ROWS, MAX_LANDSCAPE_COLS = 16, 8
EMA_PREFIX = "ema/"
MCMC_BLOCKS = ("mcmc_T1", "mode_seek")
"""eval.json blocks from ``mege eval --mcmc-steps K``: the model's samples (T = 1) and mode-seeking (T < 1)."""
MCMC_SETTINGS = ("target", "sampler", "temperature", "initial_step_size", "steps", "warmup", "n_chains")
DASH = "—"


# ----------------------------------------------------------------------------- runs


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
        if (here / ".hydra" / "config.yaml").is_file() or (here / "config.yaml").is_file():
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

    for path in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml"):
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


def last_evaluation(path: Path) -> dict | None:
    """Last complete JSON line of ``metrics.jsonl`` (a truncated last line is skipped), or None."""
    if not path.is_file():
        return None
    for line in reversed(path.read_text().splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            return record
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def read_run(run_dir: Path, sweep_dir: Path, include_incomplete: bool = False) -> Run:
    """Read one run: summary.json when completed, else the last line of metrics.jsonl."""
    name = str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name
    run = Run(
        path=run_dir,
        name=name,
        overrides=parse_overrides(run_dir / ".hydra" / "overrides.yaml"),
        config=_load_config(run_dir),
        status="no summary",
        step=None,
        landscape=(run_dir / "landscape.png") if (run_dir / "landscape.png").is_file() else None,
    )
    summary, problem = None, "no summary.json"
    summary_path = run_dir / "summary.json"
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
            _take_refined(run, run_dir / "eval.json")
            return run
        problem = {
            "failed": "failed" + (f": {_last_line(summary['error'])}" if summary.get("error") else ""),
            "running": "incomplete: summary says running",
        }.get(run.status, f"status {run.status!r}")
        if run.step is not None:
            problem += f" at step {run.step}"

    last = last_evaluation(run_dir / "metrics.jsonl")
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


# ----------------------------------------------------------------------------- groups


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


# ----------------------------------------------------------------------------- writing


def format_number(x: float) -> str:
    return DASH if math.isnan(x) else f"{x:.4g}"


def format_cell(stat: Stat, runs: int) -> str:
    """'mean ± se' ('—' for an undefined s.e.), with '(n=k)' when k < runs; '—' when n = 0."""
    if stat.n == 0:
        return DASH + (" (n=0)" if runs else "")
    cell = f"{format_number(stat.mean)} ± {format_number(stat.se)}"
    return cell + (f" (n={stat.n})" if stat.n < runs else "")


def _md_escape(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]


AT_FLOOR = " ≤2×floor"
"""Appended to a KL cell whose mean is within twice the mean of its ``<metric>_floor`` column: the
perfect-sampler KL at the same sample count, so the number cannot tell the model from exact sampling."""


def at_floor(stats: dict[str, Stat], metric: str) -> bool:
    """True when ``metric`` has a ``<metric>_floor`` companion and its mean is ≤ 2× the floor's mean."""
    floor = stats.get(metric + "_floor")
    value = stats.get(metric)
    return (floor is not None and value is not None and floor.n > 0 and value.n > 0
            and not math.isnan(value.mean) and value.mean <= 2 * floor.mean)


def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The markdown table: group keys, runs, excluded, one cell per metric (KLs within 2× their floor marked)."""
    header = (report.keys or ["group"]) + ["runs", "excluded"] + report.metrics
    rows = []
    for g in report.groups:
        head = list(g.values) if report.keys else [report.label(g)]
        cells = [format_cell(g.stats[m], len(g.runs)) + (AT_FLOOR if at_floor(g.stats, m) else "") for m in report.metrics]
        rows.append(head + [str(len(g.runs)), str(len(g.excluded))] + cells)
    return header, rows


def write_csv(report: Report, path: Path) -> None:
    """One row per group: keys, runs, excluded, then ``<metric>:mean``, ``<metric>:se``, ``<metric>:n``
    (full precision; 'nan' where undefined)."""
    header = (report.keys or ["group"]) + ["runs", "excluded"]
    for m in report.metrics:
        header += [f"{m}:mean", f"{m}:se", f"{m}:n"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for g in report.groups:
            row = list(g.values) if report.keys else [report.label(g)]
            row += [len(g.runs), len(g.excluded)]
            for m in report.metrics:
                s = g.stats[m]
                row += [repr(s.mean), repr(s.se), s.n]
            writer.writerow(row)


def read_csv(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def write_markdown(report: Report, path: Path, plots: dict[str, str]) -> None:
    n_in = sum(r.included for r in report.runs)
    incomplete_in = [r for r in report.runs if r.included and r.reason]
    excluded = [r for r in report.runs if not r.included]
    group_of = {r.name: report.label(g) for g in report.groups for r in g.runs + g.excluded}

    lines = ["# Sweep report", ""]
    lines.append(
        f"Sweep `{report.sweep_dir}`: {len(report.runs)} runs found, {n_in} aggregated"
        + (f" ({len(incomplete_in)} of them incomplete)" if incomplete_in else "")
        + f", {len(excluded)} excluded" + (" (listed below)." if excluded else ".")
    )
    pooled = "`seed`"
    lines.append("Grouped by: " + (", ".join(f"`{k}`" for k in report.keys) if report.keys else "nothing (one group)") + f"; pooled over {pooled}.")
    if report.implied:
        lines.append("Not split by: " + ", ".join(f"`{k}`" for k in report.implied) + " (varies, but the keys above already split the runs the same way).")
    if report.fixed:
        lines.append("Fixed overrides: " + ", ".join(f"`{k}={v}`" for k, v in report.fixed.items()) + ".")
    if report.protocol:
        lines.append("Protocol: " + ", ".join(f"{k}={v}" for k, v in report.protocol.items()) + ".")
    else:
        lines.append("Protocol: no protocol card in the runs' metrics.")
    lines.append(
        "Cells: mean ± standard error over runs (s.e. = s.d./√n, ddof=1; — when n = 1); "
        "(n=k) where a metric is missing in some runs of the group (listed below). "
        "`ema/` columns: the EMA generator; `mcmc_T1/` columns: latent MCMC at T = 1 (the energy model's own "
        "samples); `mode_seek/` columns: latent MCMC at T < 1 (mode-seeking, not samples of the model). "
        f"`*_floor` columns: the perfect-sampler KL at the sample count that entered the histogram; a KL marked "
        f"`{AT_FLOOR.strip()}` is within twice it and cannot be told from exact sampling. "
        "`excluded`: failed or incomplete runs of the group, not in the means."
    )
    lines.append("")
    if report.metrics:
        lines += _md_table(*table_rows(report))
    else:
        lines.append("No numeric metric in any aggregated run.")
    lines.append("")

    if plots:
        lines += ["## Plots", ""]
        for title, file in plots.items():
            lines += [f"![{title}]({file})", ""]

    lines += ["## Excluded or incomplete runs", ""]
    listed = excluded + incomplete_in
    if listed:
        rows = [[r.name, group_of[r.name], r.seed, r.status, "" if r.step is None else str(r.step), "yes" if r.included else "no", r.reason or ""] for r in listed]
        lines += _md_table(["run", "group", "seed", "status", "step", "aggregated", "reason"], rows)
    else:
        lines.append("None: every run completed.")
    lines.append("")

    lines += ["## Runs missing a metric", ""]
    missing_rows = []
    for g in report.groups:
        for r in g.runs:
            if r.name in g.missing:
                what = ", ".join(f"{m} ({why})" for m, why in g.missing[r.name].items())
                missing_rows.append([r.name, report.label(g), r.seed, what])
    if missing_rows:
        lines.append("Each missing metric lowers that group's n for that metric by one.")
        lines.append("")
        lines += _md_table(["run", "group", "seed", "missing"], missing_rows)
    else:
        lines.append("None: every aggregated run has every metric of its group.")
    lines.append("")
    path.write_text("\n".join(lines))


def plot_metrics(report: Report, pattern: str = DEFAULT_PLOT_PATTERN, names: list[str] | None = None) -> list[str]:
    """Raw metrics to plot: ``names`` when given, else those whose leaf name matches ``pattern``."""
    raw = [m for m in report.metrics if not m.startswith(EMA_PREFIX)]
    if names is not None:
        unknown = [n for n in names if n not in raw]
        if unknown:
            raise MegeError(f"--plot names unknown metric(s) {', '.join(unknown)}; choose from {', '.join(raw)}")
        return list(names)
    return [m for m in raw if re.search(pattern, m.rsplit("/", 1)[-1], re.IGNORECASE)]


def plot_bars(report: Report, metrics: list[str], path: Path) -> None:
    """One panel per metric: a bar per group (mean, s.e. error bar), the EMA generator beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [report.label(g).replace(", ", "\n") for g in report.groups]
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.0, 0.9 * len(labels) + 1.5) * len(metrics), 4.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        series = [("raw", m)] + ([("EMA", EMA_PREFIX + m)] if EMA_PREFIX + m in report.metrics else [])
        width = 0.8 / len(series)
        for i, (kind, name) in enumerate(series):
            stats = [g.stats[name] for g in report.groups]
            means = [s.mean for s in stats]
            errs = [0.0 if math.isnan(s.se) else s.se for s in stats]
            ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, yerr=errs, capsize=3, label=kind)
        ax.set_title(f"{m} (mean ± s.e.)")
        ax.set_xticks(x, labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center", fontsize=8)
        if len(series) > 1:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_landscapes(report: Report, path: Path) -> tuple[int, int]:
    """The runs' final ``landscape.png``: one row per group, one column per run (at most
    MAX_LANDSCAPE_ROWS × MAX_LANDSCAPE_COLS); returns (shown, found)."""
    rows = [[r for r in g.runs + g.excluded if r.landscape is not None] for g in report.groups]
    labels = [report.label(g) for g, row in zip(report.groups, rows) if row]
    rows = [row for row in rows if row]
    found = sum(map(len, rows))
    rows = [row[:MAX_LANDSCAPE_COLS] for row in rows[:MAX_LANDSCAPE_ROWS]]
    if not rows:
        return 0, 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    cols = max(map(len, rows))
    fig, axes = plt.subplots(len(rows), cols, figsize=(4.0 * cols, 3.9 * len(rows)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (label, row) in enumerate(zip(labels, rows)):
        for ax, run in zip(axes[i], row):
            ax.imshow(mpimg.imread(run.landscape))
            note = "" if run.included and not run.reason else " [incomplete]" if run.included else " [excluded]"
            ax.set_title(f"{label}, seed {run.seed} (run {run.name}){note}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return sum(map(len, rows)), found


def write_report(report: Report, out_dir: Path, plot_names: list[str] | None = None) -> dict[str, Path]:
    """Write report.md, report.csv and the plots into ``out_dir``; returns {kind: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"csv": out_dir / "report.csv", "markdown": out_dir / "report.md"}
    write_csv(report, written["csv"])
    plots = {}
    to_plot = plot_metrics(report, names=plot_names)
    if to_plot and report.groups:
        written["bars"] = out_dir / "report_bars.png"
        plot_bars(report, to_plot, written["bars"])
        plots[" and ".join(to_plot) + " per group"] = written["bars"].name
    shown, found = plot_landscapes(report, out_dir / "report_landscapes.png")
    if shown:
        written["landscapes"] = out_dir / "report_landscapes.png"
        plots[f"final landscapes ({shown} of {found} runs with one)"] = written["landscapes"].name
    write_markdown(report, written["markdown"], plots)
    return written


def main(argv: list[str]) -> int:
    """``mege report <sweep_dir> [--by k1,k2] [--out DIR] [--plot m1,m2] [--include-incomplete] [--frontier PARAM] [--leaderboard]``."""
    parser = argparse.ArgumentParser(prog="mege report", description="Aggregate a sweep folder into report.md, report.csv and plots.")
    parser.add_argument("sweep_dir", help="folder hydra multirun wrote, e.g. multirun/2025-01-01/12-00-00")
    parser.add_argument("--by", help="comma-separated keys to group by (default: the swept keys except seed)")
    parser.add_argument("--out", help="output folder (default: the sweep folder)")
    parser.add_argument("--plot", help=f"comma-separated metrics to plot (default: those matching '{DEFAULT_PLOT_PATTERN}')")
    parser.add_argument("--include-incomplete", action="store_true", help="aggregate failed/incomplete runs' last evaluation in metrics.jsonl")
    parser.add_argument("--frontier", metavar="PARAM", help="also frontier.md/.png: modes, HQ, assigned KL against PARAM (e.g. lambda_h) per estimator family, and the operating points (mege/leaderboard.py)")
    parser.add_argument("--leaderboard", action="store_true", help="also leaderboard.md: per estimator, raw and EMA, paired-by-seed 95%% intervals to none and to the best (mege/leaderboard.py)")
    args = parser.parse_args(argv)

    by = [k.strip() for k in args.by.split(",") if k.strip()] if args.by else None
    report = build_report(args.sweep_dir, by=by, include_incomplete=args.include_incomplete)
    plot_names = [m.strip() for m in args.plot.split(",") if m.strip()] if args.plot else None
    written = write_report(report, Path(args.out) if args.out else Path(args.sweep_dir), plot_names)
    if args.frontier or args.leaderboard:
        from mege import leaderboard
        out = Path(args.out) if args.out else Path(args.sweep_dir)
        if args.frontier:
            written.update(leaderboard.write_frontier(report.runs, args.frontier, out))
        if args.leaderboard:
            written.update(leaderboard.write_leaderboard(report.runs, args.frontier or "lambda_h", out))
    n_in = sum(r.included for r in report.runs)
    print(f"{len(report.runs)} runs, {n_in} aggregated in {len(report.groups)} groups, {len(report.runs) - n_in} excluded")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0
