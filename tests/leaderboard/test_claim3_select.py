"""Claim 3's stage-1 rule (experiments/claims/claim3_select.py, claim3_protocol.md): η by mean modes over all
β and both seeds, ties → higher HQ then smaller η, a failed run counts 0 modes, 0 HQ; the stage-2 spec."""

from __future__ import annotations

import yaml

from conftest import load_script
from test_leaderboard import make_run


def _select():
    return load_script("experiments/claims/claim3_select.py", "claim3_select")


def _stage1(root, outcome, skip=()):
    """All 18 runs; ``outcome(eta, beta, seed)`` → (modes, hq, status)."""
    for eta in (3e-3, 1e-2, 3e-2):
        for beta in (0.0, 0.5, 0.9):
            for seed in (100, 101):
                if (eta, beta, seed) in skip:
                    continue
                modes, hq, status = outcome(eta, beta, seed)
                make_run(root, f"eta{eta:g}_b{beta}_{seed}", "none", 0, seed, modes, hq, 0.1, experiment="ring8",
                         status=status, extra=(f"optim.generator.lr={eta * (1 - beta):.3g}",
                                               f"optim.generator.momentum={beta}"))
    return root


def test_the_rule_averages_over_beta_and_counts_a_failed_run_as_zero(tmp_path, capsys):
    sel = _select()
    # η 3e-2: 8 modes everywhere except β 0.9 failing on both seeds → mean (8·4 + 0·2)/6 = 5.33;
    # η 1e-2: 6 modes everywhere → 6.0 (chosen); η 3e-3: 5.
    def outcome(eta, beta, seed):
        if eta == 3e-2:
            return (8, 0.9, "failed") if beta == 0.9 else (8, 0.9, "completed")
        return (6 if eta == 1e-2 else 5), 0.5, "completed"
    runs = _stage1(tmp_path / "runs", outcome)
    spec = tmp_path / "claim3_confirmation.yaml"
    assert sel.main([str(runs), "--spec", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "η 0.03: mean modes 5.33 of 8, mean HQ 60.0 %" in out and "chosen η = 0.01" in out
    rows = yaml.safe_load(spec.read_text())["rows"]
    assert rows["sgd_beta0.9"] == ["+sweep=claim3_equal_step_sgd", "optim.generator.momentum=0.9", "optim.generator.lr=0.001"]
    assert rows["sgd_beta0.5"][-1] == "optim.generator.lr=0.005" and set(rows) >= {"recipe", "adam_beta1_0.0", "adam_beta1_0.9"}
    assert yaml.safe_load(spec.read_text())["seeds"] == [0, 1, 2, 3, 4, 5]  # amendment 1: seed 5 added
    from mege.study.spec import load_spec
    assert list(load_spec(spec).rows)[:2] == ["recipe", "sgd_beta0.0"]  # a spec `mege study` reads
    assert sel.main([str(runs), "--spec", str(spec)]) == 0  # the same text again: fine
    spec.write_text(spec.read_text().replace("0.001", "0.003"))
    assert sel.main([str(runs), "--spec", str(spec)]) == 2 and "0.003" in spec.read_text()  # never over another


def test_ties_go_to_higher_hq_then_to_the_smaller_step(tmp_path):
    sel = _select()
    hq = {3e-3: 0.4, 1e-2: 0.7, 3e-2: 0.7}
    cells = sel.table(sel.build_report(_stage1(tmp_path, lambda e, b, s: (8, hq[e], "completed"))).runs)
    assert sel.choose(cells)[0] == 1e-2  # 8 = 8 = 8 modes; HQ 0.7 = 0.7 > 0.4; then the smaller η


def test_nothing_is_chosen_while_a_run_is_missing(tmp_path, capsys):
    sel = _select()
    runs = _stage1(tmp_path / "runs", lambda e, b, s: (8, 0.9, "completed"), skip={(3e-2, 0.9, 101)})
    assert sel.main([str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of 18 runs missing: η 0.03 β 0.9 seed 101" in err


def _stage2(root, modes):
    """Stage-2 run folders ``<root>/<row>/<seed>``; ``modes[row]`` → one count per seed 0–5."""
    for row, counts in modes.items():
        for seed, m in enumerate(counts):
            make_run(root / row, str(seed), "none", 0, seed, m, 0.9, 0.01, experiment="ring8")
    return root


def test_stage2_verdicts_by_the_protocol_with_amendment_ones_sixth_seed(tmp_path):
    judge = load_script("experiments/claims/claim3_judge.py", "claim3_judge")
    root = _stage2(tmp_path, {"sgd_beta0.0": [8] * 6, "sgd_beta0.9": [6, 7, 5, 7, 6, 7],   # 6 of 6 fewer
                              "adam_beta1_0.0": [6, 6, 6, 6, 6, 8], "adam_beta1_0.9": [8, 8, 8, 8, 8, 8],  # 5 of 6 more
                              "recipe": [8] * 6})
    text = judge.markdown(judge.load(root))
    sgd = next(line for line in text.splitlines() if line.startswith("| SGD β 0.9 − β 0 |"))
    adam = next(line for line in text.splitlines() if line.startswith("| Adam β1 0.9 − β1 0 |"))
    # one-sided p: 1/64 for SGD (every seed fewer) and 1 for Adam; Holm over two: 2/64 = 0.031 ≤ 0.05
    assert "| 6 / 0 / 0 of 6 | 0.016 | 0.031 | **supported** |" in sgd
    assert "| 0 / 5 / 1 of 6 | 1 | 1 | **contradicted** |" in adam
    assert "| SGD β 0.5 | 0 |" in text  # a row not run is listed, not dropped


def test_stage2_needs_every_seed_and_five_seeds_could_never_pass_holm():
    judge = load_script("experiments/claims/claim3_judge.py", "claim3_judge")
    c = judge.judge({str(s): 6 for s in range(5)}, {str(s): 8 for s in range(5)})
    c["p_adjusted"] = 1.0
    assert c["n"] == 5 and judge.verdict(c) == "not judged (5 of 6 seeds)"
    from mege.leaderboard.confirm import holm, sign_flip_p
    five = sign_flip_p([-1.0] * 5, alternative="less")
    assert holm({"sgd": five, "adam": five})["sgd"] == 2 / 32 > 0.05  # why amendment 1 added seed 5
