"""Latent MCMC on grid-25: modes / high-quality / reverse KL with and without sampling-time MALA.

For each trained run, draws 2 500 chains z0 ~ N(0, I) (the toy protocol's sample count) and runs K
MALA steps on π(z) ∝ N(z; 0, I)·exp(−U(G(z))/T) for every K in ``--steps`` (K = 0 is the plain
generator; the same z0 for every K, so rows differ only by the MCMC). Metrics follow the
PacGAN/VEEGAN protocol of ``mege.metrics.toy``. Writes ``<out>/results.md`` (mean ± standard error over
runs, per-run rows, acceptance rates, the command) and ``<out>/landscape_seed<s>_K<K>.png`` (chains
overlaid on U) for the first run and the largest K.

    mege study experiments/latent_mcmc/spec.yaml          # the runs: experiment=grid25, seeds 0–2 (resumable)
    python experiments/latent_mcmc/latent_mcmc.py --runs outputs/latent_mcmc/runs/grid25/{0,1,2} \
        [--steps 0 10 50 200] [--temperatures 1] [--out experiments/latent_mcmc]
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import torch

METRICS = ("modes", "hq_fraction", "reverse_kl")


def evaluate(run_dir: Path, steps: list[int], temperatures: list[float], step_size: float, seed: int,
             plot_dir: Path | None) -> list[dict]:
    """Metric rows for K = 0 and each (K, T); optionally a landscape with chains for the largest K."""
    from mege import plots
    from mege.sampling import latent_map, refined_metric, run_generator
    from mege.train import load_run

    run = load_run(run_dir)
    rows = []
    for k in sorted(set(steps)):
        for t in (temperatures if k else [1.0]):
            start = time.perf_counter()
            row, wrapped = refined_metric(run, k, seed=seed, step_size=step_size, temperature=t,
                                          keep_path=10 if plot_dir and k == max(steps) else 0)
            row.update(temperature=t, seconds=time.perf_counter() - start, run=str(run_dir))
            rows.append(row)
            result = wrapped.last_result
            if result.path is not None:
                generator = run_generator(run)
                with torch.no_grad():
                    paths = torch.stack([latent_map(generator).forward(u) for u in result.path], dim=1).cpu()
                x = wrapped.last_samples.cpu()
                path = plot_dir / f"landscape_{run_dir.name}_K{k}_T{t:g}.png"
                plots.landscape(run.critic, run.data.sample(len(x)), x, path, device=run.device, chains=paths,
                                title=f"{run_dir.name}: latent MALA K={k}, T={t:g} (white: 10 chains)")
    return rows


def mean_se(values: list[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "n/a"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4g}"
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))
    return f"{mean:.4g} ± {se:.2g}"


def tables(rows: list[dict]) -> str:
    keys = sorted({(r["steps"], r["temperature"]) for r in rows}, key=lambda kt: (kt[0], -kt[1]))
    out = ["| MALA steps K | T | modes (of 25) | high-quality fraction | reverse KL (nats) | acceptance | seconds |",
           "|---|---|---|---|---|---|---|"]
    for k, t in keys:
        group = [r for r in rows if (r["steps"], r["temperature"]) == (k, t)]
        label = "0 (plain G)" if k == 0 else str(k)
        out.append(f"| {label} | {t:g} | {mean_se([r['modes'] for r in group])} | {mean_se([r['hq_fraction'] for r in group])} "
                   f"| {mean_se([r['reverse_kl'] for r in group])} | {mean_se([r.get('mcmc_accept_rate') for r in group])} "
                   f"| {mean_se([r['seconds'] for r in group])} |")
    out += ["", "Per run:", "", "| run | K | T | modes | high-quality | reverse KL | acceptance | median step size |",
            "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["run"], r["steps"], -r["temperature"])):
        mcmc = r["protocol"].get("latent_mcmc", {})
        acc = r.get("mcmc_accept_rate")
        step = mcmc.get("step_size_median") if r["steps"] else None
        out.append(f"| {Path(r['run']).name} | {r['steps']} | {r['temperature']:g} | {r['modes']} | {r['hq_fraction']:.3f} "
                   f"| {r['reverse_kl']:.4f} | {'' if acc is None else f'{acc:.3f}'} | {'' if step is None else f'{step:.3g}'} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True,
                        help="trained run dirs (mege study experiments/latent_mcmc/spec.yaml writes <out>/runs/grid25/<seed>)")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 10, 50, 200])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    parser.add_argument("--step-size", type=float, default=0.05)
    parser.add_argument("--mcmc-seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=Path("experiments/latent_mcmc"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    runs = args.runs
    rows = []
    for i, run_dir in enumerate(runs):
        rows += evaluate(run_dir, args.steps, args.temperatures, args.step_size, args.mcmc_seed,
                         args.out if i == 0 else None)
        print(f"  evaluated {run_dir}", flush=True)

    protocol = next(r["protocol"] for r in rows if r["steps"] == 0)
    train_s = [json.loads((Path(r) / "summary.json").read_text()).get("elapsed_s") for r in runs]
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    text = (
        "# Latent MCMC on grid-25\n\n"
        f"Command: `{command}`\n\n"
        f"Runs: {', '.join(str(r) for r in runs)} (their config.yaml says how each was trained; the EMA generator is used).\n"
        f"Sampler: MALA on π(z) ∝ N(z;0,I)·exp(−U(G(z))/T), {protocol.get('n_samples')} chains from z0 ~ N(0, I) (seed {args.mcmc_seed}, "
        f"same z0 for every K), warm-up K/2 (step size adapted toward acceptance 0.574, then frozen), "
        f"initial step size {args.step_size}. Acceptance is over the post-warm-up steps.\n"
        f"Metric: {protocol.get('name')}, {protocol.get('n_samples')} samples, high quality = within "
        f"{protocol.get('hq_threshold')}, {protocol.get('kl')}, log base {protocol.get('log_base')}, "
        f"perfect-sampling floor {protocol.get('perfect_sampling_floor', float('nan')):.4f}. "
        f"Mean ± standard error over {len(runs)} runs. Training time per run (summary.json elapsed_s): "
        f"{', '.join(f'{t:.0f} s' for t in train_s if t is not None)}.\n\n"
        f"{tables(rows)}\n\nWall time of this command {time.perf_counter() - start:.0f} s (trained runs reused).\n"
    )
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1, default=float))
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
