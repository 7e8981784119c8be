"""Writing the report: report.md (one table writer, :mod:`mege.tables`), report.csv and the plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from mege.metrics.goodness_of_fit import pooled_exact_sampling_p
from mege.report.aggregate import Group, Report, Stat
from mege.report.plots import plot_bars, plot_landscapes, plot_metrics
from mege.report.runs import DASH
from mege.tables import markdown_table


def format_number(x: float) -> str:
    return DASH if math.isnan(x) else f"{x:.4g}"

def format_cell(stat: Stat, runs: int) -> str:
    """'mean ± se' ('—' for an undefined s.e.), with '(n=k)' when k < runs; '—' when n = 0."""
    if stat.n == 0:
        return DASH + (" (n=0)" if runs else "")
    cell = f"{format_number(stat.mean)} ± {format_number(stat.se)}"
    return cell + (f" (n={stat.n})" if stat.n < runs else "")

AT_FLOOR = " ≤2×floor"

"""Appended to a KL cell whose mean is within twice the mean of its ``<metric>_floor`` column (the
perfect-sampler KL at the same sample count). Not a test: its G-test p column says whether the
histograms can be told from exact sampling (at 25 modes, 2 × floor is already p ≈ 0.0025)."""

GOF_SUFFIX = " p"
"""Column after each toy KL: the exact-sampling G-test p-value pooled over the group's runs
(:mod:`mege.metrics.goodness_of_fit`; n = the samples in the histogram, K = the mixture's modes)."""

KL_SAMPLE_COUNT = {"assigned_kl": None, "reverse_kl": "n_hq"}
"""Toy KLs with a G-test: the histogram's sample count is the protocol's n_samples (None) or this metric."""


def gof_metrics(report: Report) -> list[str]:
    """The report's toy KL columns that get a G-test p column (those whose runs carry n and K)."""
    return [m for m in report.metrics if m.split("/")[-1] in KL_SAMPLE_COUNT
            and any(not math.isnan(pooled_p(g, m)) for g in report.groups)]


def pooled_p(group: Group, metric: str) -> float:  # any object with .runs (a leaderboard point too)
    """Exact-sampling G-test p of ``metric`` pooled over the group's runs (nan where n or K is unknown)."""
    prefix, _, name = metric.rpartition("/")
    prefix = prefix + "/" if prefix else ""
    histograms = []
    for run in group.runs:
        card = run.protocols.get(prefix.rstrip("/"), {})
        count = KL_SAMPLE_COUNT[name]
        n = card.get("n_samples") if count is None else run.metrics.get(prefix + count)
        if metric not in run.metrics or n is None or "n_modes" not in card:
            return math.nan
        histograms.append((run.metrics[metric], n, int(card["n_modes"])))
    return pooled_exact_sampling_p(histograms) if histograms else math.nan


def format_p(p: float) -> str:
    return DASH if math.isnan(p) else (f"{p:.2g}" if p > 0 else "< 1e-300")  # an underflow is not a 0

def at_floor(stats: dict[str, Stat], metric: str) -> bool:
    """True when ``metric`` has a ``<metric>_floor`` companion and its mean is ≤ 2× the floor's mean."""
    floor = stats.get(metric + "_floor")
    value = stats.get(metric)
    return (floor is not None and value is not None and floor.n > 0 and value.n > 0
            and not math.isnan(value.mean) and value.mean <= 2 * floor.mean)

def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The markdown table: group keys, runs, excluded, one cell per metric (KLs within 2× their floor marked)."""
    gof = set(gof_metrics(report))
    header = (report.keys or ["group"]) + ["runs", "excluded"]
    for m in report.metrics:
        header += [m] + ([m + GOF_SUFFIX] if m in gof else [])
    rows = []
    for g in report.groups:
        head = list(g.values) if report.keys else [report.label(g)]
        cells = []
        for m in report.metrics:
            cells.append(format_cell(g.stats[m], len(g.runs)) + (AT_FLOOR if at_floor(g.stats, m) else ""))
            if m in gof:
                cells.append(format_p(pooled_p(g, m)))
        rows.append(head + [str(len(g.runs)), str(len(g.excluded))] + cells)
    return header, rows

def write_csv(report: Report, path: Path) -> None:
    """One row per group: keys, runs, excluded, then ``<metric>:mean``, ``<metric>:se``, ``<metric>:n``
    (full precision; 'nan' where undefined)."""
    gof = set(gof_metrics(report))
    header = (report.keys or ["group"]) + ["runs", "excluded"]
    for m in report.metrics:
        header += [f"{m}:mean", f"{m}:se", f"{m}:n"] + ([f"{m}:pooled_p"] if m in gof else [])
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for g in report.groups:
            row = list(g.values) if report.keys else [report.label(g)]
            row += [len(g.runs), len(g.excluded)]
            for m in report.metrics:
                s = g.stats[m]
                row += [repr(s.mean), repr(s.se), s.n] + ([repr(pooled_p(g, m))] if m in gof else [])
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
        f"`{AT_FLOOR.strip()}` is within twice it, which is not the same as exact sampling: `<kl>{GOF_SUFFIX}` columns give "
        "the exact-sampling G-test p-value (G = 2·n·KL ~ χ²(K − 1), pooled over the group's runs by summing G and "
        "degrees of freedom); a small p says the histograms can be told from exact sampling. "
        "`excluded`: failed or incomplete runs of the group, not in the means."
    )
    lines.append("")
    if report.metrics:
        lines += markdown_table(*table_rows(report))
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
        lines += markdown_table(["run", "group", "seed", "status", "step", "aggregated", "reason"], rows)
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
        lines += markdown_table(["run", "group", "seed", "missing"], missing_rows)
    else:
        lines.append("None: every aggregated run has every metric of its group.")
    lines.append("")
    path.write_text("\n".join(lines))

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
