"""The demo job (`make demo`): the toy benchmark's two recipes, one seed each, two runs at a time.

Runs ``mege train experiment=grid25 seed=0`` and ``mege train experiment=ring8 seed=0`` in
parallel (one thread each) and prints the table of :mod:`experiments.toy_benchmark` (modes,
HQ fraction, reverse KL beside its floor, assigned KL beside its floor; raw generator and its
EMA, no MCMC), written to ``outputs/demo/results.md``. The committed five-seed table is
``experiments/toy/results.md`` (``python experiments/toy_benchmark.py``).

    python experiments/demo.py [--seeds 0] [--out outputs/demo] [overrides ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import toy_benchmark  # noqa: E402  (the benchmark script beside this one)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--seeds" not in argv:
        argv = ["--seeds", "0", *argv]
    if "--out" not in argv:
        argv = ["--out", "outputs/demo", *argv]
    return toy_benchmark.main(["--experiments", "grid25", "ring8", *argv])


if __name__ == "__main__":
    sys.exit(main())
