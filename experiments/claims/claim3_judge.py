"""Claim 3, stage 2's verdict (claim3_protocol.md, pre-registered at 31c50de) from the runs of claim3_confirmation.yaml.

Claim 3: at equal effective step, more momentum → fewer modes. Primary endpoint: modes covered by the raw
generator (of 8). Two comparisons, paired by seed: SGD β 0.9 − β 0 and Adam β1 0.9 − β1 0, both predicted
< 0. Exact one-sided sign-flip permutation test in the predicted direction
(:func:`mege.leaderboard.confirm.sign_flip_p`), Holm over the two. Seeds 0–5: amendment 1 added seed 5,
since with 5 seeds the smallest adjusted p is 2 × 1/32 > 0.05; with 6 it is 2 × 1/64 = 0.031.
Verdict per comparison: **supported** if the adjusted p ≤ 0.05; **contradicted** if all seeds but at most
one go the other way (≥ 5 of 6); otherwise **not decided**. A comparison missing a seed is not judged.

    python experiments/claims/claim3_judge.py outputs/claims/claim3_confirmation/runs --dest <file.md>
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from mege.leaderboard.confirm import holm, sign_flip_p
from mege.report import Stat, build_report, format_number
from mege.report.write import format_p, pooled_p

SEEDS = ("0", "1", "2", "3", "4", "5")  # 0–4, + 5 by the protocol's amendment 1
ALPHA = 0.05
ROWS = {"sgd_beta0.0": "SGD β 0", "sgd_beta0.5": "SGD β 0.5", "sgd_beta0.9": "SGD β 0.9",
        "adam_beta1_0.0": "Adam β1 0", "recipe": "Adam β1 0.5 (recipe)", "adam_beta1_0.9": "Adam β1 0.9"}
COMPARISONS = (("sgd_beta0.9", "sgd_beta0.0", "SGD β 0.9 − β 0"), ("adam_beta1_0.9", "adam_beta1_0.0", "Adam β1 0.9 − β1 0"))


@dataclass
class Row:
    runs: list  # the completed runs (mege.report.Run), one per seed

    def by_seed(self, metric: str) -> dict[str, float]:
        return {r.seed: r.metrics[metric] for r in self.runs if metric in r.metrics}

    def cell(self, metric: str, pct: bool = False) -> str:
        s = Stat.of(list(self.by_seed(metric).values()))
        k = 100 if pct else 1
        return "—" if s.n == 0 else f"{format_number(k * s.mean)} ± {format_number(k * s.se)}{' %' if pct else ''}"


def load(root: Path) -> dict[str, Row]:
    rows = {}
    for name in ROWS:
        folder = root / name
        runs = build_report(folder).runs if folder.is_dir() else []
        rows[name] = Row([r for r in runs if r.included and r.status == "completed"])
    return rows


def judge(a: dict[str, float], b: dict[str, float]) -> dict:
    """One predicted-negative comparison of ``a − b`` over the seeds both have (p before Holm)."""
    seeds = [s for s in SEEDS if s in a and s in b]
    d = [a[s] - b[s] for s in seeds]
    stat = Stat.of(d)
    return {"n": len(d), "mean": stat.mean, "se": stat.se, "predicted": sum(x < 0 for x in d),
            "other": sum(x > 0 for x in d), "p": sign_flip_p(d, alternative="less") if len(d) == len(SEEDS) else math.nan}


def verdict(c: dict) -> str:
    if c["n"] < len(SEEDS):
        return f"not judged ({c['n']} of {len(SEEDS)} seeds)"
    if c["p_adjusted"] <= ALPHA:
        return "supported"
    if c["other"] >= len(SEEDS) - 1:
        return "contradicted"
    return "not decided"


def markdown(rows: dict[str, Row]) -> str:
    out = ["# Claim 3 at equal effective step — stage 2 (claim3_protocol.md)", "",
           "Raw generator, mean ± s.e. over confirmation seeds 0–5 (EMA beside, not judged); assigned KL beside its "
           "perfect-sampler floor and the exact-sampling G-test p pooled over seeds. SGD rows at the stage-1 η "
           "(claim3_confirmation.yaml), lr = η(1 − β).", "",
           "| row | seeds | modes (of 8) | HQ | assigned KL (floor; G-test p) | EMA modes | EMA HQ |", "|---|---|---|---|---|---|---|"]
    for name, label in ROWS.items():
        row = rows[name]
        floor = Stat.of(list(row.by_seed("assigned_kl_floor").values()))
        floor_text = format_number(floor.mean) if floor.n else "—"
        out.append(f"| {label} | {len(row.runs)} | {row.cell('modes')} | {row.cell('hq_fraction', True)} | "
                   f"{row.cell('assigned_kl')} ({floor_text}; {format_p(pooled_p(row, 'assigned_kl')) if row.runs else '—'}) | "
                   f"{row.cell('ema/modes')} | {row.cell('ema/hq_fraction', True)} |")
    results = {text: judge(rows[a].by_seed("modes"), rows[b].by_seed("modes")) for a, b, text in COMPARISONS}
    adjusted = holm({text: c["p"] for text, c in results.items()})
    out += ["", "| predicted: modes difference < 0 (paired by seed) | mean ± s.e. | seeds fewer / more / tied | "
            "one-sided p | Holm-adjusted p | verdict |", "|---|---|---|---|---|---|"]
    for text, c in results.items():
        c["p_adjusted"] = adjusted[text]
        tied = c["n"] - c["predicted"] - c["other"]
        out.append(f"| {text} | {format_number(c['mean'])} ± {format_number(c['se'])} | {c['predicted']} / {c['other']} / "
                   f"{tied} of {c['n']} | {format_p(c['p'])} | {format_p(c['p_adjusted'])} | **{verdict(c)}** |")
    out += ["", "Rule (pre-registered, with amendment 1's sixth seed): supported if the Holm-adjusted one-sided p ≤ 0.05 "
            "(only possible with all 6 seeds in the predicted direction); contradicted if ≥ 5 of 6 seeds go the other "
            "way; else not decided.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="<out>/runs of mege study experiments/claims/claim3_confirmation.yaml")
    parser.add_argument("--dest", type=Path, required=True, help="the markdown file to write")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"claim3_judge: {args.root} is not a folder; pass <out>/runs of the stage-2 study", file=sys.stderr)
        return 2
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    args.dest.write_text(markdown(load(args.root)))
    print(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
