"""``mege eval <run_dir | sweep_dir> [key=value ...] [--mcmc-steps K] [--temperature T]``."""

from __future__ import annotations

import json
from pathlib import Path

from mege.errors import check
from mege.run_dir import RunDir


def evaluate(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="mege eval", description="re-evaluate a run's checkpoint, or every "
                                     "completed run under a sweep folder")
    parser.add_argument("run_dir", help="a run folder, or a sweep folder (every completed run under it)")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. metric.n_samples=10000")
    parser.add_argument("--mcmc-steps", type=int, default=0,
                        help="also report the metric on samples refined by K latent-MALA steps (mege.sampling)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="temperature of the latent MCMC target: 1 samples the energy model (block mcmc_T1); "
                             "T < 1 is mode-seeking (block mode_seek, reported beside a T = 1 block)")
    args = parser.parse_args(argv)
    check(all("=" in o for o in args.overrides), "overrides must look like key=value (e.g. metric.n_samples=10000).")
    check(args.mcmc_steps >= 0, f"--mcmc-steps must be ≥ 0 (got {args.mcmc_steps}).")
    check(args.temperature > 0, f"--temperature must be > 0 (got {args.temperature}).")
    root = Path(args.run_dir)
    if root.is_dir() and not RunDir(root).config.exists():
        return evaluate_sweep(root, args)
    result = evaluate_run(root, args)
    print(json.dumps(result, indent=2, default=float))
    print(f"written {RunDir(root).eval}")
    return 0


def evaluate_run(run_dir: Path, args) -> dict:
    """Evaluate one run's checkpoint (plus latent-MCMC refinement); writes ``run_dir/eval.json``."""
    from mege.training import load_run
    trainer = load_run(run_dir, **dict(o.split("=", 1) for o in args.overrides))
    result = trainer.evaluate(plot=False)
    if args.mcmc_steps > 0:
        from mege.sampling import mcmc_block_name, refined_metric
        # a T < 1 number is always reported beside the model's own samples at T = 1
        for temperature in sorted({1.0, float(args.temperature)}):
            result[mcmc_block_name(temperature)] = refined_metric(
                trainer, args.mcmc_steps, seed=trainer.settings.eval_seed, temperature=temperature)[0]
    RunDir(run_dir).write_json(RunDir.EVAL, result)
    return result


def evaluate_sweep(sweep_dir: Path, args) -> int:
    """``mege eval <sweep_dir>``: every run under it whose summary says completed, one line each.

    ``mege report`` then shows the latent-MCMC metrics as ``mcmc_T1/<metric>`` (T = 1, the
    model's samples) and ``mode_seek/<metric>`` (T < 1) columns.
    """
    from mege.sampling import mcmc_block_name
    from mege.report import find_runs
    runs = [r for r in find_runs(sweep_dir) if RunDir(r).status() == "completed"]
    check(runs, f"{sweep_dir} holds no completed run (no config.yaml, and no run folder with a completed "
                f"summary.json under it); pass a folder written by `mege train` or `mege train -m`.")
    for run in runs:
        result = evaluate_run(run, args)
        names = ["mcmc_T1", mcmc_block_name(args.temperature)] if args.mcmc_steps > 0 else ["ema_metrics", "metrics"]
        parts = []
        for name in dict.fromkeys(names):
            block = result.get(name) or {}
            shown = {k: v for k, v in block.items() if isinstance(v, (int, float)) and k in ("modes", "hq_fraction", "reverse_kl")}
            if shown:
                parts.append(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()))
        print(f"{run}: " + "; ".join(parts), flush=True)
    print(f"evaluated {len(runs)} runs; `mege report {sweep_dir}` adds their mcmc_T1/* (and mode_seek/*) columns")
    return 0
