"""Write experiments/ablation/leaderboard_<experiment>.md from the output folder of an ablation study spec.

    mege study experiments/ablation/ring8_collapse.yaml            # writes outputs/ablation/ring8_collapse
    python experiments/ablation/assemble.py outputs/ablation/ring8_collapse [--dest experiments/ablation]

Copies the frontier plot next to it and stitches: the study command, the wall time per row and stage
(``times.tsv``), the runs finished and not finished, the chosen λ_H (``selection.json``), then the
frontier table with the operating points and the leaderboard table with its paired intervals, as the
spec's ``mege report --frontier lambda_h`` / ``--leaderboard`` wrote them (``<study>/report/``).
Rerunnable at any point of a partial study. ``--copy-runs DIR`` also copies each run's small files
(summary.json, config.yaml, overrides, metrics.jsonl; no checkpoint) to DIR, so that
`mege report DIR/selection --frontier lambda_h` and `mege report DIR/confirmation --leaderboard`
rebuild the tables from the committed copy.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from mege.report import build_report


def count(folder: Path) -> tuple[int, int, list[str]]:
    if not folder.is_dir():
        return 0, 0, []
    runs = build_report(folder).runs
    other = [f"{r.name} ({r.reason})" for r in runs if not r.included]
    return len(runs), sum(r.included for r in runs), other


RUN_FILES = ("summary.json", "config.yaml", ".hydra/overrides.yaml", "metrics.jsonl")


STAGES = ("selection", "confirmation")


def copy_runs(study: Path, dest: Path) -> int:
    """Copy the small files of every run of the study's two stages; returns the run count."""
    n = 0
    for summary in sorted(study.glob("*/*/*/*/summary.json")):
        run = summary.parent
        if run.relative_to(study).parts[0] not in STAGES:
            continue
        n += 1
        for name in RUN_FILES:
            if (run / name).is_file():
                target = dest / run.relative_to(study) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run / name, target)
    return n


def body(path: Path) -> str:
    if not path.is_file():
        return "_(not made yet)_\n"
    lines = path.read_text().splitlines()
    return "\n".join("#" + line if line.startswith("#") else line for line in lines[1:]) + "\n"  # demote headings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--dest", type=Path, default=Path("experiments/ablation"))
    parser.add_argument("--note", default="", help="text placed under the title (status, reading)")
    parser.add_argument("--copy-runs", type=Path, default=None, help="also copy each run's small files here")
    args = parser.parse_args(argv)
    name = args.study.name
    args.dest.mkdir(parents=True, exist_ok=True)
    png = args.study / "report" / "frontier" / "frontier.png"
    plot = None
    if png.is_file():
        plot = args.dest / f"frontier_{name}.png"
        shutil.copyfile(png, plot)
    command = (args.study / "command.txt").read_text().strip() if (args.study / "command.txt").is_file() else "?"
    times = (args.study / "times.tsv").read_text().strip().splitlines()[1:] if (args.study / "times.tsv").is_file() else []
    chosen = json.loads((args.study / "selection.json").read_text())["rows"] if (args.study / "selection.json").is_file() else {}
    out = [f"# Estimator leaderboard on `{name}` (issue 13)", ""]
    if args.note:
        out += [args.note, ""]
    out += ["Rule, grids, protocol and pilots: [README.md](README.md). Command (resumable: the same command continues a "
            "stopped study):", "", "```bash", command, "```", ""]
    out += ["Wall time per stage and row (`times.tsv`: runs that trained or failed, their summed and longest wall "
            "time; two runs at a time, one thread each):", ""]
    out += ["| stage | row | runs | failed | summed wall | longest |", "|---|---|---|---|---|---|"]
    rows: dict[tuple[str, str], list[list[str]]] = {}
    for line in times:
        cells = line.split("\t")
        rows.setdefault((cells[0], cells[1]), []).append(cells)
    for (stage, row), cells in rows.items():
        walls = [float(c[5]) for c in cells if c[5]]
        out.append(f"| {stage} | {row} | {len(cells)} | {sum(c[4] == 'failed' for c in cells)} | {sum(walls):.0f} s | "
                   f"{max(walls, default=0):.0f} s |")
    if not rows:
        out.append("| (none yet) | | | | | |")
    out.append("")
    for stage in STAGES:
        found, done, other = count(args.study / stage)
        out.append(f"- {stage}: {found} run folders, {done} completed" + (f"; not aggregated: {'; '.join(other)}" if other else "") + ".")
    if chosen:
        out.append("- operating points: " + "; ".join(
            f"`{k}` → {'λ_H = %g' % v['lambda_h'] if v['lambda_h'] is not None else 'none'}" for k, v in chosen.items()) + ".")
    out.append("")
    out += ["## Frontier", ""]
    if plot:
        out += [f"![frontier]({plot.name})", ""]
    out.append(body(args.study / "report" / "frontier" / "frontier.md").replace("![frontier](frontier.png)\n", ""))
    out += ["## Leaderboard (fresh seeds 10–14)", ""]
    out.append(body(args.study / "report" / "leaderboard" / "leaderboard.md"))
    dest = args.dest / f"leaderboard_{name}.md"
    dest.write_text("\n".join(out))
    if args.copy_runs:
        print(f"{copy_runs(args.study, args.copy_runs)} runs' small files -> {args.copy_runs}")
    print(dest, plot or "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
