"""tools/mutate/mutate.py --check: every mutation of the table still applies to the source as it is
(its string found exactly once, the replacement a change that compiles) and names test files that
exist, so a refactor that moves a mutated line or a test file fails here rather than in
`make mutate`. Runs no mutated tests (about a second)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "mutate" / "mutate.py"


def load_mutate():
    return load_script("tools/mutate/mutate.py", "mege_tools_mutate")


def test_every_mutation_applies_to_the_working_tree():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--check", "--worktree"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    n = len(load_mutate().MUTATIONS)
    assert f"{n} of {n} mutations apply" in out, out
    assert len(re.findall(r"^ok +\S+ ", out, flags=re.M)) == n, out


def test_check_reports_a_mutation_that_no_longer_applies(tmp_path, capsys):
    mutate = load_mutate()
    (tmp_path / "mod.py").write_text("x = 1\ny = 1\n")
    (tmp_path / "test_mod.py").write_text("")
    M = mutate.Mutation
    good = M("good", "a", "mod.py", "x = 1", "x = 2", ("test_mod.py",), "x off by one")
    cases = [
        M("missing_string", "a", "mod.py", "z = 1", "z = 2", ("test_mod.py",), "-"),
        M("twice", "a", "mod.py", " = 1", " = 2", ("test_mod.py",), "-"),
        M("no_change", "a", "mod.py", "x = 1", "x = 1", ("test_mod.py",), "-"),
        M("syntax_error", "a", "mod.py", "x = 1", "x = (", ("test_mod.py",), "-"),
        M("missing_file", "a", "gone.py", "x = 1", "x = 2", ("test_mod.py",), "-"),
        M("missing_test", "a", "mod.py", "x = 1", "x = 2", ("tests/gone.py",), "-"),
    ]
    assert mutate.check_all(tmp_path, [good]) == 0
    assert mutate.check_all(tmp_path, [good, *cases]) == len(cases)
    out = capsys.readouterr().out
    assert f"1 of {len(cases) + 1} mutations apply" in out
    assert all(re.search(rf"^FAIL {m.name} ", out, flags=re.M) for m in cases), out
    assert mutate.check_all(tmp_path, [good, good]) == 1  # duplicate names


def test_the_table_covers_the_modules_of_issue_21():
    """At least 40 mutations, some in each module written since the first list (issue 21)."""
    mutations = load_mutate().MUTATIONS
    assert len(mutations) >= 40
    files = {m.file for m in mutations}
    for module in ("mege/training/settings.py", "mege/run_dir.py", "mege/entropy/term.py", "mege/leaderboard/points.py",
                   "mege/ema.py", "mege/metrics/goodness_of_fit.py", "mege/reproducibility.py", "mege/committed.py"):
        assert module in files, module
