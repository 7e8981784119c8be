"""Pre-registered confirmation statistics against closed forms and scipy's exact tests."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from mege.errors import MegeError
from mege.leaderboard.confirm import (Comparison, bootstrap_interval, compare, holm, min_attainable_p, sign_flip_p,
                                      verdict)


def test_sign_flip_p_by_hand_and_against_scipy_permutation_test():
    # all positive, n = 4: only the all-plus and all-minus patterns reach |sum| = 10 → p = 2/16
    assert sign_flip_p([1, 2, 3, 4]) == pytest.approx(2 / 16)
    # by hand for (3, -1, 2): sums over the 8 patterns are ±4, ±6, ±0, ±2 → |sum| ≥ 4 in 4 of 8
    assert sign_flip_p([3, -1, 2]) == pytest.approx(4 / 8)
    d = np.array([0.3, -0.1, 0.5, 0.7, 0.2, -0.4, 0.9, 0.1])
    ref = stats.permutation_test((d,), lambda x: np.mean(x), permutation_type="samples", n_resamples=np.inf,
                                 alternative="two-sided").pvalue
    assert sign_flip_p(list(d)) == pytest.approx(ref, rel=1e-12)


def test_one_sided_sign_flip_p_by_hand_and_against_scipy():
    # all five seeds in the predicted direction: only the observed pattern is as extreme → 1/32 (claim 3's floor)
    assert sign_flip_p([-1, -2, -1, -3, -1], alternative="less") == pytest.approx(1 / 32)
    assert sign_flip_p([-1, -2, -1, -3, -1], alternative="greater") == pytest.approx(1.0)
    # (3, -1, 2): sums 6, 4, 2, 0, 0, -2, -4, -6 over the 8 patterns; S = 4 → S' ≥ 4 in 2 of 8, S' ≤ 4 in 7 of 8
    assert sign_flip_p([3, -1, 2], alternative="greater") == pytest.approx(2 / 8)
    assert sign_flip_p([3, -1, 2], alternative="less") == pytest.approx(7 / 8)
    assert sign_flip_p([0.0] * 5, alternative="less") == 1.0  # every seed tied: nothing shown
    d = np.array([0.3, -0.1, 0.5, 0.7, 0.2, -0.4, 0.9, 0.1])
    for alternative in ("greater", "less"):
        ref = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf,
                                     alternative=alternative).pvalue
        assert sign_flip_p(list(d), alternative=alternative) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(MegeError, match="use 'two-sided', 'greater' or 'less'"):
        sign_flip_p([1.0], alternative="up")


def test_zero_differences_limit_the_smallest_p():
    assert sign_flip_p([1.0] * 10) == pytest.approx(min_attainable_p(10)) == pytest.approx(2 / 1024)
    assert sign_flip_p([1.0] * 10 + [0.0, 0.0]) == pytest.approx(2 / 1024)  # two ties: as if n = 10
    assert min_attainable_p(11) < 0.05 / 36 < min_attainable_p(10)  # why the protocol needs ≥ 11 untied seeds


def test_holm_against_a_hand_computed_family():
    p = {"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": math.nan}
    adj = holm(p)
    # sorted: d 0.005·4 = 0.02, a 0.01·3 = 0.03, c 0.03·2 = 0.06, b max(0.06, 0.04·1) = 0.06
    assert adj["d"] == pytest.approx(0.02) and adj["a"] == pytest.approx(0.03)
    assert adj["c"] == pytest.approx(0.06) and adj["b"] == pytest.approx(0.06) and math.isnan(adj["e"])


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    d = list(rng.normal(1.0, 1.0, size=10))
    lo, hi = bootstrap_interval(d)
    assert lo < np.mean(d) < hi
    lo2, hi2 = bootstrap_interval(d * 10)
    assert hi2 - lo2 < 0.5 * (hi - lo)
    assert bootstrap_interval(d, seed=3) == bootstrap_interval(d, seed=3)
    assert all(math.isnan(x) for x in bootstrap_interval([1.0]))


def test_compare_pairs_by_seed_and_counts_k_of_n():
    est = {"1": 8, "2": 7, "3": 8, "4": 5}
    none = {"1": 5, "2": 7, "3": 6, "4": 6, "9": 1}
    c = compare(est, none, "modes")
    assert c.seeds == ["1", "2", "3", "4"] and c.differences == [3, 0, 2, -1]
    assert (c.better, c.worse) == (2, 1) and c.k_of_n() == "2 of 4 better, 1 tied"
    kl = compare({"1": 0.1}, {"1": 0.3}, "assigned_kl", higher_is_better=False)
    assert kl.better == 1 and kl.differences == [pytest.approx(-0.2)]


def _c(mean, p_adj, endpoint="modes"):
    return Comparison(endpoint, ["0"], [mean], math.nan, (math.nan, math.nan), 0, 0, p_adjusted=p_adj)


@pytest.mark.parametrize("cov, hq, expected", [
    ((2.0, 0.01), (-0.02, 1.0), "rescues"),
    ((2.0, 0.01), (-0.10, 0.01), "blurs"),
    ((2.0, 0.20), (-0.10, 0.01), "hurts"),
    ((-2.0, 0.01), (0.0, 1.0), "hurts"),
    ((2.0, 0.20), (0.0, 1.0), "no effect"),
    ((2.0, 0.01), (-0.05, 0.5), "rescues"),  # exactly 5 points lower is still "not more than 5 lower"
])
def test_verdicts(cov, hq, expected):
    assert verdict(_c(*cov), _c(*hq, endpoint="hq_fraction")) == expected


def test_confirmation_table_on_the_committed_issue13_runs(tmp_path):
    """`mege report --confirm` on the committed ring8_collapse leaderboard runs (5 seeds): kde_score's
    paired mode differences over its five seeds are (0, +5, +3, 0, +1) by hand from the run files (none:
    8, 3, 5, 8, 7; kde_score: 8 on each), so Δ = +1.8; of the 8 sign patterns of (5, 3, 1) only ±(5+3+1)
    reach |9|, so the exact sign-flip p = 2/8 = 0.25; 3 of 5 better with 2 ties — and with a family of 36
    no verdict but 'no effect' is possible at n = 5."""
    from pathlib import Path

    from mege.cli import main

    runs = Path(__file__).resolve().parents[2] / "experiments" / "ablation" / "run_files" / "ring8_collapse" / "leaderboard"
    assert main(["report", str(runs), "--confirm", "--family", "36", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "confirmation.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| kde_score "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[6].startswith("+1.8 [") and cells[7] == "0.25" and cells[8] == "1"
    assert cells[9] == "3 of 5 better, 2 tied" and cells[14] == "**no effect**"
    assert "family fixed at 36 tests" in text


def test_a_row_missing_seeds_is_listed_not_judged(tmp_path):
    """A confirmation row still running (here kde_score with 2 of none's 5 seeds) is not judged and not in the
    Holm family: the other rows' adjusted p are those of the table without it."""
    import shutil
    from pathlib import Path

    from mege.cli import main

    runs = Path(__file__).resolve().parents[2] / "experiments" / "ablation" / "run_files" / "ring8_collapse" / "leaderboard"
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    full, partial = tmp_path / "full", tmp_path / "partial"
    assert main(["report", str(copy), "--confirm", "--family", "36", "--out", str(full)]) == 0
    kde_score_runs = sorted(p.parent for p in copy.rglob("summary.json") if "kde_score" in str(p))
    assert len(kde_score_runs) == 5
    for run in kde_score_runs[2:]:
        shutil.rmtree(run)
    assert main(["report", str(copy), "--confirm", "--family", "36", "--out", str(partial)]) == 0
    text = (partial / "confirmation.md").read_text()
    assert not any(line.startswith("| kde_score ") for line in text.splitlines())
    assert "Not judged yet (confirmation incomplete): kde_score at λ_H 0.3 (2 of 5 seeds)." in text
    others = lambda t: [line for line in t.splitlines() if line.startswith("| ") and "kde_score" not in line]
    assert others(text) == others((full / "confirmation.md").read_text())  # p = 1 either way at n = 5
