r"""Pre-registered confirmation of estimators against ``none``: exact paired tests, Holm, bootstrap, verdicts.

For one estimator and one endpoint m, the confirmation seeds give paired differences
d_i = m_est(seed i) − m_none(seed i), i = 1..n.

* **Exact sign-flip permutation test** (:func:`sign_flip_p`): under H0 (no effect, differences
  symmetric about 0) every sign pattern of (±d_1, …, ±d_n) is equally likely; the two-sided p-value is
  the fraction of the 2^n patterns whose |Σ ±d_i| ≥ |Σ d_i| (enumerated exactly, n ≤ 20). Zero
  differences flip to themselves, so with z zeros the smallest attainable p is 2/2^(n−z).
* **Holm's step-down correction** (:func:`holm`) over the family (every estimator × both endpoints of
  a regime): sort the m p-values, p_(j) adjusted = max_{k≤j} min(1, (m − k + 1)·p_(k)).
  With a family of 36 tests at α = 0.05 an adjusted p can only pass if 2/2^(n−z) ≤ 0.05/36, i.e.
  n − z ≥ 11 non-tied seeds: the protocol's seed count follows from that.
* **Bootstrap interval** (:func:`bootstrap_interval`) of the mean difference: percentile interval
  over resamples of the seeds (with replacement), seeded.
* **k of n**: seeds where the estimator is better (direction per endpoint), ties counted apart.

Verdict (:func:`verdict`), from coverage (modes, higher is better) and quality (HQ fraction):

* **rescues** — coverage better (adjusted p ≤ α, mean Δ > 0) and mean ΔHQ ≥ −``hq_margin`` (HQ not
  more than 5 points lower);
* **blurs** — coverage better, mean ΔHQ < −``hq_margin``;
* **hurts** — coverage worse (adjusted p ≤ α, mean Δ < 0), or coverage not better and HQ worse
  (adjusted p ≤ α, mean ΔHQ < −``hq_margin``);
* **no effect** — anything else (not decided at this n: says nothing about a small effect).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from mege.errors import check

ALPHA = 0.05
HQ_MARGIN = 0.05
BOOTSTRAP_RESAMPLES = 10_000
MAX_EXACT_N = 20


def sign_flip_p(differences: list[float], alternative: str = "two-sided") -> float:
    """Exact sign-flip permutation p-value of the sum S of paired differences (nan for n = 0): the share of
    the 2^n sign patterns whose sum is at least as extreme — |S'| ≥ |S| (``two-sided``), S' ≥ S
    (``greater``: predicted > 0) or S' ≤ S (``less``: predicted < 0)."""
    check(alternative in ("two-sided", "greater", "less"),
          f"alternative={alternative!r}: use 'two-sided', 'greater' or 'less'")
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n == 0:
        return math.nan
    if n > MAX_EXACT_N:
        raise ValueError(f"exact enumeration over 2^{n} sign patterns is too large; use at most {MAX_EXACT_N} seeds")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    sums, observed = signs @ d, d.sum()
    if alternative == "two-sided":
        sums, observed = np.abs(sums), abs(observed)
    elif alternative == "less":
        sums, observed = -sums, -observed
    return float(np.mean(sums >= observed - 1e-12 * max(1.0, abs(observed))))


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values for a family {name: p} (nan p-values stay nan and do not count in the family)."""
    finite = sorted(((p, k) for k, p in p_values.items() if not math.isnan(p)), key=lambda x: x[0])
    m, running, out = len(finite), 0.0, {k: math.nan for k in p_values}
    for j, (p, k) in enumerate(finite):
        running = max(running, min(1.0, (m - j) * p))
        out[k] = running
    return out


def bootstrap_interval(differences: list[float], level: float = 0.95, seed: int = 0,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean difference (resampling seeds with replacement)."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass
class Comparison:
    """One estimator against ``none`` on one endpoint, over the seeds both have."""

    endpoint: str
    seeds: list[str]
    differences: list[float]
    p: float
    interval: tuple[float, float]
    better: int  # seeds where the estimator is better (by the endpoint's direction)
    worse: int
    p_adjusted: float = math.nan

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        return float(np.mean(self.differences)) if self.differences else math.nan

    def k_of_n(self) -> str:
        ties = self.n - self.better - self.worse
        return f"{self.better} of {self.n} better" + (f", {ties} tied" if ties else "")


def compare(estimator: dict[str, float], none: dict[str, float], endpoint: str, higher_is_better: bool = True,
            bootstrap_seed: int = 0) -> Comparison:
    """Paired comparison of ``{seed: value}`` maps on their common seeds."""
    seeds = sorted(set(estimator) & set(none), key=lambda s: (len(s), s))
    d = [estimator[s] - none[s] for s in seeds]
    sign = 1.0 if higher_is_better else -1.0
    return Comparison(endpoint, seeds, d, sign_flip_p(d), bootstrap_interval(d, seed=bootstrap_seed),
                      better=sum(sign * x > 0 for x in d), worse=sum(sign * x < 0 for x in d))


def verdict(coverage: Comparison, quality: Comparison, alpha: float = ALPHA, hq_margin: float = HQ_MARGIN) -> str:
    """rescues / blurs / hurts / no effect from Holm-adjusted coverage (modes) and quality (HQ) comparisons."""
    cov_sig = not math.isnan(coverage.p_adjusted) and coverage.p_adjusted <= alpha
    hq_sig = not math.isnan(quality.p_adjusted) and quality.p_adjusted <= alpha
    if cov_sig and coverage.mean > 0:
        return "rescues" if quality.mean >= -hq_margin else "blurs"
    if cov_sig and coverage.mean < 0:
        return "hurts"
    if hq_sig and quality.mean < -hq_margin:
        return "hurts"
    return "no effect"


def min_attainable_p(n_untied: int) -> float:
    """The smallest two-sided sign-flip p with n untied seeds: 2 / 2^n."""
    return 2.0 / 2 ** n_untied


# ----------------------------------------------------------------------------- the confirmation table

ENDPOINTS = (("modes", True), ("hq_fraction", True))
"""The two pre-registered endpoints (coverage, quality), each with its direction; Holm runs over these ×
every estimator. The assigned KL is reported beside them (with its exact p, outside the family)."""


def _seconds(point) -> list[float]:
    import json
    out = []
    for run in point.runs:
        try:
            out.append(float(json.loads((run.path / "summary.json").read_text()).get("elapsed_s")))
        except (OSError, ValueError, TypeError):
            pass
    return out


def incomplete(point, none) -> bool:
    """A point still running: it lacks some of ``none``'s seeds (it is listed, not judged)."""
    return bool(set(none.by_seed) - set(point.by_seed))


