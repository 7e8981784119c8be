"""λ_H frontier, operating-point rule and leaderboard (mege/leaderboard.py, `mege report --frontier/--leaderboard`).

A synthetic sweep folder holds run folders shaped like the ones `mege train -m` writes
(.hydra/overrides.yaml, config.yaml with entropy._target_ and lambda_h, summary.json with raw and
EMA toy metrics and their protocol card); every expected number is computed by hand here.
"""

from __future__ import annotations

import json
import math

import pytest
import yaml

from mege import leaderboard as lb
from mege.cli.report import main as report_main
from mege.report import build_report

TARGETS = {"none": "mege.entropy.none.NoEntropy", "knn": "mege.entropy.knn.KLEntropy",
           "mi_js": "mege.entropy.mi.JSMutualInformation", "kde_score": "mege.entropy.kde.KDEScore",
           "kde": "mege.entropy.kde.KDEEntropy"}

# t quantiles written out (tables; also checked against scipy below)
T975_DF2 = 4.302652729911275
T975_DF4 = 2.7764451051977987
R8 = (("experiment", "ring8_collapse"),)  # the context: the fixed experiment override


def make_run(root, name, entropy, lam, seed, modes, hq, akl, ema_shift=0.0, experiment="ring8_collapse", status="completed",
             extra=()):
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    overrides = [f"experiment={experiment}", f"entropy={entropy}", f"lambda_h={lam}", f"seed={seed}", "train.progress=false",
                 *extra]
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    cfg = {"seed": seed, "lambda_h": lam, "entropy": {"_target_": TARGETS[entropy]}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    card = {"name": "toy", "n_samples": 2500, "n_modes": 8}

    def block(shift):
        return {"modes": modes, "n_modes": 8, "hq_fraction": hq, "assigned_kl": akl + shift, "assigned_kl_floor": 0.0014,
                "reverse_kl": 2 * akl + shift, "reverse_kl_floor": 0.0016, "n_samples": 2500, "protocol": card}

    summary = {"status": status, "step": 100, "steps": 100, "metrics": block(0.0), "ema_metrics": block(ema_shift)}
    (d / "summary.json").write_text(json.dumps(summary))
    return d


# Frontier: none on seeds 0–2; knn at four λ; mi_js at two λ, none of which reaches 80 % HQ.
NONE_KL = [0.30, 0.50, 0.40]
KNN = {  # λ: (HQ per seed, assigned KL per seed)
    0.01: ([0.95, 0.95, 0.95], [0.30, 0.20, 0.25]),   # HQ 0.95, KL mean 0.25
    0.1: ([0.90, 0.80, 0.70], [0.10, 0.20, 0.15]),    # HQ mean exactly 0.80 (qualifies), KL 0.15
    0.3: ([0.85, 0.85, 0.85], [0.20, 0.10, 0.15]),    # KL 0.15 as well: tie → 0.1 wins
    1.0: ([0.50, 0.40, 0.60], [0.01, 0.02, 0.03]),    # lowest KL, but HQ 0.50: excluded
}
MI = {0.3: ([0.70, 0.75, 0.79], [0.2, 0.2, 0.2]), 3.0: ([0.3, 0.3, 0.3], [0.05, 0.05, 0.05])}


@pytest.fixture
def frontier_dir(tmp_path):
    root = tmp_path / "frontier"
    for s, kl in enumerate(NONE_KL):
        make_run(root / "none", str(s), "none", 0, s, 3 + s, 0.95, kl)
    for estimator, table in (("knn", KNN), ("mi_js", MI)):
        job = 0
        for lam, (hqs, kls) in table.items():
            for s, (hq, kl) in enumerate(zip(hqs, kls)):
                make_run(root / estimator, str(job), estimator, lam, s, 8, hq, kl, ema_shift=0.01)
                job += 1
    return root


def test_family_from_target():
    assert lb.family_of("mege.entropy.mi.InfoNCE") == "MI bound"
    assert lb.family_of("mege.entropy.kde.KDEEntropy") == "KDE value"
    assert lb.family_of("mege.entropy.kde.KDEScore") == "KDE score"
    assert lb.family_of("mege.entropy.knn.WeightedKLEntropy") == "kNN"
    assert lb.family_of("mege.entropy.zuko_flow.ZukoFlowEntropy") == "flow"
    assert lb.family_of("mege.entropy.flow.FlowEntropy") == "flow"
    assert lb.family_of("mege.entropy.stein.SSGEScore") == "Stein / SSGE"
    assert lb.family_of("mege.entropy.posterior.HMCPosteriorScore") == "posterior score"
    assert lb.family_of("mege.entropy.none.NoEntropy") == "none"
    assert lb.family_of("my_pkg.things.GaussianScore") == "things"


def test_frontier_means_se_and_operating_point(frontier_dir):
    points = lb.collect_points(build_report(frontier_dir).runs, "lambda_h")
    knn = {p.value: p for p in points if p.estimator == "knn"}
    assert sorted(knn) == [0.01, 0.1, 0.3, 1.0]
    p = knn[0.1]
    assert len(p.runs) == 3 and sorted(p.by_seed) == ["0", "1", "2"]
    assert p.stats["hq_fraction"].mean == pytest.approx(0.80)
    # s.e. of (0.9, 0.8, 0.7): s.d. 0.1 (ddof 1), / √3
    assert p.stats["hq_fraction"].se == pytest.approx(0.1 / math.sqrt(3))
    assert p.stats["assigned_kl"].mean == pytest.approx(0.15)
    assert p.stats["assigned_kl"].se == pytest.approx(0.05 / math.sqrt(3))
    assert p.stats["ema/assigned_kl"].mean == pytest.approx(0.16)
    assert p.family == "kNN"

    chosen = lb.operating_points(points)
    pick, reason = chosen[(R8, "knn")]
    assert pick is knn[0.1], "mean HQ exactly 0.80 qualifies; KL tie 0.15 vs 0.15 goes to the smaller λ"
    assert "3 of 4" in reason  # 0.01, 0.1, 0.3 qualify; 1.0 does not
    mi_pick, mi_reason = chosen[(R8, "mi_js")]
    assert mi_pick is None and "no value reaches" in mi_reason and "74.7 %" in mi_reason  # best HQ (0.70+0.75+0.79)/3
    assert (R8, "none") not in chosen


def test_rule_threshold_and_ties_are_strict():
    def point(value, hq, kl):
        p = lb.Point((), "x", "kNN", value, [])
        p.stats = {"hq_fraction": lb.Stat(hq, 0.0, 3), "assigned_kl": lb.Stat(kl, 0.0, 3)}
        return p

    a, b, c = point(0.3, 0.80, 0.1), point(0.1, 0.80, 0.1), point(1.0, 0.7999, 0.01)
    assert lb.choose_operating_point([a, b, c])[0] is b
    assert lb.choose_operating_point([c])[0] is None
    assert lb.choose_operating_point([point(0.1, 0.9, 0.2), point(0.3, 0.9, 0.19)])[0].value == 0.3


def test_a_relative_threshold_is_written_as_precisely_as_it_is():
    """The stacked-MNIST rule's threshold is none's HQ − 5 points (−4.4 %): the reason must not round it to −4 %."""
    from mege.leaderboard.points import threshold_pct
    p = lb.Point((), "x", "kNN", 0.1, [])
    p.stats = {"hq_fraction": lb.Stat(0.0, 0.0, 2), "assigned_kl": lb.Stat(0.3, 0.0, 2)}
    assert lb.choose_operating_point([p], min_hq=0.0056 - 0.05)[1].endswith("values with mean HQ ≥ -4.4%")
    assert threshold_pct(0.8) == "80%" and threshold_pct(0.85) == "85%" and threshold_pct(-0.0444) == "-4.4%"


def test_paired_difference_by_hand():
    a = dict(zip("01234", [0.10, 0.20, 0.15, 0.12, 0.13]))
    b = dict(zip("01234", [0.30, 0.50, 0.40, 0.35, 0.45]))
    d = lb.paired_difference(a, b)
    # d = (-0.2, -0.3, -0.25, -0.23, -0.32), mean -0.26; Σ(d-mean)² = 0.0098; s = √(0.0098/4) = 0.0494975
    half = T975_DF4 * math.sqrt(0.0098 / 4) / math.sqrt(5)
    assert d.n == 5 and d.mean == pytest.approx(-0.26)
    assert half == pytest.approx(0.0614592, abs=1e-6)  # 2.776445 × 0.0494975 / 2.236068
    assert (d.low, d.high) == (pytest.approx(-0.26 - half), pytest.approx(-0.26 + half))
    assert d.excludes_zero
    # pairing uses only the seeds in both, and is not an unpaired comparison
    b2 = {**b, "7": 9.0}
    del b2["4"]
    d2 = lb.paired_difference(a, b2)
    assert d2.n == 4 and d2.mean == pytest.approx((-0.2 - 0.3 - 0.25 - 0.23) / 4)
    one = lb.paired_difference({"0": 1.0}, {"0": 0.5})
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.low)
    assert lb.paired_difference({"0": 1.0}, {"1": 0.5}).n == 0


