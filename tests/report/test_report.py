"""`mege report` on a synthetic hydra-like sweep folder, against hand-computed means and standard errors."""

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from mege.errors import MegeError
from mege.cli.report import main
from mege.report import AT_FLOOR, Stat, build_report, format_cell, read_csv, table_rows

PROTOCOL = {"n_samples": 2500, "hq_std": 3, "log": "e", "kl": "KL(gen||data)"}


def _metrics(seed, **values):
    # n_samples repeats the protocol card: a protocol field, not a metric column.
    return {**values, "n_samples": 2500, "protocol": {**PROTOCOL, "seed": seed}}


def _write_run(root, job, entropy, seed, summary=None, jsonl=None, landscape=False, extra=()):
    run = root / str(job)
    (run / ".hydra").mkdir(parents=True)
    overrides = [f"entropy={entropy}", f"seed={seed}", "train.steps=100", "+launcher=joblib", "hydra.launcher.n_jobs=2", *extra]
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (run / ".hydra" / "config.yaml").write_text(f"seed: {seed}\ntrain:\n  steps: 100\nentropy:\n  _target_: mege.entropy.{entropy}.Estimator\n")
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary))
    if jsonl is not None:
        (run / "metrics.jsonl").write_text(jsonl)
    if landscape:
        import matplotlib.pyplot as plt

        plt.imsave(run / "landscape.png", np.random.default_rng(0).random((8, 8)))


def _done(seed, step=100, ema=None, **values):
    ema_metrics = None if ema is None else _metrics(seed, **ema)
    return {"status": "completed", "step": step, "metrics": _metrics(seed, **values), "ema_metrics": ema_metrics, "elapsed_s": 1.0, "version": "0.1.0"}


@pytest.fixture()
def sweep(tmp_path):
    """multirun/<date>/<time>/<job>: entropy ∈ {none, kde} × seeds 0..2 completed, plus
    none/3 still running, kde/3 failed, kde/4 without summary, and kde/2 missing the 'hq' metric."""
    root = tmp_path / "multirun" / "2025-01-01" / "12-00-00"
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    _write_run(root, 0, "none", 0, _done(0, modes=20, hq=0.9, reverse_kl=0.5, ema=dict(modes=21)), landscape=True)
    _write_run(root, 1, "none", 1, _done(1, modes=22, hq=0.8, reverse_kl=0.3, ema=dict(modes=23)))
    _write_run(root, 2, "none", 2, _done(2, modes=27, hq=0.85, reverse_kl=0.4, ema=dict(modes=25)))
    _write_run(root, 3, "none", 3, {"status": "running", "step": 50, "metrics": {}, "ema_metrics": None})
    _write_run(root, 4, "kde", 0, _done(0, modes=25, hq=0.96, reverse_kl=0.01, ema=dict(modes=25)))
    _write_run(root, 5, "kde", 1, _done(1, modes=24, hq=0.98, reverse_kl=0.03, ema=dict(modes=25)))
    _write_run(root, 6, "kde", 2, _done(2, modes=25, reverse_kl=0.02, ema=dict(modes=24)))
    failed = {"status": "failed", "step": 120, "error": "Traceback ...\nRuntimeError: loss is nan", "metrics": {}, "ema_metrics": None}
    _write_run(root, 7, "kde", 3, failed, jsonl=json.dumps({"step": 100, "metrics": {"modes": 10, "reverse_kl": 1.0}, "ema_metrics": None}) + "\n")
    lines = [{"step": 100, "metrics": {"modes": 12, "reverse_kl": 0.9}}, {"step": 200, "metrics": {"modes": 18, "reverse_kl": 0.2}}]
    _write_run(root, 8, "kde", 4, None, jsonl="".join(json.dumps(x) + "\n" for x in lines) + '{"step": 300, "metr')
    return tmp_path / "multirun"


# Hand-computed: mean and s.d./√n with ddof=1.
EXPECTED = {
    ("none", "modes"): (23.0, math.sqrt(13 / 3), 3),  # 20,22,27: Σdev²=26, var=13
    ("none", "hq"): (0.85, math.sqrt(0.0025 / 3), 3),
    ("none", "reverse_kl"): (0.4, math.sqrt(0.01 / 3), 3),
    ("none", "ema/modes"): (23.0, math.sqrt(4 / 3), 3),  # 21,23,25
    ("kde", "modes"): (74 / 3, 1 / 3, 3),  # 25,24,25: Σdev²=2/3, var=1/3, se=√(1/9)
    ("kde", "hq"): (0.97, 0.01, 2),  # 0.96,0.98 (seed 2 lacks hq)
    ("kde", "reverse_kl"): (0.02, math.sqrt(0.0001 / 3), 3),
    ("kde", "ema/modes"): (74 / 3, 1 / 3, 3),
}


