"""The frontier's points (one per context, estimator and λ_H value), the operating-point rule and
paired-by-seed differences (see :mod:`mege.leaderboard`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mege.entropy.facts import family_of
from mege.report import HOW_KEYS, Run, Stat, _is_seed_key, format_number, swept_keys

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
    setup: tuple[tuple[str, str], ...] = ()  # overrides that come with this estimator (:func:`estimator_setup_keys`)

    @property
    def is_none(self) -> bool:
        return self.family == NONE

    def setup_text(self) -> str:
        """The overrides that come with the estimator, ``k=v, …`` ('' when none)."""
        return ", ".join(f"{k}={v}" for k, v in self.setup)

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
    """(estimator name, family): the ``entropy=`` override, else the class of ``entropy._target_``; the family
    is the run's own ``entropy.facts.family`` (:mod:`mege.entropy.facts`), else follows the target."""
    target = _config_value(run, f"{ESTIMATOR_KEY}._target_")
    name = run.overrides.get(ESTIMATOR_KEY) or (str(target).rsplit(".", 1)[-1] if target else "?")
    family = _config_value(run, f"{ESTIMATOR_KEY}.facts.family")
    return name, str(family) if family else family_of(target and str(target), name)


def param_of(run: Run, param: str) -> float:
    value = run.overrides.get(param)
    if value is None:
        value = _config_value(run, param)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _swept(runs: list[Run], param: str) -> tuple[list[str], dict[str, str]]:
    varying, fixed = swept_keys(runs)
    return [k for k in varying if k not in (ESTIMATOR_KEY, param) and k not in HOW_KEYS and not _is_seed_key(k)], fixed


def estimator_setup_keys(runs: list[Run], param: str) -> list[str]:
    """Swept keys that follow the estimator: one value per estimator, several estimators (e.g. the
    ``generator=noisy_mlp_relu128`` a study adds to the posterior scores). They are part of the estimator's
    row, not a context: ``posterior_is`` is compared with the ``none`` of its regime, its generator named."""
    keys, _ = _swept(runs, param)
    out = []
    for k in keys:
        values: dict[str, set] = {}
        for run in runs:
            values.setdefault(estimator_of(run)[0], set()).add(run.overrides.get(k, "—"))
        if len(values) > 1 and all(len(v) == 1 for v in values.values()):
            out.append(k)
    return out


def context_keys(runs: list[Run], param: str, setup: list[str] | None = None) -> list[str]:
    """Swept override keys other than the estimator, the parameter, seeds, launch keys and the keys that
    follow the estimator (``setup``, default :func:`estimator_setup_keys`), + a fixed ``experiment`` (named in titles)."""
    keys, fixed = _swept(runs, param)
    setup = estimator_setup_keys(runs, param) if setup is None else setup
    keys = [k for k in keys if k not in setup]
    return keys + (["experiment"] if "experiment" in fixed and "experiment" not in keys else [])


def collect_points(runs: list[Run], param: str = "lambda_h") -> list[Point]:
    """Aggregated runs grouped by (context, estimator, param value); ``none`` rows keep their value
    (usually 0). Order: context, family (FAMILY_ORDER), estimator, value."""
    included = [r for r in runs if r.included]
    setup_keys = estimator_setup_keys(included, param)
    keys = context_keys(included, param, setup_keys)
    groups: dict[tuple, list[Run]] = {}
    for run in included:
        name, family = estimator_of(run)
        context = tuple((k, run.overrides.get(k, "—")) for k in keys)
        groups.setdefault((context, name, family, param_of(run, param)), []).append(run)
    points = []
    for (context, name, family, value), members in groups.items():
        setup = tuple((k, members[0].overrides[k]) for k in setup_keys if k in members[0].overrides)
        point = Point(context, name, family, value, members, setup=setup)
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


def qualifies(point: Point, min_hq: float = MIN_HQ, prefix: str = "", metric: str = RULE_METRIC) -> bool:
    hq = _mean(point, prefix + "hq_fraction")
    return not math.isnan(hq) and hq >= min_hq - TOL and not math.isnan(_mean(point, prefix + metric))


def _pick(points: list[Point], min_hq: float, prefix: str, metric: str = RULE_METRIC) -> Point | None:
    candidates = [p for p in points if qualifies(p, min_hq, prefix, metric)]
    if not candidates:
        return None
    low = min(_mean(p, prefix + metric) for p in candidates)
    return min((p for p in candidates if _mean(p, prefix + metric) <= low + TOL), key=lambda p: p.value)


def choose_operating_point(points: list[Point], min_hq: float = MIN_HQ, prefix: str = "",
                           metric: str = RULE_METRIC) -> tuple[Point | None, str]:
    """The rule for one estimator's points: lowest mean ``metric`` (assigned KL) among values with mean
    HQ ≥ min_hq, tie → smaller value; ``prefix`` ``ema/`` reads the EMA generator's. Returns (point or None,
    the reason in words)."""
    chosen = _pick(points, min_hq, prefix, metric)
    if chosen is None:
        best_hq = max((_mean(p, prefix + "hq_fraction") for p in points), default=math.nan)
        return None, f"no value reaches mean HQ ≥ {threshold_pct(min_hq)} (highest {_pct(best_hq)})"
    n_ok = sum(qualifies(p, min_hq, prefix, metric) for p in points)
    what = "assigned KL" if metric == RULE_METRIC else metric
    return chosen, (f"lowest mean {what} ({format_number(_mean(chosen, prefix + metric))}) among the "
                    f"{n_ok} of {len(points)} values with mean HQ ≥ {threshold_pct(min_hq)}")


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


def threshold_pct(x: float) -> str:
    """An HQ threshold as a percentage, as precise as it is: 0.8 → "80%", -0.0444 → "-4.4%"."""
    return f"{x:.0%}" if abs(100 * x - round(100 * x)) < 1e-9 else f"{x:.1%}"


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:.1f} %"
