"""Modes / HQ / assigned KL of the raw generator at every evaluation of a run (metrics.jsonl).

    python experiments/regimes/trajectory.py RUN_DIR
"""
import json
import sys

print("| step | modes | HQ | assigned KL |")
print("|---|---|---|---|")
for line in open(f"{sys.argv[1]}/metrics.jsonl"):
    r = json.loads(line)
    m = r.get("metrics")
    if isinstance(m, dict) and "modes" in m:
        print(f"| {r['step']} | {m['modes']}/{m['n_modes']} | {100 * m['hq_fraction']:.1f} % | {m['assigned_kl']:.3f} |")
