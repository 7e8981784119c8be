"""A narrow markdown table from a ``mege report`` CSV: chosen metrics as ``mean ± s.e.`` columns.

    python tools/compact_table.py <report.csv> <metric> [<metric> ...] [--sort <metric>]

The first columns are the group keys and ``runs``; each metric shows ``mean ± s.e.`` (``—`` for
the s.e. when n = 1, ``(n=k)`` when some runs lack it), as in the full report.
"""

from __future__ import annotations

import argparse
import csv
import math

from mege.report import Stat, format_cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("metrics", nargs="+")
    parser.add_argument("--sort", help="metric whose mean orders the rows (ascending)")
    args = parser.parse_args()
    with open(args.csv) as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0]) if rows else []
    keys = fields[: fields.index("runs")]
    unknown = [m for m in args.metrics if f"{m}:mean" not in fields]
    if unknown:
        raise SystemExit(f"compact_table: unknown metric(s) {', '.join(unknown)}; the CSV has "
                         f"{', '.join(sorted({f.split(':')[0] for f in fields if ':' in f}))}")
    if args.sort:
        rows.sort(key=lambda r: float(r[f"{args.sort}:mean"]) if r[f"{args.sort}:mean"] else math.inf)
    print("| " + " | ".join([*keys, "runs", *args.metrics]) + " |")
    print("|" + "---|" * (len(keys) + 1 + len(args.metrics)))
    for r in rows:
        cells = [format_cell(Stat(float(r[f"{m}:mean"] or "nan"), float(r[f"{m}:se"] or "nan"), int(r[f"{m}:n"] or 0)),
                             int(r["runs"])) for m in args.metrics]
        print("| " + " | ".join([*(r[k] for k in keys), r["runs"], *cells]) + " |")


if __name__ == "__main__":
    main()