def confirmation_rows(points, family_size: int | None = None, alpha: float = ALPHA, hq_margin: float = HQ_MARGIN):
    """Per context: each estimator point against ``none`` on both endpoints, Holm-adjusted over the family.

    ``family_size`` fixes the Holm family at the pre-registered number of tests (estimators × 2): tests
    not run yet count as p = 1, so a partial study is corrected as strictly as the whole one. A point
    missing some of ``none``'s seeds (:func:`incomplete`, a row still running) is not judged and not in
    the family: it counts as not run yet.
    """
    from mege.leaderboard.points import seed_values
    rows = []
    for context in sorted({p.context for p in points}):
        here = [p for p in points if p.context == context]
        none = next((p for p in here if p.is_none), None)
        if none is None:
            continue
        comparisons = []  # (point, {endpoint: Comparison})
        for p in here:
            if p.is_none or incomplete(p, none):
                continue
            c = {m: compare(seed_values(p, m), seed_values(none, m), m, up) for m, up in ENDPOINTS}
            c["assigned_kl"] = compare(seed_values(p, "assigned_kl"), seed_values(none, "assigned_kl"),
                                       "assigned_kl", higher_is_better=False)
            comparisons.append((p, c))
        family = {(p.label(), m): c[m].p for p, c in comparisons for m, _ in ENDPOINTS}
        padding = max(0, (family_size or 0) - len(family))
        family.update({("(not run)", str(i)): 1.0 for i in range(padding)})
        adjusted = holm(family)
        for p, c in comparisons:
            for m, _ in ENDPOINTS:
                c[m].p_adjusted = adjusted[(p.label(), m)]
            rows.append((context, none, p, c, verdict(c["modes"], c["hq_fraction"], alpha, hq_margin)))
    return rows


