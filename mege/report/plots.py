"""The report's figures: bar charts of the metrics per group, the runs' final landscapes."""

from __future__ import annotations

import math
import re
from pathlib import Path

from mege.errors import MegeError
from mege.report.aggregate import Report
from mege.report.runs import EMA_PREFIX


DEFAULT_PLOT_PATTERN = r"^modes$|kl"

"""Metrics plotted as bar charts by default: leaf name matching this (case-insensitive)."""

MAX_LANDSCAPE_ROWS, MAX_LANDSCAPE_COLS = 16, 8

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