def _md_table(text):
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[1:]:
        if line.startswith("| run"):  # next table
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return header, rows


def test_groups_means_standard_errors_and_counts(sweep):
    report = build_report(sweep)
    assert report.keys == ["entropy"]
    assert report.fixed == {"train.steps": "100", "launcher": "joblib"}
    assert report.metrics == ["modes", "hq", "reverse_kl", "ema/modes"]
    groups = {g.values[0]: g for g in report.groups}
    assert [g.values for g in report.groups] == [("kde",), ("none",)]
    assert (len(groups["none"].runs), len(groups["none"].excluded)) == (3, 1)
    assert (len(groups["kde"].runs), len(groups["kde"].excluded)) == (3, 2)
    for (group, metric), (mean, se, n) in EXPECTED.items():
        s = groups[group].stats[metric]
        assert s.n == n, (group, metric)
        assert s.mean == pytest.approx(mean, rel=1e-12), (group, metric)
        assert s.se == pytest.approx(se, rel=1e-9), (group, metric)
    assert groups["kde"].missing == {"2025-01-01/12-00-00/6": {"hq": "absent"}}


def test_report_files_list_excluded_runs_and_csv_matches_table(sweep, tmp_path):
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()

    # Excluded or incomplete runs, each with its reason.
    excluded = md.split("## Excluded or incomplete runs")[1].split("##")[0]
    assert "2025-01-01/12-00-00/7 | entropy=kde | 3 | failed | 120 | no | failed: RuntimeError: loss is nan at step 120; last evaluation at step 100 in metrics.jsonl" in excluded
    assert "2025-01-01/12-00-00/8 | entropy=kde | 4 | no summary |  | no | no summary.json; last evaluation at step 200 in metrics.jsonl" in excluded
    assert "2025-01-01/12-00-00/3 | entropy=none | 3 | running | 50 | no | incomplete: summary says running at step 50; no evaluation in metrics.jsonl" in excluded
    assert excluded.count("| no |") == 3
    missing = md.split("## Runs missing a metric")[1]
    assert "2025-01-01/12-00-00/6 | entropy=kde | 2 | hq (absent)" in missing
    assert "Protocol: n_samples=2500, hq_std=3, log=e, kl=KL(gen||data)." in md  # seed left out
    assert "Fixed overrides: `train.steps=100`, `launcher=joblib`." in md

    header, rows = _md_table(md)
    assert header == ["entropy", "runs", "excluded", "modes", "hq", "reverse_kl", "ema/modes"]
    assert rows[1]["modes"] == "23 ± 2.082" and rows[1]["runs"] == "3" and rows[1]["excluded"] == "1"
    assert rows[0]["hq"] == "0.97 ± 0.01 (n=2)"

    csv_rows = read_csv(out / "report.csv")
    assert [r["entropy"] for r in csv_rows] == [r["entropy"] for r in rows] == ["kde", "none"]
    for csv_row, md_row in zip(csv_rows, rows):
        assert (csv_row["runs"], csv_row["excluded"]) == (md_row["runs"], md_row["excluded"])
        for metric in ["modes", "hq", "reverse_kl", "ema/modes"]:
            mean, se, n = EXPECTED[(csv_row["entropy"], metric)]
            stat = Stat(float(csv_row[f"{metric}:mean"]), float(csv_row[f"{metric}:se"]), int(csv_row[f"{metric}:n"]))
            assert (stat.mean, stat.se, stat.n) == (pytest.approx(mean, rel=1e-12), pytest.approx(se, rel=1e-9), n)
            assert format_cell(stat, int(csv_row["runs"])) == md_row[metric]

    assert (out / "report_bars.png").stat().st_size > 0
    assert (out / "report_landscapes.png").stat().st_size > 0
    assert "](report_bars.png)" in md and "](report_landscapes.png)" in md


def test_include_incomplete_aggregates_last_evaluation(sweep):
    report = build_report(sweep, include_incomplete=True)
    kde = next(g for g in report.groups if g.values == ("kde",))
    modes = kde.stats["modes"]  # 25, 24, 25, 10 (failed, step 100), 18 (no summary, step 200)
    assert (modes.n, modes.mean) == (5, pytest.approx(20.4))
    assert modes.se == pytest.approx(math.sqrt(169.2 / 4 / 5))
    assert kde.stats["hq"].n == 2 and len(kde.runs) == 5
    assert "included with its last evaluation at step 100" in next(r for r in kde.runs if r.name.endswith("/7")).reason
    none = next(g for g in report.groups if g.values == ("none",))
    assert len(none.excluded) == 1  # running with no metrics.jsonl: still excluded


