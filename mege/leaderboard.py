r"""λ_H frontier and estimator leaderboard of a sweep: ``mege report <sweep> --frontier lambda_h`` / ``--leaderboard``.

**Frontier** (``--frontier PARAM``): the runs are grouped by (context, estimator, PARAM value),
pooled over seeds; for each group the mean ± s.e. (ddof = 1) of ``modes``, ``hq_fraction`` and
``assigned_kl`` (raw generator, and ``ema/`` for its EMA). The *context* is every other swept
override (e.g. ``experiment``), one figure and one table per context. The figure has one column
per estimator *family* (:func:`family_of`, from the estimator's ``_target_``) and one row per
metric, PARAM on a log axis; ``none`` (no entropy term, λ_H = 0) is drawn as a horizontal
reference line with its ± s.e. band, the assigned KL's perfect-sampler floor as a dotted line.

**Operating point** (:func:`choose_operating_point`, the rule of experiments/ablation/README.md):
among an estimator's PARAM values whose mean raw HQ fraction is ≥ ``min_hq`` (0.80), the one with
the lowest mean raw assigned KL; ties go to the smaller value; None (with the reason) when no
value qualifies.

**Leaderboard** (``--leaderboard``): one row per (context, estimator, PARAM value), mean ± s.e.
over seeds of modes, HQ, assigned KL and reverse KL beside their floors, raw and EMA. The *best*
row (:func:`best_row`) is chosen by the same rule among the estimator rows (``none`` excluded).
For every row, the differences to ``none`` and to the best row are **paired by seed**: over the
n seeds present in both rows, d_i = m_row(seed i) − m_other(seed i),

    mean = (1/n) Σ d_i,   s = √(Σ (d_i − mean)² / (n − 1)),   95 % interval = mean ± t_{0.975, n−1} · s/√n,

(:func:`paired_difference`; no interval for n < 2).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from mege.report import EMA_PREFIX, HOW_KEYS, Run, Stat, _is_seed_key, format_number, swept_keys

NONE = "none"
ESTIMATOR_KEY = "entropy"
FRONTIER_METRICS = ("modes", "hq_fraction", "assigned_kl")
LEADERBOARD_METRICS = ("modes", "hq_fraction", "assigned_kl", "reverse_kl")
MIN_HQ = 0.80
RULE_METRIC = "assigned_kl"
LEVEL = 0.95
TOL = 1e-9
"""Float slack of the rule: a mean HQ within TOL below the threshold qualifies (0.9, 0.8, 0.7 average to
0.7999…), and assigned KLs equal to TOL are a tie."""

FAMILY_ORDER = ("MI bound", "KDE value", "KDE score", "kNN", "flow", "Stein / SSGE", "posterior score")


def family_of(target: str | None, name: str = "") -> str:
    """Estimator family from its ``_target_`` (``mege.entropy.<module>.<Class>``):
    mi → MI bound, kde (value) → KDE value, kde (…Score) → KDE score, knn → kNN, flow / zuko_flow →
    flow, stein → Stein / SSGE, posterior → posterior score, none → none; another module is its own
    family (named by the module). Without a target, the config name's prefix decides."""
    if not target:
        prefix = name.split("_")[0]
        target = {"mi": "mege.entropy.mi.X", "kde": "mege.entropy.kde." + ("KDEScore" if "score" in name else "X"),
                  "knn": "mege.entropy.knn.X", "flow": "mege.entropy.flow.X", "stein": "mege.entropy.stein.X",
                  "ssge": "mege.entropy.stein.X", "posterior": "mege.entropy.posterior.X",
                  "none": "mege.entropy.none.X"}.get(prefix, f"{name}.X")
    module, _, cls = str(target).rpartition(".")
    leaf = module.rsplit(".", 1)[-1]
    if leaf == "kde":
        return "KDE score" if "score" in cls.lower() else "KDE value"
    return {"mi": "MI bound", "knn": "kNN", "flow": "flow", "zuko_flow": "flow", "stein": "Stein / SSGE",
            "posterior": "posterior score", "none": NONE}.get(leaf, leaf or str(target))


# ----------------------------------------------------------------------------- reading runs


