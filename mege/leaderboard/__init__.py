r"""λ_H frontier and estimator leaderboard of a sweep: ``mege report <sweep> --frontier lambda_h`` / ``--leaderboard``.

**Frontier** (``--frontier PARAM``): the runs are grouped by (context, estimator, PARAM value),
pooled over seeds; for each group the mean ± s.e. (ddof = 1) of ``modes``, ``hq_fraction`` and
``assigned_kl`` (raw generator, and ``ema/`` for its EMA). The *context* is every other swept
override (e.g. ``experiment``), one figure and one table per context. The figure has one column
per estimator *family* (the run's ``entropy.facts.family``, else :func:`family_of` of its ``_target_``) and one row per
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

from mege.leaderboard.points import (ESTIMATOR_KEY, FAMILY_ORDER, FRONTIER_METRICS, LEADERBOARD_METRICS, LEVEL,
                                     MIN_HQ, NONE, RULE_METRIC, TOL, best_row, choose_operating_point, collect_points,
                                     context_keys, estimator_of, family_of, operating_points, Paired,
                                     paired_difference, param_of, Point, qualifies, seed_values, t_quantile)
from mege.leaderboard.render import (frontier_markdown, leaderboard_markdown, plot_frontier, points_json,
                                     write_frontier, write_leaderboard)
from mege.report import Stat

__all__ = ["ESTIMATOR_KEY", "FAMILY_ORDER", "FRONTIER_METRICS", "LEADERBOARD_METRICS", "LEVEL", "MIN_HQ", "NONE",
           "Paired", "Point", "RULE_METRIC", "Stat", "TOL", "best_row", "choose_operating_point", "collect_points",
           "context_keys", "estimator_of", "family_of", "frontier_markdown", "leaderboard_markdown",
           "operating_points", "paired_difference", "param_of", "plot_frontier", "points_json", "qualifies",
           "seed_values", "t_quantile", "write_frontier", "write_leaderboard"]
