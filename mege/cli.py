"""Command line: ``mege <command> ...``.

  mege train [hydra overrides]     train one run (``-m`` for a sweep)
  mege resume <run_dir>            continue a run from its checkpoint
  mege eval <run_dir>              re-evaluate a run's checkpoint
  mege estimators                  list the entropy estimators (configs/entropy/)
  mege data mnist --dest DIR       download and verify MNIST
  mege classifier train            train the Stacked MNIST mode classifier
  mege sample <run_dir> --steps K  latent-space MCMC from the learned energy
  mege report <sweep_dir>          aggregate a sweep into tables and plots
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from mege.config import check_group_choice, check_override_keys, config_dir, group_options
from mege.errors import MegeError, check

# Sub-commands implemented elsewhere: "module:function", imported on use.
EXTERNAL = {
    "data": "mege.data.mnist:main",
    "classifier": "mege.metrics.classifier:main",
    "sample": "mege.sampling:main",
    "report": "mege.report:main",
}


def check_overrides(argv: list[str]) -> None:
    """``group=name`` overrides must name a yaml of that group; λ's must be ≥ 0."""
    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if sep and key in groups and "(" not in value:  # sweep functions such as glob(*) pass through
            for choice in value.split(","):
                check_group_choice(key, choice)


def train(argv: list[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    check_overrides(argv)
    check_override_keys(argv)

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
    def run(cfg) -> float | None:
        from mege.train import Trainer
        try:
            summary = Trainer(cfg, HydraConfig.get().runtime.output_dir).fit()
        except MegeError as err:
            print(f"mege: error: {err}", file=sys.stderr)
            sys.exit(2)
        metrics = summary.get("ema_metrics") or summary.get("metrics") or {}
        return metrics.get("reverse_kl")

    sys.argv = ["mege train", *argv]
    run()
    return 0


def resume(argv: list[str]) -> int:
    check(len(argv) == 1, "usage: mege resume <run_dir>")
    from mege.train import load_run
    trainer = load_run(argv[0], checkpoint=False)
    summary = trainer.fit()
    print(json.dumps(summary, indent=2, default=float))
    return 0


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
    if root.is_dir() and not (root / "config.yaml").exists():
        return evaluate_sweep(root, args)
    result = evaluate_run(root, args)
    print(json.dumps(result, indent=2, default=float))
    print(f"written {root / 'eval.json'}")
    return 0


def evaluate_run(run_dir: Path, args) -> dict:
    """Evaluate one run's checkpoint (plus latent-MCMC refinement); writes ``run_dir/eval.json``."""
    from mege.train import load_run
    from mege.utils import write_json
    trainer = load_run(run_dir, **dict(o.split("=", 1) for o in args.overrides))
    result = trainer.evaluate(plot=False)
    if args.mcmc_steps > 0:
        from mege.sampling import mcmc_block_name, refined_metric
        # a T < 1 number is always reported beside the model's own samples at T = 1
        for temperature in sorted({1.0, float(args.temperature)}):
            result[mcmc_block_name(temperature)] = refined_metric(
                trainer, args.mcmc_steps, seed=trainer.cfg.train.eval_seed, temperature=temperature)[0]
    write_json(run_dir / "eval.json", result)
    return result


def evaluate_sweep(sweep_dir: Path, args) -> int:
    """``mege eval <sweep_dir>``: every run under it whose summary says completed, one line each.

    ``mege report`` then shows the latent-MCMC metrics as ``mcmc_T1/<metric>`` (T = 1, the
    model's samples) and ``mode_seek/<metric>`` (T < 1) columns.
    """
    from mege.sampling import mcmc_block_name
    from mege.report import find_runs
    runs = [r for r in find_runs(sweep_dir)
            if (r / "summary.json").is_file() and json.loads((r / "summary.json").read_text()).get("status") == "completed"]
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


def estimators(argv: list[str]) -> int:
    from mege.entropy.catalogue import catalogue
    for entry in catalogue():
        print(f"{entry.name:16s} {entry.target:45s} {entry.summary}")
    print("plug your own: mege train entropy=none entropy._target_=your.module.Class 'allowed_targets=[your.]'")
    return 0


COMMANDS = {"train": train, "resume": resume, "eval": evaluate, "estimators": estimators}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command in COMMANDS:
            return COMMANDS[command](rest) or 0
        check(command in EXTERNAL, f"unknown command '{command}'; known: {', '.join([*COMMANDS, *EXTERNAL])}.")
        module, func = EXTERNAL[command].split(":")
        return getattr(importlib.import_module(module), func)(rest) or 0
    except MegeError as err:
        print(f"mege: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
