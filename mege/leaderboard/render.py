"""Rendering the frontier and the leaderboard: markdown (:mod:`mege.tables`), figures, JSON, files."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from mege.leaderboard.points import (FRONTIER_METRICS, MIN_HQ, RULE_METRIC, best_row, collect_points,
                                     operating_points, paired_difference, Point, seed_values, threshold_pct)
from mege.report import EMA_PREFIX, Run, format_number
from mege.tables import markdown_table


def _cell(point: Point, metric: str) -> str:
    s = point.stats.get(metric)
    if s is None or s.n == 0:
        return "—"
    n_runs = len(point.runs)
    tail = f" (n={s.n})" if s.n < n_runs else ""
    if metric.endswith("hq_fraction"):
        se = "—" if math.isnan(s.se) else f"{100 * s.se:.1f}"
        return f"{100 * s.mean:.1f} ± {se} %{tail}"
    return f"{format_number(s.mean)} ± {format_number(s.se)}{tail}"


def _kl_cell(point: Point, metric: str) -> str:
    cell = _cell(point, metric)
    floor = point.stats.get(metric + "_floor")
    if floor is not None and floor.n:
        cell += f" (floor {format_number(floor.mean)})"
        value = point.stats.get(metric)
        if value is not None and value.n and value.mean <= 2 * floor.mean:
            cell += " ≤2×floor"
    return cell


def _context_title(context: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in context) or "all runs"


def _contexts(points: list[Point]) -> list[tuple]:
    return list(dict.fromkeys(p.context for p in points))


def _slug(context: tuple) -> str:
    text = "_".join(str(v) for _, v in context)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def frontier_markdown(points: list[Point], param: str, plots: dict[tuple, str], min_hq: float = MIN_HQ) -> str:
    lines = [f"# {param} frontier", "",
             f"Rule (experiments/ablation/README.md): per estimator, among the {param} values with mean raw HQ ≥ "
             f"{threshold_pct(min_hq)}, the lowest mean raw assigned KL; tie → smaller {param}. Cells: mean ± s.e. over seeds "
             "(ddof = 1); raw = the generator's own samples, EMA = its weight average; KLs beside their "
             "perfect-sampler floor (`≤2×floor`: within twice it). `none` = no entropy term (the reference).", ""]
    chosen = operating_points(points, min_hq)
    for context in _contexts(points):
        here = [p for p in points if p.context == context]
        lines += [f"## {_context_title(context)}", ""]
        if context in plots:
            lines += [f"![frontier]({plots[context]})", ""]
        rows = []
        for p in here:
            pick = chosen.get((context, p.estimator), (None, ""))[0]
            rows.append([p.estimator, p.family, format_number(p.value), str(len(p.runs)), _cell(p, "modes"),
                         _cell(p, "hq_fraction"), _kl_cell(p, "assigned_kl"), _cell(p, EMA_PREFIX + "modes"),
                         _cell(p, EMA_PREFIX + "hq_fraction"), _kl_cell(p, EMA_PREFIX + "assigned_kl"),
                         "**chosen**" if pick is p else ""])
        lines += markdown_table(["estimator", "family", param, "seeds", "modes", "HQ", "assigned KL", "EMA modes", "EMA HQ",
                      "EMA assigned KL", "operating point"], rows)
        lines += ["", "Operating points:", ""]
        for (ctx, name), (pick, reason) in chosen.items():
            if ctx == context:
                what = f"{param} = {format_number(pick.value)}" if pick is not None else "none chosen"
                lines.append(f"- `{name}`: {what} — {reason}.")
        lines.append("")
    return "\n".join(lines)


def leaderboard_markdown(points: list[Point], param: str, min_hq: float = MIN_HQ) -> str:
    lines = ["# Leaderboard", "",
             "Cells: mean ± s.e. over seeds (ddof = 1); raw = the generator's own samples, EMA = its weight average; "
             "each KL beside its perfect-sampler floor (`≤2×floor`: within twice it). "
             f"Best = lowest mean raw assigned KL among the estimator rows with mean raw HQ ≥ {threshold_pct(min_hq)} (`none` "
             "excluded; tie → smaller " + param + "). Differences: paired by seed, mean [95 % t interval] (n pairs); "
             "`*` = the interval excludes 0.", ""]
    for context in _contexts(points):
        here = [p for p in points if p.context == context]
        ref = next((p for p in here if p.is_none), None)
        best = best_row(here, min_hq)
        lines += [f"## {_context_title(context)}", ""]
        rows = []
        for p in here:
            for prefix, kind in (("", "raw"), (EMA_PREFIX, "EMA")):
                rows.append([p.estimator + (" (best)" if p is best and kind == "raw" else ""), p.family,
                             format_number(p.value), kind, str(len(p.runs)), _cell(p, prefix + "modes"),
                             _cell(p, prefix + "hq_fraction"), _kl_cell(p, prefix + "assigned_kl"),
                             _kl_cell(p, prefix + "reverse_kl")])
        lines += markdown_table(["estimator", "family", param, "samples", "seeds", "modes", "HQ", "assigned KL", "reverse KL"], rows)
        lines += ["", "Differences (row − reference), paired by seed, 95 % t interval:", ""]
        rows = []
        for p in here:
            cells = [p.estimator, format_number(p.value)]
            for prefix in ("", EMA_PREFIX):
                m = prefix + "assigned_kl"
                cells.append("—" if ref is None or p is ref else paired_difference(seed_values(p, m), seed_values(ref, m)).cell())
                cells.append("—" if best is None or p is best else paired_difference(seed_values(p, m), seed_values(best, m)).cell())
            cells.append("—" if ref is None or p is ref else
                         paired_difference(seed_values(p, "modes"), seed_values(ref, "modes")).cell())
            rows.append(cells)
        lines += markdown_table(["estimator", param, "assigned KL − none (raw)", "assigned KL − best (raw)",
                      "assigned KL − none (EMA)", "assigned KL − best (EMA)", "modes − none (raw)"], rows)
        lines.append("")
        if best is None:
            lines.append(f"No estimator row reaches mean raw HQ ≥ {threshold_pct(min_hq)}: no best estimator.")
        else:
            line = f"Best: `{best.estimator}` at {param} = {format_number(best.value)}"
            if ref is not None:
                d = paired_difference(seed_values(best, "assigned_kl"), seed_values(ref, "assigned_kl"))
                line += f"; raw assigned KL − none = {d.cell()}"
            lines.append(line + ".")
        if ref is None:
            lines.append("No `none` row in this context: no difference to none.")
        lines.append("")
    return "\n".join(lines)


def plot_frontier(points: list[Point], param: str, context: tuple, path: Path, min_hq: float = MIN_HQ) -> list[str]:
    """Rows: modes, HQ, assigned KL; columns: families; one line per estimator (raw solid, EMA dashed);
    none = grey line with ± s.e. band; the chosen operating point starred. Returns the column families."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    here = [p for p in points if p.context == context]
    ref = [p for p in here if p.is_none]
    families = list(dict.fromkeys(p.family for p in here if not p.is_none and p.value > 0)) or ["(no estimator)"]
    chosen = {name: pick for (ctx, name), (pick, _) in operating_points(points, min_hq).items() if ctx == context}
    titles = {"modes": "modes", "hq_fraction": "HQ fraction", "assigned_kl": "assigned KL"}
    fig, axes = plt.subplots(3, len(families), figsize=(4.2 * len(families), 9.0), squeeze=False, sharex="col")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    n_modes = next((r.protocols.get("", {}).get("n_modes") for p in here for r in p.runs if r.protocols.get("")), None)
    for col, family in enumerate(families):
        members = [p for p in here if p.family == family and p.value > 0]
        names = list(dict.fromkeys(p.estimator for p in members))
        for row, metric in enumerate(FRONTIER_METRICS):
            ax = axes[row][col]
            for i, name in enumerate(names):
                pts = sorted((p for p in members if p.estimator == name), key=lambda p: p.value)
                colour = colours[i % len(colours)]
                for prefix, style, kind in (("", "-o", "raw"), (EMA_PREFIX, "--x", "EMA")):
                    stats = [p.stats.get(prefix + metric) for p in pts]
                    xs = [p.value for p, s in zip(pts, stats) if s is not None and s.n]
                    ys = [s.mean for s in stats if s is not None and s.n]
                    es = [0.0 if math.isnan(s.se) else s.se for s in stats if s is not None and s.n]
                    if xs:
                        ax.errorbar(xs, ys, yerr=es, fmt=style, color=colour, alpha=1.0 if kind == "raw" else 0.55,
                                    capsize=3, label=f"{name} ({kind})")
                pick = chosen.get(name)
                if pick is not None and metric in pick.stats:
                    ax.plot([pick.value], [pick.stats[metric].mean], "*", color=colour, markersize=16,
                            markeredgecolor="k", zorder=5, label=f"{name}: chosen")
            for p in ref:
                s = p.stats.get(metric)
                if s is not None and s.n:
                    ax.axhline(s.mean, color="0.35", lw=1.5, label="none (λ_H = 0), raw ± s.e.")
                    if not math.isnan(s.se):
                        ax.axhspan(s.mean - s.se, s.mean + s.se, color="0.6", alpha=0.25)
            if metric == "assigned_kl":
                floors = [p.stats["assigned_kl_floor"].mean for p in here if "assigned_kl_floor" in p.stats]
                if floors:
                    ax.axhline(max(floors), color="k", ls=":", lw=1, label="perfect-sampler floor")
                ax.set_yscale("log")
            if metric == "hq_fraction":
                ax.axhline(min_hq, color="tab:red", ls=":", lw=1, label=f"rule: HQ ≥ {threshold_pct(min_hq)}")
                ax.set_ylim(-0.02, 1.02)
            if metric == "modes" and n_modes:
                ax.axhline(n_modes, color="k", ls=":", lw=1, label=f"all {n_modes} modes")
            ax.set_xscale("log")
            ax.set_title(f"{family}: {titles[metric]}", fontsize=10)
            if row == 2:
                ax.set_xlabel(param)
            if row == 0:
                ax.legend(fontsize=6.5, loc="best")
            elif col == 0:
                ax.legend(fontsize=6.5, loc="best")
    fig.suptitle(f"{param} frontier — {_context_title(context)}\n(mean ± s.e. over seeds; raw solid, EMA dashed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return families


def points_json(points: list[Point], min_hq: float = MIN_HQ) -> dict:
    chosen = operating_points(points, min_hq)
    return {
        "rule": {"min_hq": min_hq, "metric": RULE_METRIC, "samples": "raw", "tie": "smaller value"},
        "points": [{"context": dict(p.context), "estimator": p.estimator, "family": p.family, "value": p.value,
                    "runs": len(p.runs), "seeds": sorted(p.by_seed),
                    "stats": {m: {"mean": s.mean, "se": s.se, "n": s.n} for m, s in sorted(p.stats.items())}}
                   for p in points],
        "operating_points": [{"context": dict(ctx), "estimator": name, "value": None if pick is None else pick.value,
                              "reason": reason} for (ctx, name), (pick, reason) in chosen.items()],
    }


def write_frontier(runs: list[Run], param: str, out_dir: Path, min_hq: float = MIN_HQ) -> dict[str, Path]:
    """frontier.md, frontier.json and one frontier[_<context>].png per context into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    points = collect_points(runs, param)
    written, plots = {}, {}
    contexts = _contexts(points)
    for context in contexts:
        name = "frontier.png" if len(contexts) == 1 else f"frontier_{_slug(context)}.png"
        plot_frontier(points, param, context, out_dir / name, min_hq)
        plots[context] = name
        written[f"frontier plot {_context_title(context)}"] = out_dir / name
    written["frontier"] = out_dir / "frontier.md"
    written["frontier"].write_text(frontier_markdown(points, param, plots, min_hq))
    written["frontier json"] = out_dir / "frontier.json"
    written["frontier json"].write_text(json.dumps(points_json(points, min_hq), indent=1, default=float))
    return written


def write_leaderboard(runs: list[Run], param: str, out_dir: Path, min_hq: float = MIN_HQ) -> dict[str, Path]:
    """leaderboard.md into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "leaderboard.md"
    path.write_text(leaderboard_markdown(collect_points(runs, param), param, min_hq))
    return {"leaderboard": path}