def test_t_quantiles_match_scipy():
    from scipy.stats import t

    assert lb.t_quantile(0.975, 4) == pytest.approx(T975_DF4) == pytest.approx(t.ppf(0.975, 4))
    assert lb.t_quantile(0.975, 2) == pytest.approx(T975_DF2)


@pytest.fixture
def board_dir(tmp_path):
    """Leaderboard: none, knn @ 0.1 and kde_score @ 0.03 on seeds 10–12 (kde_score misses seed 12)."""
    root = tmp_path / "board"
    rows = {("none", 0): ([0.30, 0.50, 0.40], [0.95] * 3, [3, 5, 4]),
            ("knn", 0.1): ([0.10, 0.20, 0.15], [0.90] * 3, [8, 8, 7]),
            ("kde_score", 0.03): ([0.12, 0.16], [0.85] * 2, [8, 8]),
            ("mi_js", 1.0): ([0.01, 0.01, 0.01], [0.5] * 3, [8, 8, 8])}  # lowest KL but HQ 0.5: cannot be best
    for (estimator, lam), (kls, hqs, modes) in rows.items():
        for i, (kl, hq, m) in enumerate(zip(kls, hqs, modes)):
            make_run(root / estimator, str(i), estimator, lam, 10 + i, m, hq, kl, ema_shift=0.02 * i)
    return root


