"""The demo job (`make demo`): the toy benchmark's two recipes, one seed each, two runs at a time.

Runs ``mege study experiments/toy/demo.yaml`` (``mege train experiment=grid25 seed=0`` and
``experiment=ring8 seed=0`` side by side, one thread each; resumable) and prints the table of
``experiments/toy/tables.py`` (modes, HQ fraction, reverse KL beside its floor, assigned KL beside its
floor; raw generator and its EMA, no MCMC), written to ``outputs/demo/results.md``. The committed
five-seed table is ``experiments/toy/results.md`` (``mege study experiments/toy/benchmark.yaml``).

    python experiments/demo/demo.py [--out outputs/demo] [overrides ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

TOY = Path(__file__).resolve().parents[1] / "toy"
sys.path.insert(0, str(TOY))
import tables  # noqa: E402  (experiments/toy/tables.py)

from mege.cli import main as mege  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = "outputs/demo"
    if "--out" in argv:
        i = argv.index("--out")
        out, argv = argv[i + 1], argv[:i] + argv[i + 2:]
    code = mege(["study", str(TOY / "demo.yaml"), "--out", out, *argv])
    return tables.main([out]) or code


if __name__ == "__main__":
    sys.exit(main())
