"""Rebuild commands never write into committed result folders by default (issue 21)."""

import subprocess

import pytest

from mege.cli import main
from mege.committed import holds_committed_files


def _git_repo_with_committed_run(tmp_path):
    repo = tmp_path / "repo"
    run = repo / "results" / "sweep" / "0"
    run.mkdir(parents=True)
    (run / "summary.json").write_text('{"status": "completed", "step": 1, "metrics": {"modes": 3}, "ema_metrics": null}')
    (run / "config.yaml").write_text("seed: 0\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "runs"], cwd=repo, check=True)
    return repo / "results" / "sweep"


def test_report_refuses_a_committed_folder_by_default_and_writes_where_told(tmp_path, capsys):
    sweep = _git_repo_with_committed_run(tmp_path)
    before = sorted(p.name for p in sweep.rglob("*"))
    assert holds_committed_files(sweep) and holds_committed_files(sweep / "0" / "summary.json")
    assert main(["report", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert "holds committed results; pass --out DIR" in err and err.count("\n") == 1
    assert sorted(p.name for p in sweep.rglob("*")) == before  # nothing written there
    assert main(["report", str(sweep), "--dest", str(tmp_path / "rebuilt")]) == 0
    assert (tmp_path / "rebuilt" / "report.md").is_file()
    assert sorted(p.name for p in sweep.rglob("*")) == before


def test_an_uncommitted_folder_is_not_guarded(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    assert not holds_committed_files(tmp_path / "a") and not holds_committed_files(tmp_path / "missing")


def test_committed_tree_rebuild_commands_default_outside_it():
    """The claim tables' default destination is not the committed converged.md (it has hand-written sections)."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "experiments" / "claims" / "converged_tables.py").read_text()
    assert 'default=Path("outputs/claims_converged/converged.md")' in text
    assert not holds_committed_files(Path(__file__).resolve().parents[1] / "outputs" / "claims_converged" / "converged.md")


def test_an_untracked_file_inside_a_checkout_is_not_committed(tmp_path):
    """Inside a git checkout only tracked paths count: a new file or folder beside committed ones is not guarded."""
    sweep = _git_repo_with_committed_run(tmp_path)
    (sweep / "new").mkdir()
    (sweep / "new" / "report.md").write_text("rebuilt")
    (sweep / "0" / "eval.json").write_text("{}")
    assert not holds_committed_files(sweep / "new") and not holds_committed_files(sweep / "new" / "report.md")
    assert not holds_committed_files(sweep / "0" / "eval.json") and not holds_committed_files(sweep / "absent.md")
    assert holds_committed_files(sweep / "0") and holds_committed_files(sweep / "0" / "config.yaml")