def test_leaderboard_best_and_intervals(board_dir):
    points = lb.collect_points(build_report(board_dir).runs, "lambda_h")
    by = {p.estimator: p for p in points}
    best = lb.best_row(points)
    # kde_score mean 0.14 < knn 0.15 → kde_score is best; mi_js excluded by HQ, none excluded by rule
    assert best is by["kde_score"]
    # knn − none, paired on seeds 10–12: d = (-0.2, -0.3, -0.25), mean -0.25, s = 0.05
    d = lb.paired_difference(lb.seed_values(by["knn"], "assigned_kl"), lb.seed_values(by["none"], "assigned_kl"))
    half = T975_DF2 * 0.05 / math.sqrt(3)
    assert d.n == 3 and d.mean == pytest.approx(-0.25) and d.low == pytest.approx(-0.25 - half)
    # knn − best (kde_score), paired on seeds 10, 11 only: d = (-0.02, 0.04), mean 0.01, s = 0.0424264, t(0.975, 1)
    d = lb.paired_difference(lb.seed_values(by["knn"], "assigned_kl"), lb.seed_values(by["kde_score"], "assigned_kl"))
    half = 12.706204736174707 * math.sqrt(0.0018) / math.sqrt(2)
    assert d.n == 2 and d.mean == pytest.approx(0.01) and d.high == pytest.approx(0.01 + half)
    assert not d.excludes_zero

    text = lb.leaderboard_markdown(points, "lambda_h")
    assert "| kde_score (best) | KDE score | 0.03 | raw | 2 |" in text
    # knn row of the differences table: raw − none, with its interval to 4 significant digits
    lo, hi = -0.25 - T975_DF2 * 0.05 / math.sqrt(3), -0.25 + T975_DF2 * 0.05 / math.sqrt(3)
    assert f"-0.25 [{lo:.4g}, {hi:.4g}] * (n=3)" in text
    assert "Best: `kde_score` at lambda_h = 0.03" in text
    assert "(floor 0.0014)" in text
    # EMA differences use the EMA metric: knn EMA KL = raw + (0, 0.02, 0.04), none EMA likewise → same d
    ema = lb.paired_difference(lb.seed_values(by["knn"], "ema/assigned_kl"), lb.seed_values(by["none"], "ema/assigned_kl"))
    assert ema.mean == pytest.approx(-0.25)