@dataclass
class Point:
    """Runs of one (context, estimator, parameter value), pooled over seeds."""

    context: tuple[tuple[str, str], ...]
    estimator: str
    family: str
    value: float
    runs: list[Run]
    by_seed: dict[str, dict[str, float]] = field(default_factory=dict)  # seed -> metric -> value (mean over duplicates)
    stats: dict[str, Stat] = field(default_factory=dict)

    @property
    def is_none(self) -> bool:
        return self.family == NONE

    def label(self) -> str:
        return self.estimator if self.is_none else f"{self.estimator} @ {format_number(self.value)}"


def _config_value(run: Run, key: str):
    if run.config is None:
        return None
    from omegaconf import OmegaConf

    try:
        return OmegaConf.select(run.config, key, default=None, throw_on_resolution_failure=False)
    except Exception:
        return None


def estimator_of(run: Run) -> tuple[str, str]:
    """(estimator name, family): the ``entropy=`` override, else the class of ``entropy._target_``."""
    target = _config_value(run, f"{ESTIMATOR_KEY}._target_")
    name = run.overrides.get(ESTIMATOR_KEY) or (str(target).rsplit(".", 1)[-1] if target else "?")
    return name, family_of(target and str(target), name)


def param_of(run: Run, param: str) -> float:
    value = run.overrides.get(param)
    if value is None:
        value = _config_value(run, param)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def context_keys(runs: list[Run], param: str) -> list[str]:
    """Swept override keys other than the estimator, the parameter, seeds and launch keys (+ a fixed ``experiment``)."""
    varying, fixed = swept_keys(runs)
    keys = [k for k in varying if k not in (ESTIMATOR_KEY, param) and k not in HOW_KEYS and not _is_seed_key(k)]
    return keys + (["experiment"] if "experiment" in fixed and "experiment" not in keys else [])  # named in titles


def collect_points(runs: list[Run], param: str = "lambda_h") -> list[Point]:
    """Aggregated runs grouped by (context, estimator, param value); ``none`` rows keep their value
    (usually 0). Order: context, family (FAMILY_ORDER), estimator, value."""
    included = [r for r in runs if r.included]
    keys = context_keys(included, param)
    groups: dict[tuple, list[Run]] = {}
    for run in included:
        name, family = estimator_of(run)
        context = tuple((k, run.overrides.get(k, "—")) for k in keys)
        groups.setdefault((context, name, family, param_of(run, param)), []).append(run)
    points = []
    for (context, name, family, value), members in groups.items():
        point = Point(context, name, family, value, members)
        seeds: dict[str, list[dict[str, float]]] = {}
        for run in members:
            seeds.setdefault(run.seed, []).append(run.metrics)
        for seed, blocks in seeds.items():
            names = {m for b in blocks for m in b}
            point.by_seed[seed] = {m: math.fsum(b[m] for b in blocks if m in b) / sum(m in b for b in blocks) for m in names}
        metrics = {m for r in members for m in r.metrics}
        point.stats = {m: Stat.of([r.metrics[m] for r in members if m in r.metrics]) for m in metrics}
        points.append(point)
    rank = {f: i for i, f in enumerate(FAMILY_ORDER)}
    points.sort(key=lambda p: (p.context, p.family != NONE, rank.get(p.family, len(rank)), p.family, p.estimator,
                               -math.inf if math.isnan(p.value) else p.value))
    return points


# ----------------------------------------------------------------------------- the rule


def _mean(point: Point, metric: str) -> float:
    stat = point.stats.get(metric)
    return math.nan if stat is None or stat.n == 0 else stat.mean


def qualifies(point: Point, min_hq: float = MIN_HQ, prefix: str = "") -> bool:
    hq = _mean(point, prefix + "hq_fraction")
    return not math.isnan(hq) and hq >= min_hq - TOL and not math.isnan(_mean(point, prefix + RULE_METRIC))


def _pick(points: list[Point], min_hq: float, prefix: str) -> Point | None:
    candidates = [p for p in points if qualifies(p, min_hq, prefix)]
    if not candidates:
        return None
    low = min(_mean(p, prefix + RULE_METRIC) for p in candidates)
    return min((p for p in candidates if _mean(p, prefix + RULE_METRIC) <= low + TOL), key=lambda p: p.value)


