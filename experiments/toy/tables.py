"""The toy benchmark's tables: grid-25 and ring-8, raw and EMA generator, each KL beside its floor.

    mege study experiments/toy/benchmark.yaml                      # the runs (5 seeds × grid25, ring8), resumable
    python experiments/toy/tables.py outputs/toy_benchmark [--dest outputs/toy_benchmark/results.md]

Reads the study's run folders (``<out>/runs/<row>/<seed>/summary.json``; the row is the recipe, its
resolved config is each run's ``config.yaml``) and writes ``results.md`` (mean ± s.e. over seeds of
modes, HQ fraction, reverse KL beside its floor, assigned KL beside its floor, for the raw generator
and its EMA, no MCMC, plus each run's training time) and ``results.json`` (every run's metrics) beside
it. ``--from-json results.json`` rebuilds the tables from such a record (the committed
``experiments/toy/results.md`` from ``results.json``: tests/test_toy_benchmark.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from mege.metrics.goodness_of_fit import exact_sampling_p, pooled_exact_sampling_p
from mege.report import Stat, format_cell
from mege.run_dir import RunDir

GOF = (("reverse_kl", "n_hq"), ("assigned_kl", "n_samples"))
"""KLs that get an exact-sampling G-test p column (pooled over seeds) and the count of their histogram."""


def gof_p(blocks: list[dict], key: str, count: str) -> float:
    """Exact-sampling G-test p of ``key`` pooled over the seeds' metric blocks (G = 2·n·KL summed, df = Σ (K − 1))."""
    return pooled_exact_sampling_p([(float(b[key]), float(b[count]), int(b["n_modes"])) for b in blocks])

COLUMNS = (("modes", "modes"), ("hq_fraction", "HQ"), ("reverse_kl", "reverse KL"), ("reverse_kl_floor", "its floor"),
           ("assigned_kl", "assigned KL"), ("assigned_kl_floor", "its floor"))


def read_runs(out: Path) -> list[dict]:
    """One record per run folder ``<out>/runs/<recipe>/<seed>/``: completed with its metrics, or failed."""
    results = []
    for folder in sorted((out / "runs").glob("*/*"), key=lambda p: (p.parent.name, int(p.name) if p.name.isdigit() else 0)):
        run = RunDir(folder)
        summary = run.read_json(RunDir.SUMMARY) or {}
        record = {"experiment": folder.parent.name, "seed": int(folder.name) if folder.name.isdigit() else folder.name,
                  "status": summary.get("status", "no summary"), "dir": str(folder)}
        if record["status"] == "completed":
            record.update(train_s=summary.get("elapsed_s"), raw=summary.get("metrics"), ema=summary.get("ema_metrics"))
            if run.config.exists():  # the resolved config each number was made with
                import yaml
                record["config"] = yaml.safe_load(run.config.read_text())
        else:
            record["status"] = "failed"
        results.append(record)
    return results


def _cell(values: list[float], digits: str) -> str:
    stat = Stat.of([v for v in values if not math.isnan(v)])
    if digits == "pct":
        return format_cell(Stat(100 * stat.mean, 100 * stat.se, stat.n), len(values)) + " %"
    return format_cell(stat, len(values))


def table(results: list[dict]) -> str:
    """One row per (experiment, generator): mean ± s.e. over seeds; KLs marked when within 2x their floor."""
    header = (["experiment", "samples", "seeds"] + [name for _, name in COLUMNS]
              + [f"{dict(COLUMNS)[k]} p (pooled)" for k, _ in GOF] + ["train s / run"])
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
            cells += [f"{gof_p(blocks, key, count):.2g}" for key, count in GOF]
            times = [r["train_s"] for r in done]
            seeds = f"{len(blocks)}" + (f" ({len(failed)} failed)" if failed else "")
            span = f"{min(times):.0f}" if round(min(times)) == round(max(times)) else f"{min(times):.0f}–{max(times):.0f}"
            lines.append("| " + " | ".join([experiment, label, seeds, *cells, span]) + " |")
    return "\n".join(lines)


def per_seed(results: list[dict]) -> str:
    header = ["experiment", "seed", "modes", "HQ", "reverse KL", "assigned KL", "assigned KL p", "EMA modes", "EMA HQ",
              "EMA reverse KL", "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        if r["status"] != "completed":
            lines.append(f"| {r['experiment']} | {r['seed']} | failed: see {r['dir']} |" + " |" * 8)
            continue
        raw, ema = r["raw"], r["ema"] or r["raw"]
        p = exact_sampling_p(raw["assigned_kl"], raw["n_samples"], raw["n_modes"])
        lines.append(f"| {r['experiment']} | {r['seed']} | {raw['modes']} | {raw['hq_fraction']:.1%} | {raw['reverse_kl']:.4f} "
                     f"| {raw['assigned_kl']:.4f} | {p:.2g} | {ema['modes']} | {ema['hq_fraction']:.1%} | {ema['reverse_kl']:.4f} "
                     f"| {r['train_s']:.0f} |")
    return "\n".join(lines)


def text(results: list[dict], made_with: str) -> str:
    card = next((r["raw"]["protocol"] for r in results if r["status"] == "completed"), {})
    return (f"{table(results)}\n\n{made_with} `train s / run` is each run's own training time. Cells: mean ± s.e. over "
            f"seeds; `≤2×floor`: within twice the perfect-sampler KL at the same sample count — not a test: the `p` "
            f"columns are the exact-sampling G-test (G = 2·n·KL ~ χ²(K − 1), pooled over seeds by summing G and degrees of "
            f"freedom; n = the HQ count for the reverse KL, all samples for the assigned KL); a small p means the histograms "
            f"can be told from exact sampling. Samples: the generator's "
            f"own (raw weights, and their EMA), no MCMC.\n"
            f"Protocol: {card.get('name', '')}, {card.get('n_samples')} samples, high quality = within "
            f"{card.get('hq_threshold')}; reverse KL over the HQ samples' mode histogram, its floor at the HQ count; "
            f"assigned KL over all samples by nearest centre, its floor at {card.get('n_samples')}; natural log.\n\n"
            f"Per seed:\n\n{per_seed(results)}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", help="the study's output folder (mege study experiments/toy/benchmark.yaml)")
    parser.add_argument("--from-json", type=Path, help="rebuild from a results.json record instead of run folders")
    parser.add_argument("--dest", type=Path, help="results.md to write (default: <out>/results.md); results.json beside it")
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(args.from_json.read_text())["runs"]
    elif args.out:
        results = read_runs(args.out)
    else:
        parser.error("give the study's output folder or --from-json FILE")
    if not results:
        parser.error(f"no run folders under {args.out}/runs; run `mege study experiments/toy/benchmark.yaml --out {args.out}` first")
    if args.dest is None and args.out is None:
        parser.error("--from-json writes where --dest says (never into the committed folder by default)")
    dest = args.dest or args.out / "results.md"
    made_with = f"Runs: `{args.out}` (`mege study`, one thread per run)." if args.out else f"Rebuilt from `{args.from_json}`."
    written = text(results, made_with)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(written)
    if not args.from_json:
        dest.with_suffix(".json").write_text(json.dumps({"runs": results}, indent=1, default=float))
    print("\n" + written)
    return 0 if all(r["status"] == "completed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
