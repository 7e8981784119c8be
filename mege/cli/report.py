"""``mege report <sweep_dir> ...``: aggregate a sweep into tables and plots (:mod:`mege.report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mege.committed import refuse_default_destination
from mege.report import DEFAULT_PLOT_PATTERN, build_report, write_report


def main(argv: list[str]) -> int:
    """``mege report <sweep_dir> [--by k1,k2] [--out DIR] [--plot m1,m2] [--include-incomplete] [--frontier PARAM] [--leaderboard]``."""
    parser = argparse.ArgumentParser(prog="mege report", description="Aggregate a sweep folder into report.md, report.csv and plots.")
    parser.add_argument("sweep_dir", help="folder hydra multirun wrote, e.g. multirun/2025-01-01/12-00-00")
    parser.add_argument("--by", help="comma-separated keys to group by (default: the swept keys except seed)")
    parser.add_argument("--out", "--dest", dest="out", help="output folder (default: the sweep folder, refused when it holds committed files)")
    parser.add_argument("--plot", help=f"comma-separated metrics to plot (default: those matching '{DEFAULT_PLOT_PATTERN}')")
    parser.add_argument("--include-incomplete", action="store_true", help="aggregate failed/incomplete runs' last evaluation in metrics.jsonl")
    parser.add_argument("--frontier", metavar="PARAM", help="also frontier.md/.png: modes, HQ, assigned KL against PARAM (e.g. lambda_h) per estimator family, and the operating points (mege/leaderboard.py)")
    parser.add_argument("--min-hq", type=float, default=None, help="with --frontier: the rule's HQ threshold, a fraction (default 0.80); e.g. a study's min_hq_from threshold, recorded as hq_threshold in its selection.json")
    parser.add_argument("--leaderboard", action="store_true", help="also leaderboard.md: per estimator, raw and EMA, paired-by-seed 95%% intervals to none and to the best (mege/leaderboard.py)")
    parser.add_argument("--confirm", action="store_true", help="also confirmation.md: each estimator against none with exact paired tests, Holm, bootstrap intervals and a verdict (mege/leaderboard/confirm.py)")
    parser.add_argument("--family", type=int, default=None, help="with --confirm: the pre-registered number of tests in the Holm family (tests not run count as p = 1)")
    args = parser.parse_args(argv)

    if not args.out:
        refuse_default_destination(args.sweep_dir, "--out")
    by = [k.strip() for k in args.by.split(",") if k.strip()] if args.by else None
    report = build_report(args.sweep_dir, by=by, include_incomplete=args.include_incomplete)
    plot_names = [m.strip() for m in args.plot.split(",") if m.strip()] if args.plot else None
    written = write_report(report, Path(args.out) if args.out else Path(args.sweep_dir), plot_names)
    if args.frontier or args.leaderboard:
        from mege import leaderboard
        out = Path(args.out) if args.out else Path(args.sweep_dir)
        if args.frontier:
            min_hq = {} if args.min_hq is None else {"min_hq": args.min_hq}
            written.update(leaderboard.write_frontier(report.runs, args.frontier, out, **min_hq))
        if args.leaderboard:
            written.update(leaderboard.write_leaderboard(report.runs, args.frontier or "lambda_h", out))
    if args.confirm:
        from mege.leaderboard.confirm import write_confirmation
        written.update(write_confirmation(report.runs, Path(args.out) if args.out else Path(args.sweep_dir),
                                          args.frontier or "lambda_h", args.family))
    n_in = sum(r.included for r in report.runs)
    print(f"{len(report.runs)} runs, {n_in} aggregated in {len(report.groups)} groups, {len(report.runs) - n_in} excluded")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0