def test_group_by_named_key_reads_overrides_then_config(sweep):
    report = build_report(sweep, by=["train.steps"])
    assert [g.values for g in report.groups] == [("100",)] and len(report.groups[0].runs) == 6
    report = build_report(sweep, by=["entropy._target_"])  # not an override: read from the resolved config
    assert [g.values for g in report.groups] == [("mege.entropy.kde.Estimator",), ("mege.entropy.none.Estimator",)]


def test_launch_keys_left_out_when_implied(tmp_path):
    for job, (optim, sweep) in enumerate([("adam", "a"), ("adam", "a"), ("sgd", "b"), ("sgd", "b")]):
        _write_run(tmp_path / "one", job, "none", job % 2, _done(job, modes=job), extra=[f"optim={optim}", f"+sweep={sweep}"])
    report = build_report(tmp_path / "one")
    assert (report.keys, report.implied) == (["optim"], ["sweep"])
    assert [g.stats["modes"].mean for g in report.groups] == [0.5, 2.5]
    for job, (optim, sweep) in enumerate([("adam", "a"), ("adam", "b")]):  # here sweep does split the runs
        _write_run(tmp_path / "two", job, "none", 0, _done(0, modes=job), extra=[f"optim={optim}", f"+sweep={sweep}"])
    assert build_report(tmp_path / "two").keys == ["sweep"]


def test_stat_matches_scipy_and_single_run_shows_dash():
    values = [0.3, 1.7, 2.2, 5.0]
    s = Stat.of(values)
    assert s.mean == pytest.approx(np.mean(values)) and s.se == pytest.approx(sps.sem(values, ddof=1))
    one = Stat.of([4.0])
    assert one.n == 1 and math.isnan(one.se)
    assert format_cell(one, 1) == "4 ± —"
    assert format_cell(Stat.of([]), 3) == "— (n=0)" and format_cell(Stat.of([]), 0) == "—"


def test_nan_metric_counts_as_missing(tmp_path):
    for job, kl in enumerate([0.1, float("nan"), 0.3]):
        _write_run(tmp_path, job, "none", job, _done(job, modes=8, reverse_kl=kl))
    _write_run(tmp_path, 3, "kde", 0, {"status": "failed", "step": 3, "error": "boom"})
    failed, g = build_report(tmp_path).groups
    assert g.stats["reverse_kl"].n == 2 and g.stats["reverse_kl"].mean == pytest.approx(0.2)
    assert g.missing == {"1": {"reverse_kl": "nan"}}
    assert (failed.values, len(failed.runs), len(failed.excluded)) == (("kde",), 0, 1)  # its row stays
    assert format_cell(failed.stats["modes"], 0) == "—"


def test_clear_errors_for_missing_or_empty_sweep(tmp_path):
    with pytest.raises(MegeError, match="does not exist"):
        main([str(tmp_path / "nope")])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(MegeError, match="no run under"):
        main([str(tmp_path / "empty")])


def test_mcmc_blocks_from_eval_json_become_named_columns(sweep):
    """`mege eval --mcmc-steps K --temperature 0.01` writes a T = 1 block and a mode-seeking block;
    each is pooled under its own name, K in the protocol."""
    root = sweep / "2025-01-01" / "12-00-00"
    for job, modes in ((0, 25), (1, 24), (2, 23)):
        seek = {"steps": 200, "modes": modes, "reverse_kl": 0.01 * modes, "mcmc_accept_rate": 0.6,
                "protocol": {**PROTOCOL, "latent_mcmc": {"temperature": 0.01, "accept_rate": 0.5 + job / 100}}}
        model = {"steps": 200, "modes": modes - 3, "reverse_kl": 0.1, "mcmc_accept_rate": 0.7,
                 "protocol": {**PROTOCOL, "latent_mcmc": {"temperature": 1.0}}}
        (root / str(job) / "eval.json").write_text(json.dumps({"step": 100, "mode_seek": seek, "mcmc_T1": model}))
    report = build_report(sweep)
    none = next(g for g in report.groups if g.values == ("none",))
    kde = next(g for g in report.groups if g.values == ("kde",))
    stat = none.stats["mode_seek/modes"]
    assert (stat.mean, stat.n) == (24.0, 3) and stat.se == pytest.approx(1 / math.sqrt(3))
    assert none.stats["mode_seek/reverse_kl"].mean == pytest.approx(0.24)
    assert none.stats["mcmc_T1/modes"].mean == pytest.approx(21.0)
    assert kde.stats["mode_seek/modes"].n == 0  # no eval.json there: a missing column, not a zero
    assert "mode_seek/steps" not in report.metrics
    assert not any(m.startswith("refined/") for m in report.metrics)
    assert report.protocol["mode_seek/mcmc_steps"] == "200"
    assert report.protocol["mode_seek/latent_mcmc"] == '{"temperature": 0.01}'  # chain statistics are not protocol
    assert report.protocol["mcmc_T1/latent_mcmc"] == '{"temperature": 1.0}'


