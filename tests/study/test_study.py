"""``mege study``: spec checks, job expansion, resume, failures, the selection rule, SLURM dry run.

A fake train command (a tiny script) records each job's overrides and writes what ``mege train``
would (``.hydra/overrides.yaml``, ``summary.json``), so every behaviour of the runner is checked
without training; ``test_end_to_end.py`` runs the real thing.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml

from mege.cli import main as cli_main
from mege.errors import MegeError
from mege.study import expand, launch, load_spec, row_grid, run_study
from mege.study.plan import noisy_generator
from mege.study.select import choose_row

FAKE = textwrap.dedent('''
    import json, pathlib, sys, yaml
    args = sys.argv[1:]
    folder = pathlib.Path(next(a for a in args if a.startswith("hydra.run.dir=")).split("=", 1)[1])
    overrides = [a for a in args if not a.startswith("hydra.")]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "calls.txt").open("a").write(" ".join(overrides) + "\\n")
    if "+fail=yes" in overrides:
        print("mege: error: boom cannot train; pick another estimator.", file=sys.stderr)
        sys.exit(2)
    (folder / ".hydra").mkdir(exist_ok=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "config.yaml").write_text("fake: true")
    (folder / "summary.json").write_text(json.dumps({"status": "completed", "metrics": {}}))
''')


@pytest.fixture
def fake_train(tmp_path, monkeypatch):
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE)
    monkeypatch.setattr(launch, "TRAIN", [sys.executable, str(script)])
    return script


def write_spec(tmp_path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


ONE_STAGE = """
    name: demo
    out: {out}
    base: [experiment=ring8, train.steps=2]
    rows:
      recipe: []
      boom: [entropy=none, +fail=yes]
      knn_grid: {{overrides: [entropy=knn], lambda_h: facts}}
    seeds: [0, 1]
