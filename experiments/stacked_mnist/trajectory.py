"""Mode count and KL(p̂ ‖ U) over training, per run, for a Stacked MNIST sweep or run folders;
and the entropy-minus-none difference paired by seed.

    python experiments/stacked_mnist/trajectory.py multirun/stacked_mnist_cpu/study [more run dirs]

First table: one row per run (entropy, seed), one column per evaluated step: raw generator / EMA
modes, and the raw KL(p̂ ‖ U). Second table: at the last evaluated step (runs that did not reach it are left out), for each
entropy setting vs `none`, the mean difference over the seeds both have and its 95 % t interval
(mege.leaderboard.points.paired_difference). Reads metrics.jsonl through mege.run_dir.RunDir.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

from mege.leaderboard.points import paired_difference
from mege.run_dir import RunDir
from mege.tables import markdown_table

PAIRED = [("modes", "metrics", "modes"), ("KL(p̂ ‖ U)", "metrics", "reverse_kl"),
          ("EMA modes", "ema_metrics", "modes"), ("EMA KL(p̂ ‖ U)", "ema_metrics", "reverse_kl")]


def runs_under(paths: list[str]) -> list[RunDir]:
    found = []
    for p in map(Path, paths):
        candidates = [p] if RunDir.is_run(p) else sorted((q for q in p.iterdir() if RunDir.is_run(q)), key=lambda q: q.name)
        found += [RunDir(q) for q in candidates]
    return found


def main(argv: list[str]) -> int:
    runs = runs_under(argv)
    if not runs:
        raise SystemExit(f"no run folders under {argv}; pass a sweep folder or run folders")
    table, steps, finals = [], set(), []
    for run in runs:
        cfg = OmegaConf.load(run.config)
        hydra_file = Path(run) / ".hydra" / "hydra.yaml"
        choice = OmegaConf.load(hydra_file).hydra.runtime.choices.get("entropy") if hydra_file.is_file() else None
        choice = choice or str(cfg.entropy._target_).rsplit(".", 1)[-1]
        name = "none" if choice == "none" or float(cfg.get("lambda_h", 0)) == 0 else f"{choice} (λ_H {cfg.lambda_h})"
        cells, rows_of_run = {}, run.rows()
        for row in rows_of_run:
            raw, ema = row.get("metrics", {}), row.get("ema_metrics", {})
            cells[row["step"]] = f"{raw.get('modes', '')} / {ema.get('modes', '')} ({raw.get('reverse_kl', float('nan')):.2f})"
            steps.add(row["step"])
        table.append((name, cfg.seed, cells))
        if rows_of_run:
            finals.append((name, cfg.seed, rows_of_run[-1]))
    steps = sorted(steps)
    header = ["entropy", "seed"] + [f"step {s}" for s in steps]
    rows = [[name, seed] + [cells.get(s, "") for s in steps] for name, seed, cells in sorted(table, key=lambda r: (r[0], r[1]))]
    print("\n".join(markdown_table(header, rows)))
    last = max((row["step"] for _, _, row in finals), default=None)  # the protocol's end; runs short of it are left out
    base = {seed: row for name, seed, row in finals if name == "none" and row["step"] == last}
    others = sorted({name for name, _, _ in finals if name != "none"})
    if base and others:
        print(f"\nDifference to none at step {last} (mean over common seeds [95 % t interval]; * = excludes 0):\n")
        diff_rows = []
        for name in others:
            mine = {seed: row for n, seed, row in finals if n == name and row["step"] == last}
            cells = [paired_difference({s: r[b][k] for s, r in mine.items()}, {s: r[b][k] for s, r in base.items()}).cell()
                     for _, b, k in PAIRED]
            diff_rows.append([f"{name} − none"] + cells)
        print("\n".join(markdown_table(["difference"] + [label for label, _, _ in PAIRED], diff_rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