def test_an_old_refined_block_is_named_by_its_temperature(sweep):
    root = sweep / "2025-01-01" / "12-00-00"
    for job, temperature in ((0, 0.01), (1, 1.0)):
        old = {"steps": 50, "modes": 20 + job, "protocol": {**PROTOCOL, "latent_mcmc": {"temperature": temperature}}}
        (root / str(job) / "eval.json").write_text(json.dumps({"step": 100, "refined": old}))
    report = build_report(sweep)
    none = next(g for g in report.groups if g.values == ("none",))
    assert none.stats["mode_seek/modes"].mean == 20 and none.stats["mcmc_T1/modes"].mean == 21


def test_stacked_reference_row_is_shown_once(tmp_path):
    """The real-data reference block repeats in the EMA metrics; the report keeps the raw one only."""
    root = tmp_path / "sweep"
    ref = {"modes": 1000, "reverse_kl": 0.024}
    for job, modes in ((0, 800), (1, 900)):
        summary = _done(job, modes=modes, ema=dict(modes=modes + 10))
        summary["metrics"]["reference"] = ref
        summary["ema_metrics"]["reference"] = ref
        _write_run(root, job, "mi_js", job, summary)
    report = build_report(root)
    assert report.groups[0].stats["reference/modes"].mean == 1000
    assert report.groups[0].stats["modes"].mean == 850 and report.groups[0].stats["ema/modes"].mean == 860
    assert not any(m.startswith("ema/reference") for m in report.metrics)


def test_a_kl_within_twice_its_floor_is_marked(tmp_path):
    """Hand-built: 'none' has reverse KL 0.3 on a floor of 0.2 (marked); 'kde' 0.05 on 0.01 (not)."""
    root = tmp_path / "sweep"
    root.mkdir()
    for job, (entropy, kl, floor) in enumerate([("none", 0.3, 0.2), ("none", 0.35, 0.2), ("kde", 0.05, 0.01), ("kde", 0.04, 0.01)]):
        _write_run(root, job, entropy, job % 2, _done(job % 2, modes=25, reverse_kl=kl, reverse_kl_floor=floor))
    report = build_report(root)
    header, rows = table_rows(report)
    col = header.index("reverse_kl")
    marked = {row[0]: row[col].endswith(AT_FLOOR) for row in rows}
    assert marked == {"none": True, "kde": False}
    assert not any(row[header.index("modes")].endswith(AT_FLOOR) for row in rows)  # only KLs with a floor


def test_toy_kl_gets_its_pooled_exact_sampling_p(tmp_path):
    """Two seeds of a 25-mode toy run: the `assigned_kl p` column is P(χ²₄₈ ≥ 2·2500·(KL₀ + KL₁)) and the
    `reverse_kl p` column uses each run's HQ count; a KL at exactly twice its floor is p ≈ 0.0025, not 'exact'."""
    from mege.metrics.goodness_of_fit import exact_sampling_p
    from mege.metrics.toy import perfect_sampling_floor
    import torch

    card = {"n_samples": 2500, "n_modes": 25, "log_base": "e"}
    root = tmp_path / "sweep"
    for job, (akl, rkl, n_hq) in enumerate([(0.010, 0.02, 2000), (0.006, 0.03, 1500)]):
        summary = {"status": "completed", "step": 10, "ema_metrics": None,
                   "metrics": {"assigned_kl": akl, "reverse_kl": rkl, "n_hq": n_hq, "modes": 25, "n_samples": 2500,
                               "n_modes": 25, "protocol": card}}
        _write_run(root, job, "none", job, summary)
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    header, rows = _md_table((out / "report.md").read_text())
    assert "assigned_kl p" in header and "reverse_kl p" in header
    assert rows[0]["assigned_kl p"] == f"{sps.chi2.sf(2 * 2500 * 0.016, 48):.2g}"
    assert rows[0]["reverse_kl p"] == f"{sps.chi2.sf(2 * 2000 * 0.02 + 2 * 1500 * 0.03, 48):.2g}"
    csv_row = read_csv(out / "report.csv")[0]
    assert float(csv_row["assigned_kl:pooled_p"]) == pytest.approx(sps.chi2.sf(80.0, 48), rel=1e-12)
    floor = perfect_sampling_floor(torch.ones(25), 2500)
    assert exact_sampling_p(2 * floor, 2500, 25) == pytest.approx(0.0025, abs=2e-4)