"""


def calls(folder):
    return (folder / "calls.txt").read_text().splitlines()


def test_the_noisy_generator_is_the_counterpart_of_the_one_the_run_would_use(tmp_path):
    (tmp_path / "generator").mkdir()
    (tmp_path / "experiment").mkdir()
    (tmp_path / "generator" / "gen_a.yaml").write_text("_target_: mege.generators.MLPGenerator\n")
    (tmp_path / "generator" / "noisy_gen_a.yaml").write_text("defaults: [noisy_mlp, gen_a@base, _self_]\n")
    (tmp_path / "experiment" / "exp_a.yaml").write_text("# @package _global_\ndefaults:\n  - override /generator: gen_a\n")
    search = f"hydra.searchpath=[file://{tmp_path}]"
    assert noisy_generator((search, "experiment=exp_a")) == "noisy_gen_a"  # the preset's generator, made noisy
    assert noisy_generator((search,)) == "noisy_mlp"  # the default mlp has no noisy_mlp_mlp: noisy_mlp
    assert noisy_generator(("generator=noisy_mlp",)) == "noisy_mlp"


def test_rows_seeds_and_grids_expand_as_specified(tmp_path):
    spec = load_spec(write_spec(tmp_path, """
        name: e
        out: out
        base: [experiment=ring8_collapse]
        lambda_h: facts
        rows:
          none: [entropy=none]
          knn: [entropy=knn]
          post: [entropy=posterior_is]
          post_own: [entropy=posterior_is, generator=mlp]
          fixed: {overrides: [entropy=mi_js], lambda_h: [0.5, 2]}
        selection: {seeds: [0, 1]}
        confirmation: {seeds: [7]}
    """))
    assert row_grid(spec, spec.rows["none"]) == (0.0,)
    assert row_grid(spec, spec.rows["knn"]) == (0.003, 0.01, 0.03, 0.1, 0.3)  # configs/entropy/knn.yaml's facts
    jobs = expand(spec, tmp_path, "selection", list(spec.rows))
    assert len(jobs) == 2 * (1 + 5 + 5 + 5 + 2)
    knn = [j for j in jobs if j.row == "knn"]
    assert [(j.lambda_h, j.seed) for j in knn[:3]] == [(0.003, 0), (0.003, 1), (0.01, 0)]  # row, then λ, then seed
    assert knn[0].overrides == ("experiment=ring8_collapse", "entropy=knn", "lambda_h=0.003", "seed=0")
    assert knn[0].path == tmp_path / "selection" / "knn" / "lambda_0.003" / "0"
    # the posterior estimator's facts add the noisy generator; a row that chose a generator keeps its own
    assert [o for o in next(j for j in jobs if j.row == "post").overrides if o.startswith("generator=noisy_")]
    assert not [o for o in next(j for j in jobs if j.row == "post_own").overrides if "noisy" in o]
    confirm = expand(spec, tmp_path, "confirmation", ["knn", "fixed"], chosen={"knn": 0.01, "fixed": None})
    assert [(j.row, j.lambda_h, j.seed) for j in confirm] == [("knn", 0.01, 7)]


@pytest.mark.parametrize("text, message", [
    ("selection: {seeds: [0, 1, 2]}\nconfirmation: {seeds: [2, 3]}", "selection and confirmation seeds overlap (2)"),
    ("selection: {seeds: [0]}", "needs both selection: and confirmation:"),
    ("seeds: [0, 0]", "repeats a seed"),
    ("seeds: [0]\nbogus: 1", "unknown key(s) bogus"),
])
def test_spec_problems_are_refused_in_one_line(tmp_path, text, message):
    path = write_spec(tmp_path, "name: x\nout: o\nlambda_h: facts\nrows: {none: [entropy=none]}\n" + text + "\n")
    with pytest.raises(MegeError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_spec(path)
    assert "\n" not in str(err.value)


def test_finished_kept_interrupted_continued_failure_recorded_and_the_study_goes_on(tmp_path, fake_train, capsys):
    out = tmp_path / "out"
    spec_path = write_spec(tmp_path, ONE_STAGE.format(out=out))
    # seed 0 of `recipe` finished earlier under the same overrides; seed 1 was interrupted
    done, cut = out / "runs" / "recipe" / "0", out / "runs" / "recipe" / "1"
    for folder, status in ((done, "completed"), (cut, "interrupted")):
        (folder / ".hydra").mkdir(parents=True)
        seed = folder.name
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["experiment=ring8", "train.steps=2", f"seed={seed}"]))
        (folder / "summary.json").write_text(json.dumps({"status": status}))
    code = run_study(load_spec(spec_path), n_jobs=2)
    assert code == 1  # boom failed
    assert calls(done) == ["experiment=ring8 train.steps=2 seed=0"]  # checked by `mege train` (ends at once), kept
    assert calls(cut) == ["experiment=ring8 train.steps=2 seed=1"]  # continued by `mege train` (its checkpoint)
    assert calls(out / "runs" / "boom" / "0") == ["experiment=ring8 train.steps=2 entropy=none +fail=yes seed=0"]
    grid = sorted(p.parent.name for p in (out / "runs" / "knn_grid").glob("*/0"))
    assert grid == ["lambda_0.003", "lambda_0.01", "lambda_0.03", "lambda_0.1", "lambda_0.3"]
    times = [line.split("\t") for line in (out / "times.tsv").read_text().splitlines()]
    assert times[0][:6] == ["stage", "row", "lambda_h", "seed", "status", "wall_s"]
    failed = [t for t in times if t[4] == "failed"]
    assert {(t[1], t[3]) for t in failed} == {("boom", "0"), ("boom", "1")}
    assert failed[0][7] == "mege: error: boom cannot train; pick another estimator."
    assert len(times) == 1 + 1 + 2 + 10  # header, recipe seed 1, boom × 2, knn 5 λ × 2 seeds (recipe seed 0 kept)
    text = capsys.readouterr().out
    assert "failed runs" in text and "boom seed 1" in text and "boom cannot train" in text
    # a rerun keeps every completed run (not timed again) and retries the failures
    assert run_study(load_spec(spec_path), n_jobs=2) == 1
    assert len(calls(cut)) == 2 and len(calls(out / "runs" / "boom" / "0")) == 2
    again = [line.split("\t") for line in (out / "times.tsv").read_text().splitlines()[len(times):]]
    assert sorted((t[1], t[4]) for t in again) == [("boom", "failed"), ("boom", "failed")]


def test_rows_option_and_unknown_row(tmp_path, fake_train):
    out = tmp_path / "out"
    spec_path = write_spec(tmp_path, ONE_STAGE.format(out=out))
    assert cli_main(["study", str(spec_path), "--rows", "recipe", "--jobs", "1"]) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["recipe"]
    assert cli_main(["study", str(spec_path), "--rows", "recipe,nope"]) == 2


def _selection_run(root, lam, seed, hq, kl):
    folder = root / f"lambda_{lam:g}" / str(seed)
    (folder / ".hydra").mkdir(parents=True)
    overrides = ["experiment=ring8_collapse", "entropy=knn", f"lambda_h={lam:g}", f"seed={seed}"]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "lambda_h": lam,
                                                        "entropy": {"_target_": "mege.entropy.knn.KLEntropy"}}))
    block = {"modes": 8, "hq_fraction": hq, "assigned_kl": kl}
    (folder / "summary.json").write_text(json.dumps({"status": "completed", "metrics": block,
                                                     "ema_metrics": {**block, "assigned_kl": kl / 10}}))


def test_selection_rule_picks_the_expected_lambda_on_hand_made_summaries(tmp_path):
    spec = load_spec(write_spec(tmp_path, """
        name: sel
        out: out
        base: [experiment=ring8_collapse]
        rows:
          knn: {overrides: [entropy=knn], lambda_h: [0.01, 0.1, 0.3, 1]}
        selection: {seeds: [0, 1], rule: {min_hq: 0.8}}
        confirmation: {seeds: [5, 6]}
    """))
    table = {0.01: ((0.95, 0.95), (0.30, 0.20)),   # qualifies, KL 0.25
             0.1: ((0.90, 0.70), (0.10, 0.20)),    # mean HQ exactly 0.80: qualifies, KL 0.15
             0.3: ((0.85, 0.85), (0.20, 0.10)),    # KL 0.15 too: the tie goes to 0.1
             1.0: ((0.50, 0.60), (0.01, 0.02))}    # lowest KL but HQ 0.55: out
    root = tmp_path / "selection" / "knn"
    jobs = expand(spec, tmp_path, "selection", ["knn"])
    assert choose_row(spec, tmp_path, "knn", jobs)["reason"].startswith("selection not complete (0 of 8")
    for lam, (hqs, kls) in table.items():
        for seed, (hq, kl) in enumerate(zip(hqs, kls)):
            _selection_run(root, lam, seed, hq, kl)
    entry = choose_row(spec, tmp_path, "knn", jobs)
    assert entry["lambda_h"] == 0.1 and "3 of 4 values" in entry["reason"]
    spec.rule["min_hq"] = 0.9  # only 0.01 qualifies
    assert choose_row(spec, tmp_path, "knn", jobs)["lambda_h"] == 0.01
    spec.rule["min_hq"] = 0.99
    entry = choose_row(spec, tmp_path, "knn", jobs)
    assert entry["lambda_h"] is None and "highest 95.0 %" in entry["reason"]
    spec.rule.update(min_hq=0.5, samples="ema")  # EMA KLs are a tenth: 1.0 (0.0015) wins on the EMA generator
    assert choose_row(spec, tmp_path, "knn", jobs)["lambda_h"] == 1.0


TWO_STAGE = """
    name: two
    out: {out}
    base: [experiment=ring8]
    lambda_h: facts
    rows:
      none: [entropy=none]
      knn: {{overrides: [entropy=knn], lambda_h: [0.5]}}
    selection: {{seeds: [0, 1], rule: {{min_hq: 0.0}}}}
    confirmation: {{seeds: [10]}}
