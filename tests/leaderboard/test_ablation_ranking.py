"""Issue 23's leaderboard script (experiments/estimator_ablation/leaderboard.py): the pre-registered ranking
that picks the Stacked MNIST estimators (protocol_stacked_mnist.md), by hand, and the committed ring table."""

from __future__ import annotations

from conftest import load_script


def _leaderboard():
    return load_script("experiments/estimator_ablation/leaderboard.py", "ablation_leaderboard")


def _rec(name, verdict, share):
    return {"estimator": name, "verdict": verdict, "share": share}


def _order(lines):
    return [line.split("|")[2].strip() for line in lines[2:]]


def test_ranking_follows_the_preregistered_rule():
    lb = _leaderboard()
    records = {"ring": [_rec("kde", "no effect", 0.30), _rec("stein", "rescues", 0.05), _rec("knn", "hurts", 0.50),
                        _rec("posterior_is", "rescues", 0.9), _rec("mi_js", "blurs", 0.10)],
               "grid": [_rec("kde", "no effect", 0.10), _rec("stein", "no effect", 0.0), _rec("knn", "rescues", 0.9),
                        _rec("mi_js", "no effect", -0.02), _rec("kde_learned", "no effect", 0.45)]}
    # rescues first (stein), then blurs (mi_js), then the mean share over both regimes: kde_learned 0.45 / 2 =
    # 0.225 ahead of kde (0.30 + 0.10) / 2 = 0.20; knn hurts on the ring and the posterior scores are left out
    assert _order(lb.ranking(records)) == ["stein", "mi_js", "kde_learned", "kde"]


def test_ranking_ties_go_to_the_cheaper_estimator():
    lb = _leaderboard()
    records = {"ring": [_rec("flow_spline", "no effect", 0.1), _rec("kde", "no effect", 0.1)], "grid": []}
    assert _order(lb.ranking(records)) == ["kde", "flow_spline"]  # flow_spline's facts.cost is 6, kde's 1


def test_committed_ring_table_agrees_with_the_confirmation_runs():
    lb = _leaderboard()
    lines, records = lb.regime_table("ring")
    text = "\n".join(lines)
    none_row = next(line for line in lines if line.startswith("| none |"))
    assert "5.33 ± 0.51" in none_row and "87.8 ± 2.9 %" in none_row  # 12 seeds of the committed none runs
    kde = next(r for r in records if r["estimator"] == "kde")
    assert kde["verdict"] == "no effect" and abs(kde["share"] - 2.0 / 8) < 1e-12  # +2.0 modes of 8
    assert "| knn | — | no qualifying λ_H" in text


def test_stacked_rows_wait_for_every_toy_row():
    """The Stacked MNIST rows are printed only when both regimes have a line for each of their 18 estimators."""
    lb = _leaderboard()
    names = [n for n in lb.load_spec(lb.HERE / "ring.yaml").rows if n != "none"]
    assert len(names) == 18
    full = [_rec(n, "no effect", 0.0) for n in names]
    records = {"ring": full, "grid": [r for r in full if r["estimator"] != "flow_spline"]}
    assert lb.missing_rows(records) == {"ring": [], "grid": ["flow_spline"]}
    records["grid"] = full + [_rec("ssge", "blurs", 0.2)]
    assert lb.missing_rows(records) == {"ring": [], "grid": []}
    assert [t[4] for t in lb.ranked(records)[:2]] == ["ssge", "flow_affine"]  # a blur first; ties: cost 1, then name


