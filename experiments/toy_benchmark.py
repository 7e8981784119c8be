"""The toy benchmark: grid-25 and ring-8 recipes, several seeds, raw and EMA generator, one table.

Runs ``mege train experiment=<name> seed=<s>`` for each experiment and seed, ``--jobs`` at a time
with one thread each, and writes ``<out>/results.md`` (and ``results.json``): per experiment,
mean ± s.e. over seeds of modes, HQ fraction, reverse KL beside its floor, assigned KL beside
its floor, for the raw generator and its EMA (no MCMC: these are the generator's own samples),
plus each run's measured training time. Extra ``key=value`` overrides apply to every run (e.g.
``lambda_h=0 entropy=none``). Resumable: a run folder whose ``summary.json`` says completed is
kept, and an interrupted run continues from its checkpoint, so rerunning the same command after
a stop finishes only what is missing.

    python experiments/toy_benchmark.py [--experiments grid25 ring8] [--seeds 0 1 2 3 4] [--jobs 2]
                                        [--out outputs/toy_benchmark] [overrides ...]

``make demo`` runs it with one seed per experiment (see README); the committed full table is
``experiments/toy/results.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mege.report import Stat, format_cell

COLUMNS = (("modes", "modes"), ("hq_fraction", "HQ"), ("reverse_kl", "reverse KL"), ("reverse_kl_floor", "its floor"),
           ("assigned_kl", "assigned KL"), ("assigned_kl_floor", "its floor"))


def train(out: Path, experiment: str, seed: int, overrides: list[str]) -> dict:
    """One run in its own process (one thread); returns its summary, or a failure record."""
    run_dir = out / f"{experiment}_seed{seed}"
    summary_path = run_dir / "summary.json"
    if summary_path.is_file() and json.loads(summary_path.read_text()).get("status") == "completed":
        summary = json.loads(summary_path.read_text())  # a finished run is kept: rerun the command to fill gaps
        print(f"  kept: {experiment} seed {seed} (completed in an earlier call)", flush=True)
        return {"experiment": experiment, "seed": seed, "status": "completed", "dir": str(run_dir),
                "train_s": summary["elapsed_s"], "wall_s": None, "raw": summary["metrics"], "ema": summary["ema_metrics"]}
    cmd = [sys.executable, "-m", "mege.cli", "train", f"experiment={experiment}", f"seed={seed}", *overrides,
           f"hydra.run.dir={run_dir}", "train.progress=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if proc.returncode != 0 or summary.get("status") != "completed":
        print(proc.stderr[-2000:], file=sys.stderr)
        return {"experiment": experiment, "seed": seed, "status": "failed", "dir": str(run_dir)}
    print(f"  done: {experiment} seed {seed} in {wall:.0f} s", flush=True)
    return {"experiment": experiment, "seed": seed, "status": "completed", "dir": str(run_dir),
            "train_s": summary["elapsed_s"], "wall_s": round(wall, 1),
            "raw": summary["metrics"], "ema": summary["ema_metrics"]}


def _cell(values: list[float], digits: str) -> str:
    stat = Stat.of([v for v in values if not math.isnan(v)])
    if digits == "pct":
        return format_cell(Stat(100 * stat.mean, 100 * stat.se, stat.n), len(values)) + " %"
    return format_cell(stat, len(values))


def table(results: list[dict]) -> str:
    """One row per (experiment, generator): mean ± s.e. over seeds; KLs marked when within 2x their floor."""
    header = ["experiment", "samples", "seeds"] + [name for _, name in COLUMNS] + ["train s / run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for experiment in dict.fromkeys(r["experiment"] for r in results):
        done = [r for r in results if r["experiment"] == experiment and r["status"] == "completed"]
        failed = [r for r in results if r["experiment"] == experiment and r["status"] != "completed"]
        for which, label in (("raw", "raw generator"), ("ema", "EMA generator")):
            blocks = [r[which] for r in done if r.get(which)]
            if not blocks:
                continue
            cells = []
            for key, _ in COLUMNS:
                values = [float(b[key]) for b in blocks]
                cells.append(_cell(values, "pct" if key == "hq_fraction" else ""))
            for i, (key, _) in enumerate(COLUMNS):  # mark a KL whose mean is within 2x its floor's mean
                if key.endswith("_kl"):
                    kl = Stat.of([float(b[key]) for b in blocks]).mean
                    floor = Stat.of([float(b[key + "_floor"]) for b in blocks]).mean
                    if kl <= 2 * floor:
                        cells[i] += " ≤2×floor"
            times = [r["train_s"] for r in done]
            seeds = f"{len(blocks)}" + (f" ({len(failed)} failed)" if failed else "")
            span = f"{min(times):.0f}" if round(min(times)) == round(max(times)) else f"{min(times):.0f}–{max(times):.0f}"
            lines.append("| " + " | ".join([experiment, label, seeds, *cells, span]) + " |")
    return "\n".join(lines)


def per_seed(results: list[dict]) -> str:
    header = ["experiment", "seed", "modes", "HQ", "reverse KL", "EMA modes", "EMA HQ", "EMA reverse KL", "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        if r["status"] != "completed":
            lines.append(f"| {r['experiment']} | {r['seed']} | failed: see {r['dir']} |" + " |" * 6)
            continue
        raw, ema = r["raw"], r["ema"] or r["raw"]
        lines.append(f"| {r['experiment']} | {r['seed']} | {raw['modes']} | {raw['hq_fraction']:.1%} | {raw['reverse_kl']:.4f} "
                     f"| {ema['modes']} | {ema['hq_fraction']:.1%} | {ema['reverse_kl']:.4f} | {r['train_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=["grid25", "ring8"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("outputs/toy_benchmark"))
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run")
    args = parser.parse_args(argv)
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        parser.error(f"overrides must look like key=value (got {' '.join(bad)})")
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(e, s) for e in args.experiments for s in args.seeds]
    print(f"toy benchmark: {len(jobs)} runs, {args.jobs} at a time -> {args.out}", flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: train(args.out, *j, args.overrides), jobs))
    wall = time.perf_counter() - start
    card = next((r["raw"]["protocol"] for r in results if r["status"] == "completed"), {})
    command = "python experiments/toy_benchmark.py --experiments " + " ".join(args.experiments) + \
        " --seeds " + " ".join(map(str, args.seeds)) + f" --jobs {args.jobs}" + \
        ("" if not args.overrides else " " + " ".join(args.overrides))
    text = (f"{table(results)}\n\nCommand: `{command}`; wall time of this call {wall:.0f} s for {len(jobs)} runs "
            f"({sum(r.get('wall_s') is None and r['status'] == 'completed' for r in results)} kept from an earlier call), "
            f"{args.jobs} at a time, one thread each; `train s / run` is each run's own training time. Cells: mean ± s.e. over seeds; `≤2×floor`: within twice the perfect-sampler KL at "
            f"the same sample count. Samples: the generator's own (raw weights, and their EMA), no MCMC.\n"
            f"Protocol: {card.get('name', '')}, {card.get('n_samples')} samples, high quality = within "
            f"{card.get('hq_threshold')}; reverse KL over the HQ samples' mode histogram, its floor at the HQ count; "
            f"assigned KL over all samples by nearest centre, its floor at {card.get('n_samples')}; natural log.\n\n"
            f"Per seed:\n\n{per_seed(results)}\n")
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps({"command": command, "wall_s": round(wall, 1), "runs": results},
                                                      indent=1, default=float))
    print("\n" + text)
    return 0 if all(r["status"] == "completed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
