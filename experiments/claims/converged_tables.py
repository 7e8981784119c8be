"""Claims 1–3 on the converged recipe: per-claim tables with paired-by-seed intervals and a verdict.

    python experiments/claims/converged_tables.py outputs/claims_converged/ring8/runs [--dest outputs/claims_converged/converged.md]

Reads the row folders of ``mege study experiments/claims/converged.yaml`` (``<root>/<row>/<seed>/``) and, for
each claim, writes what it predicts, the rows (raw generator and EMA, mean ± s.e. over seeds, the
assigned KL beside its perfect-sampler floor) and the predicted differences, each paired by seed with
its 95 % t interval (mege.leaderboard.paired_difference). The verdict rule, fixed here before the runs:

* a predicted difference is **supported** when its interval excludes 0 on the predicted side,
  **contradicted** when it excludes 0 on the other side, and **not decided** otherwise;
* a claim is supported when all its predicted differences are supported, contradicted when any is
  contradicted, and not decided otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

from mege.leaderboard.points import paired_difference
from mege.report import Stat, build_report, format_number


@dataclass(frozen=True)
class Prediction:
    """``metric(a) − metric(b)`` is predicted to have ``sign`` (+1 or −1)."""

    a: str
    b: str
    metric: str
    sign: int
    text: str


ROW_NAMES = {
    "recipe": "recipe: zero-centred penalty on real (λ 1), energy difference, Adam β1 0.5",
    "wgan_gp": "WGAN-GP on interpolates (λ 10)",
    "no_penalty": "no penalty (energy difference)",
    "hinge": "hinge + zero-centred penalty",
    "hinge_no_penalty": "hinge, no penalty",
    "sgd_beta0.0": "SGD β 0, lr 1e-2",
    "sgd_beta0.5": "SGD β 0.5, lr 2e-2",
    "sgd_beta0.9": "SGD β 0.9, lr 1e-1",
    "adam_beta1_0.0": "Adam β1 0",
    "adam_beta1_0.9": "Adam β1 0.9",
}

CLAIMS = [
    ("Claim 1: the zero-centred penalty on real samples (the pit bottom is flat)",
     "The zero-centred penalty on real samples covers more modes with a lower assigned KL than the "
     "one-centred WGAN-GP penalty on interpolates and than no penalty.",
     ["recipe", "wgan_gp", "no_penalty"],
     [Prediction("recipe", "wgan_gp", "assigned_kl", -1, "real_zero − WGAN-GP, assigned KL < 0"),
      Prediction("recipe", "no_penalty", "assigned_kl", -1, "real_zero − none, assigned KL < 0"),
      Prediction("recipe", "wgan_gp", "modes", +1, "real_zero − WGAN-GP, modes > 0"),
      Prediction("recipe", "no_penalty", "modes", +1, "real_zero − none, modes > 0")]),
    ("Claim 2: hinge vs the plain energy difference, with and without a penalty",
     "The plain energy difference needs the penalty (without it the assigned KL rises); the hinge "
     "bounds the energy gap, so without a penalty it does better than the plain difference.",
     ["recipe", "no_penalty", "hinge", "hinge_no_penalty"],
     [Prediction("no_penalty", "recipe", "assigned_kl", +1, "energy difference: none − penalty, assigned KL > 0"),
      Prediction("hinge_no_penalty", "no_penalty", "assigned_kl", -1, "no penalty: hinge − energy difference, assigned KL < 0")]),
    ("Claim 3: momentum → collapse, at equal effective step size",
     "At equal effective step (heavy-ball SGD with lr·(1 − β) = 1e-2 fixed; Adam β1 at one lr), more "
     "momentum covers fewer modes with a higher assigned KL.",
     ["sgd_beta0.0", "sgd_beta0.5", "sgd_beta0.9", "adam_beta1_0.0", "recipe", "adam_beta1_0.9"],
     [Prediction("sgd_beta0.9", "sgd_beta0.0", "modes", -1, "SGD β 0.9 − β 0, modes < 0"),
      Prediction("sgd_beta0.9", "sgd_beta0.0", "assigned_kl", +1, "SGD β 0.9 − β 0, assigned KL > 0"),
      Prediction("adam_beta1_0.9", "adam_beta1_0.0", "modes", -1, "Adam β1 0.9 − β1 0, modes < 0"),
      Prediction("adam_beta1_0.9", "adam_beta1_0.0", "assigned_kl", +1, "Adam β1 0.9 − β1 0, assigned KL > 0")]),
]


def _error(run_dir: Path) -> str:
    """' (the error's first clause)' from a failed run's summary.json, else ''."""
    try:
        error = json.loads((run_dir / "summary.json").read_text()).get("error") or ""
    except (OSError, ValueError):
        return ""
    return f" ({error.split(';')[0]})" if error else ""


def load_rows(root: Path) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, list[str]]]:
    """({label: {seed: metrics}} over the completed runs of each row folder, {label: ["seed s: status", …]} for the others)."""
    rows, other = {}, {}
    for label in ROW_NAMES:
        folder = root / label
        if folder.is_dir():
            runs = build_report(folder).runs
            rows[label] = {r.seed: r.metrics for r in runs if r.included and r.status == "completed"}
            other[label] = [f"seed {r.seed}: {r.status}{_error(r.path)}" for r in runs if not (r.included and r.status == "completed")]
    return rows, other


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and s.e. (ddof = 1) of the finite values (mege.report.Stat)."""
    stat = Stat.of([v for v in values if not math.isnan(v)])
    return stat.mean, stat.se