def _stacked_files(tmp_path, none_seeds, kde_seeds):
    """Run files shaped like run_files/stacked_mnist: `none` and kde_score on confirmation seeds, kde part-way."""
    from test_leaderboard import make_run
    conf = tmp_path / "confirmation"
    for seed in none_seeds:
        make_run(conf / "none" / "lambda_0", str(seed), "none", 0, seed, 900 + seed % 10, 0.80, 1.0, experiment="stacked_mnist_cpu")
    for seed in none_seeds:  # +10 modes on every seed, 10 HQ points lower: a blur
        make_run(conf / "kde_score" / "lambda_1", str(seed), "kde_score", 1, seed, 910 + seed % 10, 0.70, 0.9,
                 experiment="stacked_mnist_cpu")
    for seed in kde_seeds:
        make_run(conf / "kde" / "lambda_0.1", str(seed), "kde", 0.1, seed, 905, 0.80, 1.0, experiment="stacked_mnist_cpu")
    return tmp_path


def test_stacked_table_judges_with_the_family_of_four_once_none_is_complete(tmp_path):
    lb = _leaderboard()
    files = _stacked_files(tmp_path, range(300, 308), range(300, 304))
    lines, records = lb.regime_table(lb.STACKED, rows=["none", "kde_score", "kde"], files=files)
    text = "\n".join(lines)
    row = next(line for line in lines if line.startswith("| kde_score |"))
    # 8 of 8 seeds +10 modes: exact sign-flip p = 2/256; Holm over 4 tests (kde's two count as p = 1): 4 × 2/256
    assert "+10 [+10, +10]" in row and "| 0.031 |" in row and "8 of 8 better" in row and "**blurs**" in row
    assert "| kde | — | confirmation incomplete (4 of 8 seeds): not judged" in text
    assert "seeds 300–307" in text and "family of 4 tests" in text and "26 000 samples" in text
    assert records == [{"estimator": "kde_score", "verdict": "blurs", "share": 10 / 1000}]


def test_stacked_table_judges_nothing_while_none_is_running(tmp_path):
    lb = _leaderboard()
    files = _stacked_files(tmp_path, range(300, 304), [])
    spec = lb.load_spec(lb.HERE / "stacked_mnist.yaml")
    job = lb.expand(spec, files, "selection", ["kde"])[0]  # one finished selection run of kde, no selection.json
    from test_leaderboard import make_run
    make_run(job.path.parent, job.path.name, "kde", job.lambda_h, 200, 905, 0.8, 1.0, experiment="stacked_mnist_cpu")
    lines, records = lb.regime_table(lb.STACKED, rows=["none", "kde_score", "kde"], files=files)
    text = "\n".join(lines)
    assert "**" not in text and records == []
    assert "| none | — | confirmation incomplete (4 of 8 seeds): not judged" in text
    assert "| kde | — | selection incomplete (1 of 10 runs)" in text


def test_a_stacked_rescue_carries_amendment_ones_mark_and_modes_keep_four_digits(tmp_path):
    """Protocol amendment 1: on Stacked MNIST a *rescues* is a coverage gain at an unresolved quality (†);
    999.75 of 1000 modes reads 999.8, not 1e+03."""
    lb = _leaderboard()
    from test_leaderboard import make_run
    conf = tmp_path / "confirmation"
    for seed in range(300, 308):
        make_run(conf / "none" / "lambda_0", str(seed), "none", 0, seed, 950, 0.005, 0.6, experiment="stacked_mnist_cpu")
        make_run(conf / "kde" / "lambda_0.01", str(seed), "kde", 0.01, seed, 1000 - (seed % 4 == 0), 0.006, 0.2,
                 experiment="stacked_mnist_cpu")
    lines, records = lb.regime_table(lb.STACKED, rows=["none", "kde"], files=tmp_path)
    row = next(line for line in lines if line.startswith("| kde |"))
    assert "| 999.8 ± 0.16 |" in row and "**rescues**†" in row and "8 of 8 better" in row
    assert records == [{"estimator": "kde", "verdict": "rescues", "share": 49.75 / 1000}]
    toy = next(line for line in lb.regime_table("ring")[0] if line.startswith("| none |"))
    assert "†" not in "\n".join(lb.regime_table("ring")[0]) and "e+" not in toy
