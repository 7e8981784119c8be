"""The toy benchmark's table (experiments/toy_benchmark.py) on hand-built run results."""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import toy_benchmark  # noqa: E402


def _block(modes, hq, kl, kl_floor, assigned, assigned_floor):
    return {"modes": modes, "hq_fraction": hq, "reverse_kl": kl, "reverse_kl_floor": kl_floor,
            "assigned_kl": assigned, "assigned_kl_floor": assigned_floor}


def _run(seed, raw, ema, train_s=100.0):
    return {"experiment": "grid25", "seed": seed, "status": "completed", "dir": f"d{seed}", "train_s": train_s,
            "raw": raw, "ema": ema}


def test_table_means_standard_errors_and_floor_marks():
    results = [
        _run(0, _block(25, 0.90, 0.010, 0.004, 0.05, 0.005), _block(25, 0.94, 0.006, 0.004, 0.03, 0.005), 180.0),
        _run(1, _block(23, 0.80, 0.030, 0.004, 0.07, 0.005), _block(25, 0.96, 0.008, 0.004, 0.04, 0.005), 200.0),
        {"experiment": "grid25", "seed": 2, "status": "failed", "dir": "d2"},
    ]
    lines = toy_benchmark.table(results).splitlines()
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