"""


def test_two_stage_study_confirms_each_row_at_its_chosen_lambda_on_disjoint_seeds(tmp_path, fake_train):
    out = tmp_path / "out"
    spec = load_spec(write_spec(tmp_path, TWO_STAGE.format(out=out)))
    assert run_study(spec, n_jobs=2) == 0
    chosen = json.loads((out / "selection.json").read_text())
    assert {k: v["lambda_h"] for k, v in chosen["rows"].items()} == {"none": 0.0, "knn": 0.5}
    assert chosen["seeds"] == [0, 1] and chosen["rule"]["min_hq"] == 0.0
    assert calls(out / "confirmation" / "knn" / "lambda_0.5" / "10") == ["experiment=ring8 entropy=knn lambda_h=0.5 seed=10"]
    assert sorted(p.name for p in (out / "confirmation" / "none" / "lambda_0").iterdir()) == ["10"]
    assert sorted(p.name for p in (out / "selection" / "none" / "lambda_0").iterdir()) == ["0", "1"]


def test_a_row_the_rule_leaves_out_is_listed_and_an_incomplete_selection_makes_confirmation_wait(tmp_path, fake_train,
                                                                                                  capsys):
    out = tmp_path / "out"
    spec_path = write_spec(tmp_path, f"""
        name: wait
        out: {out}
        rows:
          blank: {{overrides: [entropy=knn], lambda_h: [0.1, 0.2]}}   # the fake's runs have no metrics: no λ_H qualifies
          broken: {{overrides: [entropy=knn, +fail=yes], lambda_h: [0.1, 0.2]}}
        selection: {{seeds: [0]}}
        confirmation: {{seeds: [1]}}
    """)
    assert run_study(load_spec(spec_path), rows=["blank"]) == 0  # no λ_H is an answer, not an error
    assert "blank: no confirmation runs (no value reaches mean HQ ≥ 80%" in capsys.readouterr().out
    assert not (out / "confirmation").exists()
    assert run_study(load_spec(spec_path), rows=["broken"]) == 1
    assert "broken: no confirmation runs (selection not complete (0 of 2 runs completed)" in capsys.readouterr().out
    assert run_study(load_spec(spec_path), stage="confirmation", dry_run=True) == 0
    assert "broken: no confirmation runs (selection not complete" in capsys.readouterr().out


def test_slurm_dry_run_prints_one_array_per_row_and_lambda(tmp_path, fake_train, capsys):
    spec = load_spec(write_spec(tmp_path, ONE_STAGE.format(out=tmp_path / "out")))
    assert run_study(spec, rows=["recipe", "knn_grid"], launcher="slurm", dry_run=True,
                     extra=("hydra.launcher.partition=cpu",)) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " -m " in line]
    assert len(lines) == 1 + 5
    assert lines[0].endswith(f"experiment=ring8 train.steps=2 hydra.launcher.partition=cpu seed=0,1 +launcher=slurm "
                             f"hydra.sweep.dir={tmp_path / 'out' / 'runs' / 'recipe'} 'hydra.sweep.subdir=${{seed}}'")
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_export_copies_completed_runs_small_files_and_merges_selection_and_times(tmp_path, fake_train, capsys):
    """`mege study SPEC --out OUT --export DEST`: completed runs' small files only, selection rows merged into
    DEST's, times.tsv lines appended once; DEST given back as --out keeps every exported run (trains none)."""
    out, dest = tmp_path / "out", tmp_path / "files"
    path = write_spec(tmp_path, TWO_STAGE.format(out=out))
    assert run_study(load_spec(path), n_jobs=1) == 0
    interrupted = out / "confirmation" / "knn" / "lambda_0.5" / "11"
    (interrupted / ".hydra").mkdir(parents=True)
    (interrupted / "summary.json").write_text(json.dumps({"status": "running"}))
    (interrupted / "checkpoint.pt").write_bytes(b"x")
    dest.mkdir()
    old = {"lambda_h": 0.1, "reason": "from an earlier part", "completed": 2, "runs": 2}
    (dest / "selection.json").write_text(json.dumps({"rows": {"old": old}}))
    (dest / "times.tsv").write_text(launch.TIMES_HEADER + "selection\told\t0.1\t0\tcompleted\t1.0\tT\t\n")

    assert cli_main(["study", str(path), "--export", str(dest)]) == 0
    assert "6 runs, 1 not completed, 2 selection rows, 6 timing lines" in capsys.readouterr().out
    run = dest / "selection" / "knn" / "lambda_0.5" / "1"
    assert sorted(p.name for p in run.rglob("*") if p.is_file()) == ["config.yaml", "overrides.yaml", "summary.json"]
    assert not (dest / "confirmation" / "knn" / "lambda_0.5" / "11").exists()  # interrupted: not exported
    rows = json.loads((dest / "selection.json").read_text())["rows"]
    assert rows["old"] == old and rows["knn"]["lambda_h"] == 0.5 and rows["none"]["lambda_h"] == 0.0
    lines = (dest / "times.tsv").read_text().splitlines()
    assert lines[0] == launch.TIMES_HEADER.strip() and len(lines) == 1 + 1 + 6
    assert cli_main(["study", str(path), "--export", str(dest)]) == 0  # again: nothing doubled
    assert (dest / "times.tsv").read_text().splitlines() == lines

    only = tmp_path / "only_knn"
    assert cli_main(["study", str(path), "--rows", "knn", "--export", str(only)]) == 0
    assert not (only / "selection" / "none").exists() and set(json.loads((only / "selection.json").read_text())["rows"]) == {"knn"}
    assert {line.split("\t")[1] for line in (only / "times.tsv").read_text().splitlines()[1:]} == {"knn"}

    capsys.readouterr()
    assert run_study(load_spec(path, dest), n_jobs=1) == 0  # continue from the exported files: nothing retrained
    assert "0 ran, 6 kept, 0 failed" in capsys.readouterr().out
    assert cli_main(["study", str(path), "--out", str(tmp_path / "nowhere"), "--export", str(dest)]) == 2
    assert "does not exist; give the --out the study ran into." in capsys.readouterr().err
