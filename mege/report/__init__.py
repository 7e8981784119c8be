r"""Aggregate a sweep folder into tables and plots: ``mege report <sweep_dir> [--by k1,k2] [--out DIR]`` (:mod:`mege.cli.report`).

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

Modules: :mod:`.runs` (reading run folders), :mod:`.aggregate` (groups and statistics),
:mod:`.write` (markdown, csv), :mod:`.plots` (figures).
"""

from mege.report.aggregate import HOW_KEYS, Group, Report, Stat, build_report, swept_keys
from mege.report.plots import DEFAULT_PLOT_PATTERN, plot_bars, plot_landscapes, plot_metrics
from mege.report.runs import (DASH, EMA_PREFIX, MCMC_BLOCKS, SEED_KEYS, Run, _is_seed_key, find_runs, flatten_metrics,
                              parse_overrides, read_run)
from mege.report.write import AT_FLOOR, at_floor, format_cell, format_number, read_csv, table_rows, write_csv, \
    write_markdown, write_report

__all__ = ["AT_FLOOR", "DASH", "DEFAULT_PLOT_PATTERN", "EMA_PREFIX", "HOW_KEYS", "MCMC_BLOCKS", "SEED_KEYS", "Group",
           "Report", "Run", "Stat", "_is_seed_key", "at_floor", "build_report", "find_runs", "flatten_metrics",
           "format_cell", "format_number", "parse_overrides", "plot_bars", "plot_landscapes", "plot_metrics",
           "read_csv", "read_run", "swept_keys", "table_rows", "write_csv", "write_markdown", "write_report"]