def choose_operating_point(points: list[Point], min_hq: float = MIN_HQ, prefix: str = "") -> tuple[Point | None, str]:
    """The rule for one estimator's points: lowest mean assigned KL among values with mean HQ ≥ min_hq,
    tie → smaller value. Returns (point or None, the reason in words)."""
    chosen = _pick(points, min_hq, prefix)
    if chosen is None:
        best_hq = max((_mean(p, prefix + "hq_fraction") for p in points), default=math.nan)
        return None, f"no value reaches mean HQ ≥ {min_hq:.0%} (highest {_pct(best_hq)})"
    n_ok = sum(qualifies(p, min_hq, prefix) for p in points)
    return chosen, (f"lowest mean assigned KL ({format_number(_mean(chosen, prefix + RULE_METRIC))}) among the "
                    f"{n_ok} of {len(points)} values with mean HQ ≥ {min_hq:.0%}")


def operating_points(points: list[Point], min_hq: float = MIN_HQ) -> dict[tuple, tuple[Point | None, str]]:
    """{(context, estimator): (chosen point or None, reason)} for every estimator other than none."""
    by_estimator: dict[tuple, list[Point]] = {}
    for p in points:
        if not p.is_none:
            by_estimator.setdefault((p.context, p.estimator), []).append(p)
    return {key: choose_operating_point(pts, min_hq) for key, pts in by_estimator.items()}


def best_row(points: list[Point], min_hq: float = MIN_HQ) -> Point | None:
    """The best estimator row of one context (``none`` excluded), by the same rule."""
    return _pick([p for p in points if not p.is_none], min_hq, "")


# ----------------------------------------------------------------------------- paired differences


@dataclass
class Paired:
    mean: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.low > 0 or self.high < 0)

    def cell(self) -> str:
        if self.n == 0:
            return "— (no common seed)"
        if self.n == 1:
            return f"{format_number(self.mean)} (n=1, no interval)"
        mark = " *" if self.excludes_zero else ""
        return f"{format_number(self.mean)} [{format_number(self.low)}, {format_number(self.high)}]{mark} (n={self.n})"


def t_quantile(p: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, df))


def paired_difference(a: dict[str, float], b: dict[str, float], level: float = LEVEL) -> Paired:
    """Mean of a[seed] − b[seed] over the seeds in both, with its t interval at ``level``."""
    seeds = [s for s in a if s in b and not math.isnan(a[s]) and not math.isnan(b[s])]
    d = [a[s] - b[s] for s in seeds]
    n = len(d)
    if n == 0:
        return Paired(math.nan, math.nan, math.nan, 0)
    mean = math.fsum(d) / n
    if n == 1:
        return Paired(mean, math.nan, math.nan, 1)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return Paired(mean, mean - half, mean + half, n)


def seed_values(point: Point, metric: str) -> dict[str, float]:
    return {s: m[metric] for s, m in point.by_seed.items() if metric in m}


# ----------------------------------------------------------------------------- rendering


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:.1f} %"


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


def _md(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda c: str(c).replace("|", r"\|")  # noqa: E731
    return ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)] + \
           ["| " + " | ".join(map(esc, r)) + " |" for r in rows]


def _slug(context: tuple) -> str:
    text = "_".join(str(v) for _, v in context)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def frontier_markdown(points: list[Point], param: str, plots: dict[tuple, str], min_hq: float = MIN_HQ) -> str:
    lines = [f"# {param} frontier", "",
             f"Rule (experiments/ablation/README.md): per estimator, among the {param} values with mean raw HQ ≥ "
             f"{min_hq:.0%}, the lowest mean raw assigned KL; tie → smaller {param}. Cells: mean ± s.e. over seeds "
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
        lines += _md(["estimator", "family", param, "seeds", "modes", "HQ", "assigned KL", "EMA modes", "EMA HQ",
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
             f"Best = lowest mean raw assigned KL among the estimator rows with mean raw HQ ≥ {min_hq:.0%} (`none` "
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
        lines += _md(["estimator", "family", param, "samples", "seeds", "modes", "HQ", "assigned KL", "reverse KL"], rows)
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
        lines += _md(["estimator", param, "assigned KL − none (raw)", "assigned KL − best (raw)",
                      "assigned KL − none (EMA)", "assigned KL − best (EMA)", "modes − none (raw)"], rows)
        lines.append("")
        if best is None:
            lines.append(f"No estimator row reaches mean raw HQ ≥ {min_hq:.0%}: no best estimator.")
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
                ax.axhline(min_hq, color="tab:red", ls=":", lw=1, label=f"rule: HQ ≥ {min_hq:.0%}")
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
