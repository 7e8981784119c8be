"""Command line: ``mege <command> ...``.

  mege train [hydra overrides]     train one run (``-m`` for a sweep)
  mege resume <run_dir>            continue a run from its checkpoint
  mege eval <run_dir>              re-evaluate a run's checkpoint
  mege estimators                  list the entropy estimators (configs/entropy/)
  mege data mnist --dest DIR       download and verify MNIST
  mege classifier train            train the Stacked MNIST mode classifier
  mege sample <run_dir> --steps K  latent-space MCMC from the learned energy
  mege report <sweep_dir>          aggregate a sweep into tables and plots
  mege study SPEC.yaml [--jobs N]  run or continue a study: rows × seeds (× λ_H), resumable, then its tables
"""

from __future__ import annotations

import sys

from mege.cli import classifier, data, estimators, evaluate, report, sample, study, train
from mege.errors import MegeError, check

COMMANDS = {"train": train.train, "resume": train.resume, "eval": evaluate.evaluate,
            "estimators": estimators.estimators, "data": data.main, "classifier": classifier.main,
            "sample": sample.main, "report": report.main, "study": study.main}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    try:
        check(command in COMMANDS, f"unknown command '{command}'; known: {', '.join(COMMANDS)}.")
        return COMMANDS[command](rest) or 0
    except MegeError as err:
        print(f"mege: error: {err}", file=sys.stderr)
        return 2
