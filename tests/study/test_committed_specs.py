"""Every committed study is a spec, and each one's committed tables rebuild from its committed run files.

* every ``experiments/**/*.yaml`` study spec loads and expands into jobs;
* the ablation specs re-express the committed study exactly: each committed run's recorded
  overrides are its job's (the launcher aside), and ``mege report`` with the spec's report arguments
  rebuilds the frontier and leaderboard sections of ``leaderboard_<experiment>.md`` unchanged;
* the claims' converged tables (and verdicts) rebuild from their run files unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mege.cli.report import main as report_main
from mege.study import expand, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
SPECS = sorted(p for p in EXPERIMENTS.rglob("*.yaml") if "run_files" not in p.parts and "\nrows:" in p.read_text())
STAGE_FOLDER = {"selection": "frontier", "confirmation": "leaderboard"}  # frontier.py's folder names for the stages


def test_every_committed_study_has_a_spec_that_expands():
    names = {str(p.relative_to(EXPERIMENTS)) for p in SPECS}
    assert {"ablation/ring8_collapse.yaml", "ablation/grid25_collapse.yaml", "claims/converged.yaml"} <= names
    for path in SPECS:
        spec = load_spec(path)
        jobs = [j for stage in spec.stages if stage != "confirmation" for j in expand(spec, Path("/o"), stage, list(spec.rows))]
        assert jobs, path


def _body(path: Path) -> str:
    """A report as assemble.py stitched it into leaderboard_<experiment>.md (headings demoted)."""
    lines = path.read_text().splitlines()
    return "\n".join("#" + line if line.startswith("#") else line for line in lines[1:]) + "\n"


@pytest.mark.parametrize("experiment", ["ring8_collapse", "grid25_collapse"])
def test_ablation_spec_reexpresses_the_committed_study_and_its_tables_rebuild(experiment, tmp_path):
    spec = load_spec(EXPERIMENTS / "ablation" / f"{experiment}.yaml")
    runs = EXPERIMENTS / "ablation" / "run_files" / experiment
    committed = (EXPERIMENTS / "ablation" / f"leaderboard_{experiment}.md").read_text()
    chosen = {}
    for stage, folder in STAGE_FOLDER.items():
        for recorded in sorted((runs / folder).glob("*/*/.hydra/overrides.yaml")):
            items = [o for o in yaml.safe_load(recorded.read_text()) if not o.startswith("+launcher=")]
            row, lam, seed = (dict(o.split("=", 1) for o in items)[k] for k in ("entropy", "lambda_h", "seed"))
            chosen[row] = float(lam)
            jobs = expand(spec, tmp_path, stage, [row], chosen=chosen)
            job = next(j for j in jobs if j.lambda_h == float(lam) and j.seed == int(seed))
            assert sorted(job.overrides) == sorted(items), recorded
    for item in spec.reports:
        out = tmp_path / item.name
        assert report_main([str(runs / STAGE_FOLDER[item.runs]), *item.args, "--out", str(out)]) == 0
        table = _body(out / f"{item.name}.md").replace("![frontier](frontier.png)\n", "")
        assert table in committed, f"{item.name} of {experiment} does not rebuild"


def _parsed(overrides) -> list:
    """Overrides as sorted (key, value) pairs, the values read as yaml (``False`` = ``false``)."""
    return sorted((key, repr(yaml.safe_load(value))) for key, _, value in (o.partition("=") for o in overrides))


def test_claims_converged_tables_rebuild_from_their_run_files(tmp_path):
    spec = load_spec(EXPERIMENTS / "claims" / "converged.yaml")
    runs = EXPERIMENTS / "claims" / "run_files" / "ring8"
    assert set(spec.rows) == {p.name for p in runs.iterdir() if p.is_dir()}
    lr = {}
    for recorded in sorted(runs.glob("*/*/.hydra/overrides.yaml")):
        row, seed = recorded.parts[-4], int(recorded.parts[-3])
        job = next(j for j in expand(spec, tmp_path, "runs", [row]) if j.seed == seed)
        lr[row] = [o for o in job.overrides if o.startswith("optim.generator.lr=")]
        same = [o for o in yaml.safe_load(recorded.read_text())
                if not o.startswith(("optim.generator.lr=", "+launcher="))  # the recipe row ran as a multirun
                and not (row == "wgan_gp" and o == "penalty.weight=10")]  # WGAN-GP's own λ since issue 22 (test_presets)
        assert _parsed(o for o in job.overrides if o not in lr[row]) == _parsed(same), recorded
    # claim 3 at equal effective step η = 1e-2: lr = η·(1 − β) (the committed SGD runs used η/(1 − β), withdrawn)
    assert [lr[f"sgd_beta{b}"] for b in ("0.0", "0.5", "0.9")] == [["optim.generator.lr=0.01"],
                                                                   ["optim.generator.lr=0.005"],
                                                                   ["optim.generator.lr=0.001"]]
    out = tmp_path / "converged.md"
    subprocess.run([sys.executable, str(EXPERIMENTS / "claims" / "converged_tables.py"), str(runs), "--dest", str(out)],
                   check=True, capture_output=True)
    def tables(text: str) -> list[str]:  # converged.md's prose is partly hand-written since the claim-3 withdrawal
        return [line for line in text.splitlines() if line.startswith(("|", "## ", "**Verdict"))]

    rebuilt = tables(out.read_text())
    assert len(rebuilt) > 40 and rebuilt == tables((EXPERIMENTS / "claims" / "converged.md").read_text())