def confirmation_markdown(points, family_size: int | None = None) -> str:
    """The per-regime leaderboard of a confirmation stage (see the module docstring for every column)."""
    from mege.leaderboard.points import seed_values
    from mege.report import Stat, format_number
    from mege.report.write import format_p, pooled_p  # a point, like a group, holds its runs
    from mege.tables import markdown_table

    def cell(point, metric, pct=False):
        s = Stat.of(list(seed_values(point, metric).values()))
        f = (lambda x: f"{100 * x:.1f}") if pct else format_number
        return "—" if s.n == 0 else f"{f(s.mean)} ± {f(s.se) if s.n > 1 else '—'}" + (" %" if pct else "")

    def effect(c, pct=False):
        scale = 100 if pct else 1
        lo, hi = c.interval
        return "—" if not c.n else f"{scale * c.mean:+.3g} [{scale * lo:+.3g}, {scale * hi:+.3g}]"

    rows = confirmation_rows(points, family_size)
    lines = ["# Confirmation: each estimator at its selected λ_H against `none`", "",
             "Raw generator, confirmation seeds only (disjoint from the selection seeds). Cells: mean ± s.e. over "
             "seeds. Effects: mean paired difference (estimator − none) with its 95 % percentile bootstrap interval "
             "(10 000 resamples of seeds). p: exact two-sided sign-flip permutation test; adj. p: Holm over every "
             f"estimator × both endpoints of the regime{f' (family fixed at {family_size} tests; tests not run count as p = 1)' if family_size else ''}. "
             "Verdict: rescues (coverage better at adj. p ≤ 0.05, HQ not more than 5 points lower), blurs (coverage "
             "better, HQ lower than that), hurts (coverage worse, or HQ more than 5 points worse at adj. p ≤ 0.05), "
             "no effect (otherwise: not shown at this n). G-test p: exact-sampling goodness of fit of the assigned-KL "
             "histograms, pooled over seeds. s/run: mean training wall time per run.", ""]
    for context in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == context]
        none = mine[0][1]
        title = ", ".join(f"{k}={v}" for k, v in context) or "all runs"
        floor = Stat.of(list(seed_values(none, "assigned_kl_floor").values())).mean
        lines += [f"## {title}", "",
                  f"`none`: {cell(none, 'modes')} modes, HQ {cell(none, 'hq_fraction', True)}, assigned KL "
                  f"{cell(none, 'assigned_kl')} (floor {format_number(floor)}, G-test p {format_p(pooled_p(none, 'assigned_kl'))}), "
                  f"{len(none.runs)} seeds, {format_number(float(np.mean(_seconds(none))) if _seconds(none) else math.nan)} s/run.", ""]
        header = ["estimator", "λ_H", "modes", "HQ", "assigned KL", "G-test p", "Δ modes [95 % CI]", "p", "adj. p",
                  "k of n (modes)", "Δ HQ, points [95 % CI]", "adj. p (HQ)", "Δ assigned KL", "p (KL)", "verdict", "s/run"]
        body = []
        for _, _, p, c, v in mine:
            secs = _seconds(p)
            body.append([p.estimator, format_number(p.value), cell(p, "modes"), cell(p, "hq_fraction", True),
                         cell(p, "assigned_kl"), format_p(pooled_p(p, "assigned_kl")), effect(c["modes"]), f"{c['modes'].p:.3g}",
                         f"{c['modes'].p_adjusted:.3g}", c["modes"].k_of_n(), effect(c["hq_fraction"], pct=True),
                         f"{c['hq_fraction'].p_adjusted:.3g}", effect(c["assigned_kl"]), f"{c['assigned_kl'].p:.3g}",
                         f"**{v}**", format_number(float(np.mean(secs))) if secs else "—"])
        lines += markdown_table(header, body) + [""]
        setups = sorted({(p.estimator, p.setup_text()) for _, _, p, _, _ in mine if p.setup})
        lines += ["Set up with the estimator (`none` runs without it): " + "; ".join(
            f"{name} with {what}" for name, what in setups) + ".", ""] if setups else []
        waiting = [p for p in points if p.context == context and not p.is_none and incomplete(p, none)]
        lines += [f"Not judged yet (confirmation incomplete): " + ", ".join(
            f"{p.estimator} at λ_H {format_number(p.value)} ({len(p.by_seed)} of {len(none.by_seed)} seeds)" for p in waiting)
            + ".", ""] if waiting else []
    return "\n".join(lines)


def write_confirmation(runs, out_dir, param: str = "lambda_h", family_size: int | None = None) -> dict:
    """``confirmation.md`` in ``out_dir`` from the confirmation runs (``mege report <runs> --confirm [--family N]``)."""
    from pathlib import Path
    from mege.leaderboard.points import collect_points
    path = Path(out_dir) / "confirmation.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(confirmation_markdown(collect_points(runs, param), family_size) + "\n")
    return {"confirmation": path}
