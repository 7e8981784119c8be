"""Claim 3, stage 1's rule (claim3_protocol.md, pre-registered at 31c50de), and the stage-2 spec it fixes.

Heavy-ball SGD at equal effective step η = lr/(1 − β). Rule: the η with the highest mean number of modes
covered by the raw generator, averaged over all three β and both selection seeds (so no β is favoured);
ties → the higher mean HQ fraction, then the smaller η. A run that diverged (status failed, or no finite
modes) counts as 0 modes, 0 HQ. Nothing is chosen until all 3 η × 3 β × 2 seeds have run.

    python experiments/claims/claim3_select.py experiments/claims/run_files/claim3_selection/runs \\
        [--spec experiments/claims/claim3_confirmation.yaml]

``--spec`` writes stage 2 (rows sgd_beta{0.0,0.5,0.9} at lr = η(1 − β), recipe, adam_beta1_0.0,
adam_beta1_0.9; seeds 0–5 by the protocol's amendment 1) for ``mege study``; it refuses to replace a different existing file.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from mege.report import build_report

ETAS = (3e-3, 1e-2, 3e-2)
BETAS = (0.0, 0.5, 0.9)
SELECTION_SEEDS = ("100", "101")
CONFIRMATION_SEEDS = (0, 1, 2, 3, 4, 5)  # 0–4, + 5 by the protocol's amendment 1


def effective_step(lr: float, beta: float) -> float:
    """η = lr/(1 − β), rounded to the grid's two significant digits."""
    return float(f"{lr / (1 - beta):.2g}")


def outcome(run) -> tuple[float, float]:
    """(modes, HQ fraction) of one run's raw generator; a diverged or failed run is (0, 0)."""
    modes, hq = run.metrics.get("modes", math.nan), run.metrics.get("hq_fraction", math.nan)
    if run.status != "completed" or not math.isfinite(modes):
        return 0.0, 0.0
    return float(modes), float(hq) if math.isfinite(hq) else 0.0


def table(runs) -> dict[float, dict[tuple[float, str], tuple[float, float]]]:
    """{η: {(β, seed): (modes, HQ)}} of the selection runs."""
    cells: dict[float, dict] = {}
    for run in runs:
        lr, beta = float(run.overrides["optim.generator.lr"]), float(run.overrides["optim.generator.momentum"])
        cells.setdefault(effective_step(lr, beta), {})[(beta, run.seed)] = outcome(run)
    return cells


def missing(cells) -> list[str]:
    return [f"η {eta:g} β {beta:g} seed {seed}" for eta in ETAS for beta in BETAS for seed in SELECTION_SEEDS
            if (beta, seed) not in cells.get(eta, {})]


def choose(cells) -> tuple[float, dict[float, tuple[float, float]]]:
    """(chosen η, {η: (mean modes, mean HQ)}) by the protocol's rule; every cell must be there."""
    gaps = missing(cells)
    if gaps:
        raise ValueError(f"stage 1 is incomplete ({len(gaps)} of {len(ETAS) * len(BETAS) * len(SELECTION_SEEDS)} "
                         f"runs missing: {', '.join(gaps)}); run `mege study experiments/claims/claim3_selection.yaml`")
    means = {eta: tuple(sum(v[i] for v in cells[eta].values()) / len(cells[eta]) for i in (0, 1)) for eta in ETAS}
    best = max(ETAS, key=lambda eta: (means[eta][0], means[eta][1], -eta))
    return best, means


def stage2_spec(eta: float) -> str:
    sgd = "\n".join(f"  sgd_beta{beta}: [+sweep=claim3_equal_step_sgd, optim.generator.momentum={beta}, "
                    f"optim.generator.lr={eta * (1 - beta):.3g}]" for beta in BETAS)
    return (f"# Claim 3, stage 2 (experiments/claims/claim3_protocol.md): the rows at the η = {eta:g} that stage 1 chose\n"
            "# (written by experiments/claims/claim3_select.py), judged on confirmation seeds 0–5 (amendment 1).\n"
            "#   mege study experiments/claims/claim3_confirmation.yaml --jobs 2\n"
            "name: claim3_confirmation\nout: outputs/claims/claim3_confirmation\n"
            "base: [experiment=ring8, train.progress=false]\nrows:\n"
            "  recipe: []\n" + sgd + "\n"
            '  adam_beta1_0.0: ["+sweep=claim3_equal_step_adam", "optim.generator.betas=[0.0,0.9]"]\n'
            '  adam_beta1_0.9: ["+sweep=claim3_equal_step_adam", "optim.generator.betas=[0.9,0.9]"]\n'
            f"seeds: [{', '.join(map(str, CONFIRMATION_SEEDS))}]\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="the stage-1 run folders (claim3_selection's runs/)")
    parser.add_argument("--spec", type=Path, help="write the stage-2 study spec here")
    args = parser.parse_args(argv)
    try:
        eta, means = choose(table(build_report(args.runs).runs))
    except ValueError as err:
        print(f"claim3_select: {err}", file=sys.stderr)
        return 2
    for e in ETAS:
        print(f"η {e:g}: mean modes {means[e][0]:.3g} of 8, mean HQ {100 * means[e][1]:.1f} % (3 β × 2 seeds)")
    print(f"chosen η = {eta:g}")
    if args.spec:
        text = stage2_spec(eta)
        if args.spec.exists() and args.spec.read_text() != text:
            print(f"claim3_select: {args.spec} exists and differs; pass another --spec path", file=sys.stderr)
            return 2
        args.spec.write_text(text)
        print(f"stage 2 spec: {args.spec}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
