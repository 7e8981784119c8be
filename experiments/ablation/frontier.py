"""Issue 13's estimator study on one dataset, one resumable command: λ_H frontier → operating point → leaderboard.

For `none` and then each estimator in turn (so that a stop leaves whole estimators done):

1. **frontier**: ``mege train -m experiment=<E> entropy=<est> lambda_h=<family grid> seed=0,1,2
   +sweep=ablation_frontier +launcher=<joblib|slurm> hydra.sweep.dir=<out>/frontier/<est>``
   (``none``: ``lambda_h=0`` only);
2. **operating point**: the rule of experiments/ablation/README.md on the finished frontier
   (``mege.leaderboard.choose_operating_point``), written to ``<out>/operating_points.json``;
3. **leaderboard**: the same command at the chosen λ_H with the fresh seeds 10–14 into
   ``<out>/leaderboard/<est>`` (no runs when no λ_H reached the rule's HQ);
4. after every sweep, ``mege report <out>/frontier --frontier lambda_h`` and
   ``mege report <out>/leaderboard --leaderboard`` rebuild ``<out>/frontier_report/`` and
   ``<out>/leaderboard_report/``.

Resumable: a sweep whose runs all say completed is skipped; otherwise the same hydra command runs
again into the same folder, and each run continues from its ``checkpoint.pt`` (a finished run ends
at once). Each sweep's wall time is appended to ``<out>/times.tsv``.

    python experiments/ablation/frontier.py --experiment ring8_collapse                 # 2 runs at a time (joblib)
    python experiments/ablation/frontier.py --experiment ring8_collapse --estimators none knn kde_score mi_js
    python experiments/ablation/frontier.py --experiment ring8_collapse --launcher slurm \\
        hydra.launcher.gpus_per_node=0 hydra.launcher.cpus_per_task=1 hydra.launcher.timeout_min=30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mege import leaderboard as lb
from mege.config import config_dir
from mege.cli.report import main as report_main
from mege.report import build_report

FAMILY_GRIDS = {"MI bound": (0.1, 0.3, 1.0, 3.0, 10.0), "KDE score": (0.1, 0.3, 1.0, 3.0, 10.0),
                "kNN": (0.003, 0.01, 0.03, 0.1, 0.3)}
"""λ_H grids per family, from the seed-0 pilots of experiments/ablation/README.md (kde_score at 0.1 = no effect,
knn at 0.1 = a blur); families not piloted get DEFAULT_GRID."""
DEFAULT_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
EXTRA = {"posterior_is": ["generator=noisy_mlp"], "posterior_hmc": ["generator=noisy_mlp"]}
"""Overrides an estimator needs (the posterior scores need the noisy generator)."""


def all_estimators() -> list[str]:
    names = sorted(p.stem for p in (config_dir() / "entropy").glob("*.yaml"))
    return ["none"] + [n for n in names if n != "none"]


def family(name: str) -> str:
    text = (config_dir() / "entropy" / f"{name}.yaml").read_text()
    target = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("_target_:")), None)
    return lb.family_of(target, name)


def grid(name: str) -> tuple[float, ...]:
    return (0.0,) if name == "none" else FAMILY_GRIDS.get(family(name), DEFAULT_GRID)


def _fmt(values) -> str:
    return ",".join(f"{v:g}" for v in values)


def completed(sweep_dir: Path) -> int:
    n = 0
    for summary in sweep_dir.glob("*/summary.json"):
        try:
            n += json.loads(summary.read_text()).get("status") == "completed"
        except ValueError:
            pass
    return n


def sweep(args, label: str, sweep_dir: Path, overrides: list[str], n_runs: int) -> bool:
    """One hydra multirun; skipped when its n_runs runs are all completed. Returns True when complete."""
    if completed(sweep_dir) >= n_runs:
        print(f"[{label}] kept: {n_runs} runs completed in {sweep_dir}", flush=True)
        return True
    cmd = [sys.executable, "-m", "mege.cli", "train", "-m", f"experiment={args.experiment}", *overrides,
           "+sweep=ablation_frontier", f"+launcher={args.launcher}", f"hydra.sweep.dir={sweep_dir}", *args.overrides]
    if args.launcher == "joblib":
        cmd.append(f"hydra.launcher.n_jobs={args.jobs}")
    print(f"[{label}] {n_runs} runs: {' '.join(cmd[2:])}", flush=True)
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start, t0 = time.strftime("%H:%M:%S", time.gmtime()), time.perf_counter()
    with open(args.out / "logs" / f"{label}.log", "a") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    done = completed(sweep_dir)
    with open(args.out / "times.tsv", "a") as f:
        f.write(f"{label}\t{start}\t{time.strftime('%H:%M:%S', time.gmtime())}\t{wall:.0f} s\t{done}/{n_runs} completed\trc={rc}\n")
    print(f"[{label}] {done}/{n_runs} completed, {wall:.0f} s (rc={rc})", flush=True)
    return done >= n_runs


def reports(args) -> dict:
    """Rebuild both reports; returns {estimator: chosen λ_H or None} from the frontier."""
    chosen = {}
    if (args.out / "frontier").is_dir() and any((args.out / "frontier").glob("*/*/summary.json")):
        report_main([str(args.out / "frontier"), "--frontier", "lambda_h", "--out", str(args.out / "frontier_report")])
        points = lb.collect_points(build_report(args.out / "frontier").runs, "lambda_h")
        for (_, name), (pick, reason) in lb.operating_points(points).items():
            chosen[name] = {"lambda_h": None if pick is None else pick.value, "reason": reason}
        (args.out / "operating_points.json").write_text(json.dumps(chosen, indent=1))
    if (args.out / "leaderboard").is_dir() and any((args.out / "leaderboard").glob("*/*/summary.json")):
        report_main([str(args.out / "leaderboard"), "--leaderboard", "--out", str(args.out / "leaderboard_report")])
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True, help="ring8_collapse or grid25_collapse")
    parser.add_argument("--estimators", nargs="+", default=None, help="default: none + every configs/entropy/*.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="frontier seeds")
    parser.add_argument("--board-seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14], help="fresh leaderboard seeds")
    parser.add_argument("--stages", nargs="+", default=["frontier", "leaderboard"], choices=["frontier", "leaderboard"])
    parser.add_argument("--launcher", default="joblib", choices=["joblib", "slurm", "local"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/ablation/<experiment>")
    parser.add_argument("overrides", nargs="*", help="hydra overrides for every run (e.g. hydra.launcher.partition=cpu)")
    args = parser.parse_args(argv)
    args.out = (args.out or Path("outputs/ablation") / args.experiment).resolve()
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    (args.out / "command.txt").write_text("python experiments/ablation/frontier.py " + " ".join(argv or sys.argv[1:]) + "\n")
    names = args.estimators or all_estimators()
    if "none" in names:  # the reference first
        names = ["none"] + [n for n in names if n != "none"]
    print(f"estimator study {args.experiment}: {', '.join(names)} -> {args.out}", flush=True)
    seeds, board = _fmt(args.seeds), _fmt(args.board_seeds)
    ok = True
    for name in names:
        extra = EXTRA.get(name, [])
        values = grid(name)
        frontier_done = completed(args.out / "frontier" / name) >= len(values) * len(args.seeds)
        if "frontier" in args.stages:
            frontier_done = sweep(args, f"frontier_{name}", args.out / "frontier" / name,
                                  [f"entropy={name}", f"lambda_h={_fmt(values)}", f"seed={seeds}", *extra],
                                  len(values) * len(args.seeds))
            ok &= frontier_done
        chosen = reports(args)
        if "leaderboard" not in args.stages:
            continue
        if name != "none" and not frontier_done:  # the rule needs the whole frontier
            print(f"[leaderboard_{name}] skipped: its frontier is not complete (rerun the command)", flush=True)
            ok = False
            continue
        value = 0.0 if name == "none" else (chosen.get(name) or {}).get("lambda_h")
        if value is None:
            print(f"[leaderboard_{name}] no operating point: {(chosen.get(name) or {}).get('reason', 'frontier not finished')}", flush=True)
            continue
        ok &= sweep(args, f"leaderboard_{name}", args.out / "leaderboard" / name,
                    [f"entropy={name}", f"lambda_h={value:g}", f"seed={board}", *extra], len(args.board_seeds))
        reports(args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
