"""Claim tables on the converged recipe (experiments/claims/converged_tables.py): paired intervals and verdicts by hand."""

from __future__ import annotations

from conftest import load_script
from test_leaderboard import T975_DF2, make_run


def _tables():
    return load_script("experiments/claims/converged_tables.py", "converged_tables")


def _row(root, label, kls, modes=(8, 8, 8)):
    for seed, (kl, m) in enumerate(zip(kls, modes)):
        make_run(root / label, str(seed), "mi_js", 0.1, seed, m, 0.9, kl, experiment="ring8")


def test_verdicts_follow_the_paired_interval(tmp_path):
    ct = _tables()
    _row(tmp_path, "recipe", [0.1, 0.2, 0.3], modes=(8, 8, 7))
    _row(tmp_path, "wgan_gp", [0.5, 0.5, 0.6], modes=(8, 8, 8))      # recipe − wgan = −0.4, −0.3, −0.3: supported
    _row(tmp_path, "no_penalty", [0.0, 0.1, 0.2], modes=(8, 8, 7))   # recipe − none = +0.1 each: contradicted
    dest = tmp_path / "claims.md"
    assert ct.main([str(tmp_path), "--dest", str(dest)]) == 0
    text = dest.read_text()
    claim1 = text.split("## Claim 2")[0]
    half = T975_DF2 * (0.05773502691896258 / 3 ** 0.5)  # sd of (−0.4, −0.3, −0.3) = 0.0577…, n = 3
    low, high = -1 / 3 - half, -1 / 3 + half
    assert f"[{low:.4g}, {high:.4g}]" in claim1
    lines = {line.split(" | ")[0].strip("| "): line for line in claim1.splitlines() if line.startswith("| real_zero")}
    assert lines["real_zero − WGAN-GP, assigned KL < 0"].endswith("| supported |")
    assert lines["real_zero − none, assigned KL < 0"].endswith("| contradicted |")  # 0.1 ± 0 excludes 0 above
    assert "not decided (interval includes 0)" in lines["real_zero − WGAN-GP, modes > 0"]  # (0, 0, −1)
    assert "**contradicted**" in claim1
    # claim 3's rows were not run: listed as such, no verdict claimed
    claim3 = text.split("## Claim 3")[1]
    assert "| SGD β 0, lr 1e-2 | 0 | not run |" in claim3 and "not decided (n < 2)" in claim3


def test_verdict_rule_by_hand():
    ct = _tables()
    assert ct.verdict_of(+1, 0.1, 0.5, 3) == "supported"
    assert ct.verdict_of(-1, 0.1, 0.5, 3) == "contradicted"
    assert ct.verdict_of(-1, -0.1, 0.5, 3) == "not decided (interval includes 0)"
    assert ct.verdict_of(-1, float("nan"), float("nan"), 1) == "not decided (n < 2)"