def test_mege_report_cli_writes_frontier_and_leaderboard(frontier_dir, tmp_path, capsys):
    out = tmp_path / "rep"
    assert report_main([str(frontier_dir), "--frontier", "lambda_h", "--leaderboard", "--out", str(out)]) == 0
    assert (out / "report.md").is_file()
    assert (out / "frontier.png").stat().st_size > 10_000
    front = (out / "frontier.md").read_text()
    assert "- `knn`: lambda_h = 0.1 — lowest mean assigned KL (0.15) among the 3 of 4 values" in front
    assert "- `mi_js`: none chosen — no value reaches mean HQ ≥ 80%" in front
    data = json.loads((out / "frontier.json").read_text())
    ops = {o["estimator"]: o["value"] for o in data["operating_points"]}
    assert ops == {"knn": 0.1, "mi_js": None}
    board = (out / "leaderboard.md").read_text()
    assert "Best: `knn` at lambda_h = 0.01" not in board
    # over the whole frontier folder the best row is knn @ 0.1 (KL 0.15, tie with 0.3 → smaller λ)
    assert "Best: `knn` at lambda_h = 0.1;" in board


def test_contexts_split_experiments(tmp_path):
    root = tmp_path / "two"
    for s in range(2):
        make_run(root, f"a{s}", "knn", 0.1, s, 8, 0.9, 0.1 + s, experiment="ring8_collapse")
        make_run(root, f"b{s}", "knn", 0.1, s, 20, 0.9, 0.5, experiment="grid25_collapse")
    points = lb.collect_points(build_report(root).runs, "lambda_h")
    assert {p.context for p in points} == {(("experiment", "ring8_collapse"),), (("experiment", "grid25_collapse"),)}
    written = lb.write_frontier(build_report(root).runs, "lambda_h", tmp_path / "o")
    assert (tmp_path / "o" / "frontier_ring8_collapse.png").is_file()
    assert (tmp_path / "o" / "frontier_grid25_collapse.png").is_file()
    assert len([k for k in written if k.startswith("frontier plot")]) == 2


def test_an_override_that_follows_the_estimator_is_not_a_context(tmp_path):
    """The generator a study adds for the posterior scores (here on knn) comes with the estimator: its runs
    are compared with the plain `none` of the same experiment, and the table names the generator."""
    from mege.leaderboard.confirm import confirmation_markdown, confirmation_rows
    root = tmp_path / "noisy"
    for s in range(5):
        make_run(root, f"n{s}", "none", 0, s, 3, 0.95, 0.5)
        make_run(root, f"k{s}", "knn", 0.1, s, 3 + s + 1, 0.95, 0.2, extra=["generator=noisy_mlp_relu128"])
    points = lb.collect_points(build_report(root).runs, "lambda_h")
    assert {p.context for p in points} == {R8}
    knn = next(p for p in points if p.estimator == "knn")
    assert knn.setup == (("generator", "noisy_mlp_relu128"),)
    rows = confirmation_rows(points)
    assert len(rows) == 1 and rows[0][3]["modes"].mean == pytest.approx(3.0)  # (1+2+3+4+5)/5 more modes
    assert rows[0][3]["modes"].k_of_n() == "5 of 5 better"
    assert "knn with generator=noisy_mlp_relu128" in confirmation_markdown(points)
    # the same override on every estimator's runs at two values is a context again
    for s in range(2):
        make_run(root, f"m{s}", "none", 0, s, 3, 0.95, 0.5, extra=["generator=noisy_mlp_relu128"])
    points = lb.collect_points(build_report(root).runs, "lambda_h")
    assert {p.context for p in points} == {(("generator", "—"), *R8), (("generator", "noisy_mlp_relu128"), *R8)}


def test_frontier_plot_one_column_per_family(frontier_dir, tmp_path):
    points = lb.collect_points(build_report(frontier_dir).runs, "lambda_h")
    families = lb.plot_frontier(points, "lambda_h", R8, tmp_path / "f.png")
    assert families == ["MI bound", "kNN"]  # none is the reference line, not a column
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_frontier_min_hq_sets_the_rule_threshold(frontier_dir, tmp_path):
    """`--min-hq 0.5`: mi_js's λ 0.3 (mean HQ 0.7467) now qualifies and is its operating point; at the
    default 0.80 neither of its values does (test_frontier_means_se_and_operating_point)."""
    out = tmp_path / "low"
    assert report_main([str(frontier_dir), "--frontier", "lambda_h", "--min-hq", "0.5", "--out", str(out)]) == 0
    text = (out / "frontier.md").read_text()
    assert "mean raw HQ ≥ 50%" in text
    assert "- `mi_js`: lambda_h = 0.3" in text
