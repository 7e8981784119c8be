"""The toy benchmark's tables (experiments/toy/tables.py): hand-built run results, and the committed table
rebuilt from its record."""

import math
import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
sys.path.insert(0, str(EXPERIMENTS / "toy"))
import tables  # noqa: E402


def _block(modes, hq, kl, kl_floor, assigned, assigned_floor):
    return {"modes": modes, "hq_fraction": hq, "reverse_kl": kl, "reverse_kl_floor": kl_floor,
            "assigned_kl": assigned, "assigned_kl_floor": assigned_floor, "n_modes": 25, "n_samples": 1000,
            "n_hq": round(1000 * hq)}


def _run(seed, raw, ema, train_s=100.0):
    return {"experiment": "grid25", "seed": seed, "status": "completed", "dir": f"d{seed}", "train_s": train_s,
            "raw": raw, "ema": ema}


def test_table_means_standard_errors_and_floor_marks():
    results = [
        _run(0, _block(25, 0.90, 0.010, 0.004, 0.05, 0.005), _block(25, 0.94, 0.006, 0.004, 0.03, 0.005), 180.0),
        _run(1, _block(23, 0.80, 0.030, 0.004, 0.07, 0.005), _block(25, 0.96, 0.008, 0.004, 0.04, 0.005), 200.0),
        {"experiment": "grid25", "seed": 2, "status": "failed", "dir": "d2"},
    ]
    lines = tables.table(results).splitlines()
    raw = next(line for line in lines if "raw generator" in line).split(" | ")
    ema = next(line for line in lines if "EMA generator" in line).split(" | ")
    # raw: modes 24 ± 1, HQ 85 ± 5 %, reverse KL 0.02 ± 0.01 (5x its floor 0.004: not marked)
    assert raw[2] == "2 (1 failed)"
    assert raw[3] == "24 ± 1"
    assert raw[4] == "85 ± 5 %"
    assert raw[5] == "0.02 ± 0.01"
    # EMA: reverse KL 0.007 ± 0.001 ≤ 2 x 0.004: marked; assigned KL 0.035 is 7x its floor: not marked
    assert ema[5] == "0.007 ± 0.001 ≤2×floor"
    assert ema[7] == "0.035 ± 0.005"
    assert ema[-1].startswith("180–200")
    assert math.isclose(float(raw[6].split(" ± ")[0]), 0.004)
    # G-test p pooled over the two seeds: assigned KL G = 2·1000·(0.05 + 0.07) = 240 on 48 df; reverse KL at the HQ counts
    from scipy.stats import chi2
    assert raw[10] == f"{chi2.sf(2 * 1000 * 0.05 + 2 * 1000 * 0.07, 48):.2g}"
    assert raw[9] == f"{chi2.sf(2 * 900 * 0.010 + 2 * 800 * 0.030, 48):.2g}"


def test_the_committed_table_rebuilds_from_its_record(tmp_path):
    dest = tmp_path / "results.md"
    assert tables.main(["--from-json", str(EXPERIMENTS / "toy" / "results.json"), "--dest", str(dest)]) == 0
    committed = [line for line in (EXPERIMENTS / "toy" / "results.md").read_text().splitlines() if line.startswith("|")]
    rebuilt = [line for line in dest.read_text().splitlines() if line.startswith("|")]
    assert len(rebuilt) == 2 + 4 + 2 + 10 and rebuilt == committed  # summary table and per-seed rows


def test_runs_are_read_from_a_study_folder(tmp_path):
    import json
    for recipe, seed, status in (("grid25", 0, "completed"), ("grid25", 1, "interrupted"), ("ring8", 0, "completed")):
        folder = tmp_path / "runs" / recipe / str(seed)
        folder.mkdir(parents=True)
        block = _block(25 if recipe == "grid25" else 8, 0.9, 0.01, 0.005, 0.01, 0.005)
        (folder / "summary.json").write_text(json.dumps({"status": status, "elapsed_s": 12.5, "metrics": block,
                                                          "ema_metrics": block}))
    runs = tables.read_runs(tmp_path)
    assert [(r["experiment"], r["seed"], r["status"]) for r in runs] == [("grid25", 0, "completed"),
                                                                         ("grid25", 1, "failed"), ("ring8", 0, "completed")]
    assert runs[0]["train_s"] == 12.5 and runs[2]["raw"]["modes"] == 8
