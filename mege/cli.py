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

from mege.config import check_group_choice, config_dir, group_options
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
    parser = argparse.ArgumentParser(prog="mege eval", description="re-evaluate a run's checkpoint")
    parser.add_argument("run_dir")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. metric.n_samples=10000")
    parser.add_argument("--mcmc-steps", type=int, default=0,
                        help="also report the metric on samples refined by K latent-MALA steps (mege.sampling)")
    parser.add_argument("--temperature", type=float, default=1.0, help="temperature of the latent MCMC target")
    args = parser.parse_args(argv)
    from mege.train import load_run
    check(all("=" in o for o in args.overrides), "overrides must look like key=value (e.g. metric.n_samples=10000).")
    trainer = load_run(args.run_dir, **dict(o.split("=", 1) for o in args.overrides))
    result = trainer.evaluate(plot=False)
    if args.mcmc_steps > 0:
        from mege.sampling import refined_metric
        result["refined"] = refined_metric(trainer, args.mcmc_steps, seed=trainer.cfg.train.eval_seed,
                                           temperature=args.temperature)[0]
    out = Path(args.run_dir) / "eval.json"
    out.write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps(result, indent=2, default=float))
    print(f"written {out}")
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