def cell(by_seed: dict[str, dict[str, float]], metric: str, pct: bool = False) -> str:
    mean, se = mean_se([m.get(metric, math.nan) for m in by_seed.values()])
    if math.isnan(mean):
        return "—"
    if pct:
        return f"{100 * mean:.1f} ± {100 * se:.1f} %" if not math.isnan(se) else f"{100 * mean:.1f} %"
    return f"{format_number(mean)} ± {format_number(se)}" if not math.isnan(se) else format_number(mean)


def verdict_of(sign: int, low: float, high: float, n: int) -> str:
    if n < 2 or math.isnan(low):
        return "not decided (n < 2)"
    if (sign > 0 and low > 0) or (sign < 0 and high < 0):
        return "supported"
    if (sign > 0 and high < 0) or (sign < 0 and low > 0):
        return "contradicted"
    return "not decided (interval includes 0)"


def claim_markdown(title: str, predicts: str, labels: list[str], predictions: list[Prediction], rows: dict, other: dict) -> str:
    out = [f"## {title}", "", f"**Predicts.** {predicts}", ""]
    out += ["| row | seeds | modes (of 8) | HQ | assigned KL (floor) | EMA modes | EMA HQ | EMA assigned KL |",
            "|---|---|---|---|---|---|---|---|"]
    for label in labels:
        by_seed = rows.get(label, {})
        if not by_seed:
            why = "; ".join(other.get(label, [])) or "not run"
            out.append(f"| {ROW_NAMES[label]} | 0 | {why} | | | | | |")
            continue
        floor = mean_se([m.get("assigned_kl_floor", math.nan) for m in by_seed.values()])[0]
        out.append(f"| {ROW_NAMES[label]} | {len(by_seed)} | {cell(by_seed, 'modes')} | {cell(by_seed, 'hq_fraction', True)} | "
                   f"{cell(by_seed, 'assigned_kl')} ({format_number(floor)}) | {cell(by_seed, 'ema/modes')} | "
                   f"{cell(by_seed, 'ema/hq_fraction', True)} | {cell(by_seed, 'ema/assigned_kl')} |")
    out += ["", "| predicted difference (raw generator, paired by seed) | mean [95 % t interval] (n) | verdict |", "|---|---|---|"]
    verdicts = []
    for p in predictions:
        a = {s: m.get(p.metric, math.nan) for s, m in rows.get(p.a, {}).items()}
        b = {s: m.get(p.metric, math.nan) for s, m in rows.get(p.b, {}).items()}
        d = paired_difference(a, b)
        v = verdict_of(p.sign, d.low, d.high, d.n)
        verdicts.append(v)
        out.append(f"| {p.text} | {d.cell()} | {v} |")
    if any(v == "contradicted" for v in verdicts):
        overall = "**contradicted** by at least one predicted difference"
    elif all(v == "supported" for v in verdicts):
        overall = "**supported**: every predicted difference's interval excludes 0 on the predicted side"
    else:
        overall = "**not decided**: " + f"{sum(v == 'supported' for v in verdicts)} of {len(verdicts)} predicted differences supported, none contradicted"
    out += ["", f"**Verdict (rule in the header):** {overall}.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="<out>/runs of mege study experiments/claims/converged.yaml")
    parser.add_argument("--dest", type=Path, default=Path("outputs/claims_converged/converged.md"),
                        help="where the table goes (default outside the committed tree; experiments/claims/converged.md "
                             "holds hand-written sections: rebuild elsewhere and merge)")
    parser.add_argument("--note", default="", help="text placed under the title (command, wall times, reading)")
    args = parser.parse_args(argv)
    rows, other = load_rows(args.root)
    out = [f"# The seed's claims 1–3 on the converged `{args.root.name}` recipe (issue 13)", ""]
    if args.note:
        out += [args.note, ""]
    out += [__doc__.split("\n\n", 2)[2].strip(), ""]
    out += [claim_markdown(*claim, rows, other) for claim in CLAIMS]
    failed = [f"`{label}` {note}" for label, notes in other.items() for note in notes]
    if failed:
        out += ["Runs not completed (no metrics; their rows count only the completed seeds): " + "; ".join(failed) + ".", ""]
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    args.dest.write_text("\n".join(out))
    print(args.dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
