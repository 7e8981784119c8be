"""``mege study`` for real: 2-step runs of ``mege train`` (a few seconds each).

* a tiny study runs, writes its wall times and its table, keeps its run on a rerun, and a changed
  config is refused by the run-folder check (its one-line error recorded, the study goes on);
* a user's estimator — a module and a yaml in a temporary folder, added with ``hydra.searchpath`` —
  runs through the study (λ_H grid from its own facts) and the leaderboard (its family from its own
  facts) with no edit to mege.
"""

from __future__ import annotations

import json
import textwrap

from mege.cli import main as cli_main

TINY = ["data=ring8", "train.steps=2", "train.eval_every=2", "train.ckpt_every=2", "train.plot=false",
        "metric.n_samples=200", "train.batch_size=32", "energy.hidden=16", "generator.hidden=16"]


def _spec(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _times(out):
    return [line.split("\t") for line in (out / "times.tsv").read_text().splitlines()[1:]]


def test_tiny_study_runs_resumes_and_refuses_a_changed_config(tmp_path, capsys):
    out = tmp_path / "out"
    spec = _spec(tmp_path, f"""
        name: tiny
        out: {out}
        base: [{", ".join(TINY)}]
        rows:
          none: [entropy=none]
        seeds: [0]
    """)
    assert cli_main(["study", str(spec)]) == 0
    run = out / "runs" / "none" / "0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == 2
    (row,) = _times(out)
    assert row[:5] == ["runs", "none", "", "0", "completed"] and float(row[5]) > 0
    assert (out / "report" / "runs" / "report.csv").read_text().count("\n") == 2  # header + one group
    # a kept run's hydra record stays as it was made (e.g. by another launcher, overrides in another order)
    record = {name: (run / ".hydra" / name) for name in ("config.yaml", "overrides.yaml")}
    record["overrides.yaml"].write_text("- seed=0\n" + record["overrides.yaml"].read_text().replace("- seed=0\n", ""))
    record["config.yaml"].write_text(record["config.yaml"].read_text() + "# as first written\n")
    before = {name: path.read_bytes() for name, path in record.items()}
    assert cli_main(["study", str(spec)]) == 0  # rerun: kept, nothing launched
    assert len(_times(out)) == 1
    assert {name: path.read_bytes() for name, path in record.items()} == before
    capsys.readouterr()
    # the same folder under another config: refused by the run-folder check, recorded, listed
    assert cli_main(["study", str(spec), "train.batch_size=16"]) == 1
    last = _times(out)[-1]
    assert last[4] == "failed" and "holds a checkpoint written under a different config" in last[7]
    assert "train.batch_size: 32 → 16" in last[7]
    assert "failed runs" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["step"] == 2  # the finished run is untouched


USER_MODULE = '''
"""A user's estimator, outside mege: the score of a unit Gaussian, -x."""
from mege.entropy.base import ScoreEstimator


class UnitGaussianScore(ScoreEstimator):
    def score(self, x):
        return -x
'''

USER_YAML = """
# A user's estimator: the score of a unit Gaussian.
_target_: my_entropy.UnitGaussianScore
facts:
  family: my family
  lambda_h: [0.05]
"""


def test_a_users_estimator_runs_through_a_study_and_the_leaderboard_with_no_edit_to_mege(tmp_path, monkeypatch):
    code, configs = tmp_path / "code", tmp_path / "configs"
    (configs / "entropy").mkdir(parents=True)
    code.mkdir()
    (code / "my_entropy.py").write_text(USER_MODULE)
    (configs / "entropy" / "unit_gauss.yaml").write_text(USER_YAML)
    monkeypatch.setenv("PYTHONPATH", str(code))  # the runs' processes import the user's module
    out = tmp_path / "out"
    spec = _spec(tmp_path, f"""
        name: mine
        out: {out}
        base: ["hydra.searchpath=[file://{configs}]", "allowed_targets=[my_entropy.]", {", ".join(TINY)}]
        lambda_h: facts
        rows:
          none: [entropy=none]
          unit_gauss: [entropy=unit_gauss]
        seeds: [0]
        report:
          board: {{runs: runs, args: [--leaderboard]}}
    """)
    assert cli_main(["study", str(spec)]) == 0
    run = out / "runs" / "unit_gauss" / "lambda_0.05" / "0"  # the grid of the user's own facts
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    board = (out / "report" / "board" / "leaderboard.md").read_text()
    row = next(line for line in board.splitlines() if line.startswith("| unit_gauss |"))
    assert row.split(" | ")[1:3] == ["my family", "0.05"]
