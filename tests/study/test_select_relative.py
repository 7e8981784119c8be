"""``selection.rule.min_hq_from``: each row's HQ threshold is a reference row's mean selection HQ minus some
points, instead of the fixed ``min_hq`` (mege/study/select.py), on hand-made run folders."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
import yaml

from mege.errors import MegeError
from mege.study import expand, load_spec, select
from mege.study.run import rule_threshold, write_reports
from mege.study.select import choose_row
from mege.study.spec import Report

SPEC = """
    name: rel
    out: out
    base: [experiment=ring8_collapse]
    rows:
      none: {{overrides: [entropy=none], lambda_h: [0]}}
      knn: {{overrides: [entropy=knn], lambda_h: [0.1, 1]}}
    selection: {{seeds: [0, 1], rule: {rule}}}
    confirmation: {{seeds: [5, 6]}}
"""
NONE_HQ = (0.95, 0.93)  # mean 0.94: 5 points below is 0.89
KNN = {0.1: ((0.92, 0.90), (0.30, 0.30)),  # mean HQ 0.91 ≥ 0.89: qualifies, KL 0.3
       1.0: ((0.85, 0.83), (0.10, 0.10))}  # mean HQ 0.84: passes min_hq 0.8 with the lower KL, fails 0.89


def spec_with(tmp_path, rule: str):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC.format(rule=rule)))
    return load_spec(path)


def write_run(root, estimator, lam, seed, hq, kl, status="completed"):
    folder = root / estimator / f"lambda_{lam:g}" / str(seed)
    (folder / ".hydra").mkdir(parents=True)
    overrides = ["experiment=ring8_collapse", f"entropy={estimator}", f"lambda_h={lam:g}", f"seed={seed}"]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "lambda_h": lam}))
    block = {"modes": 8, "hq_fraction": hq, "assigned_kl": kl}
    (folder / "summary.json").write_text(json.dumps({"status": status, "metrics": block,
                                                     "ema_metrics": {**block, "hq_fraction": hq - 0.1}}))


def write_selection(tmp_path, none_status="completed"):
    root = tmp_path / "selection"
    for seed, hq in enumerate(NONE_HQ):
        write_run(root, "none", 0, seed, hq, 0.5, none_status if seed == 1 else "completed")
    for lam, (hqs, kls) in KNN.items():
        for seed, (hq, kl) in enumerate(zip(hqs, kls)):
            write_run(root, "knn", lam, seed, hq, kl)


def test_relative_threshold_picks_a_different_lambda_than_min_hq_and_is_recorded(tmp_path):
    write_selection(tmp_path)
    fixed = spec_with(tmp_path, "{min_hq: 0.8}")
    assert choose_row(fixed, tmp_path, "knn", expand(fixed, tmp_path, "selection", ["knn"]))["lambda_h"] == 1.0

    spec = spec_with(tmp_path, "{min_hq_from: {row: none, points: 0.05}}")
    assert "min_hq" not in spec.rule and spec.rule["min_hq_from"] == {"row": "none", "points": 0.05}
    chosen = select(spec, tmp_path, ["none", "knn"])
    assert chosen["knn"]["lambda_h"] == 0.1 and chosen["none"]["lambda_h"] == 0.0
    assert "1 of 2 values" in chosen["knn"]["reason"] and "none's mean HQ 94.0 % − 5 points" in chosen["knn"]["reason"]
    written = json.loads((tmp_path / "selection.json").read_text())
    assert written["rule"] == {"metric": "assigned_kl", "samples": "raw", "min_hq_from": {"row": "none", "points": 0.05}}
    for row in ("none", "knn"):
        assert math.isclose(written["rows"][row]["hq_threshold"], 0.94 - 0.05, abs_tol=1e-12)

    # the EMA generator's HQ is 0.1 lower everywhere: the threshold follows (0.79), so 1.0 (0.74) still fails
    spec.rule["samples"] = "ema"
    entry = choose_row(spec, tmp_path, "knn", expand(spec, tmp_path, "selection", ["knn"]))
    assert math.isclose(entry["hq_threshold"], 0.84 - 0.05) and entry["lambda_h"] == 0.1
    spec.rule.update(samples="raw", min_hq_from={"row": "none", "points": 0.15})  # threshold 0.79: both qualify
    assert choose_row(spec, tmp_path, "knn", expand(spec, tmp_path, "selection", ["knn"]))["lambda_h"] == 1.0


def test_an_incomplete_reference_row_leaves_the_others_waiting(tmp_path):
    write_selection(tmp_path, none_status="interrupted")
    spec = spec_with(tmp_path, "{min_hq_from: {row: none, points: 0.05}}")
    chosen = select(spec, tmp_path, ["none", "knn"])
    assert chosen["none"]["lambda_h"] is None and chosen["none"]["reason"].startswith("selection not complete (1 of 2")
    knn = chosen["knn"]
    assert knn["lambda_h"] is None and "hq_threshold" not in knn
    assert knn["reason"] == "reference row none's selection not complete (1 of 2 runs completed); run the selection stage"
    assert knn["completed"] < knn["runs"]  # counted as waiting, not as a row the rule left out


def test_the_study_draws_its_frontier_at_the_rules_own_threshold(tmp_path):
    """The study's frontier report gets ``--min-hq`` from the rule: at 0.89 (none's 94 % − 5 points) knn's
    operating point is λ 0.1, the study's choice; at the report's default 0.80 it would be 1.0."""
    write_selection(tmp_path)
    spec = spec_with(tmp_path, "{min_hq_from: {row: none, points: 0.05}}")
    spec.reports = (Report("frontier", "selection", ("--frontier", "lambda_h")),)
    select(spec, tmp_path, ["none", "knn"])
    assert math.isclose(rule_threshold(spec, tmp_path), 0.89, abs_tol=1e-12)
    assert write_reports(spec, tmp_path) == []
    text = (tmp_path / "report" / "frontier" / "frontier.md").read_text()
    assert "mean raw HQ ≥ 89%" in text and "- `knn`: lambda_h = 0.1" in text

    fixed = spec_with(tmp_path, "{min_hq: 0.8}")
    assert rule_threshold(fixed, tmp_path) == 0.8


def test_a_frontier_waits_for_the_reference_rows_threshold(tmp_path):
    write_selection(tmp_path, none_status="interrupted")
    spec = spec_with(tmp_path, "{min_hq_from: {row: none, points: 0.05}}")
    spec.reports = (Report("frontier", "selection", ("--frontier", "lambda_h")),)
    select(spec, tmp_path, ["none", "knn"])
    assert rule_threshold(spec, tmp_path) is None
    assert write_reports(spec, tmp_path) == ["report frontier: not drawn yet; the rule's HQ threshold waits for row "
                                             "none's selection runs (rerun the same command once they are completed)"]
    assert not (tmp_path / "report" / "frontier").exists()


@pytest.mark.parametrize("rule, message", [
    ("{min_hq_from: {row: nobody, points: 0.05}}", "names row 'nobody', which is not in rows (none, knn)"),
    ("{min_hq: 0.8, min_hq_from: {row: none, points: 0.05}}", "gives both min_hq and min_hq_from"),
    ("{min_hq_from: {row: none}}", "min_hq_from takes {row: <row name>, points: <fraction>}"),
    ("{min_hq_from: {row: none, points: 5}}", "points must be a fraction in [0, 1]"),
    ("{min_hq_from: {row: knn, points: 0.05}}", "row knn has 2 λ_H values"),
    ("{min_hqq: 0.8}", "or min_hq_from: {row: none, points: 0.05}"),
])
def test_relative_rule_problems_are_refused_in_one_line(tmp_path, rule, message):
    with pytest.raises(MegeError) as err:
        spec_with(tmp_path, rule)
    assert message in str(err.value) and "\n" not in str(err.value)
