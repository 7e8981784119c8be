"""The 10-seed table of a regime from its run summaries (issue 23).

    python experiments/regimes/table.py experiments/regimes/run_files/<regime> [--miss 0.2 --hq 0.8]

One row per seed folder (summary.json, time.txt): modes, HQ, assigned KL beside its floor, for the
raw generator and the EMA; a seed meets the criterion when the RAW generator misses at least
``miss`` of the modes with HQ ≥ ``hq``. Prints markdown and the count "k of n".
"""
import argparse
import json
import math
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("folder")
p.add_argument("--miss", type=float, default=0.2)
p.add_argument("--hq", type=float, default=0.8)
a = p.parse_args()
rows, k, n = [], 0, 0
print("| seed | modes | HQ | assigned KL (floor) | EMA modes | EMA HQ | EMA assigned KL (floor) | meets | wall s | CPU s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for d in sorted(Path(a.folder).iterdir()):
    if not (d / "summary.json").exists():
        continue
    s = json.loads((d / "summary.json").read_text())
    m, e = s["metrics"], s["ema_metrics"]
    meets = (m["n_modes"] - m["modes"]) >= math.ceil(a.miss * m["n_modes"] - 1e-9) and m["hq_fraction"] >= a.hq
    k += meets
    n += 1
    t = dict(zip(*[iter((d / "time.txt").read_text().split())] * 2)) if (d / "time.txt").exists() else {}
    print(f"| {d.name} | {m['modes']}/{m['n_modes']} | {100*m['hq_fraction']:.1f} % | {m['assigned_kl']:.3f} ({m['assigned_kl_floor']:.4f}) "
          f"| {e['modes']} | {100*e['hq_fraction']:.1f} % | {e['assigned_kl']:.3f} ({e['assigned_kl_floor']:.4f}) | {'yes' if meets else 'no'} "
          f"| {t.get('wall_s', '')} | {t.get('cpu_s', '')} |")
print(f"\n{k} of {n} seeds meet the criterion (raw generator: ≥ {a.miss:.0%} of modes missed, HQ ≥ {a.hq:.0%}).")
