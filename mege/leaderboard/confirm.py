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

ALPHA = 0.05
HQ_MARGIN = 0.05
BOOTSTRAP_RESAMPLES = 10_000
MAX_EXACT_N = 20


def sign_flip_p(differences: list[float]) -> float:
    """Exact two-sided sign-flip permutation p-value of the mean of paired differences (nan for n = 0)."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n == 0:
        return math.nan
    if n > MAX_EXACT_N:
        raise ValueError(f"exact enumeration over 2^{n} sign patterns is too large; use at most {MAX_EXACT_N} seeds")
    observed = abs(d.sum())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    sums = np.abs(signs @ d)
    return float(np.mean(sums >= observed - 1e-12 * max(1.0, observed)))


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
