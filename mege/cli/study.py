"""``mege study SPEC.yaml [options] [overrides]``: run or continue a study (:mod:`mege.study`)."""

from __future__ import annotations

import argparse
import shlex

from mege.errors import check


def main(argv: list[str]) -> int:
    from mege.study import load_spec, run_study
    from mege.study import __doc__ as spec_format

    parser = argparse.ArgumentParser(prog="mege study", description="Run or continue a study: rows × seeds (× λ_H) of "
                                     "`mege train`, resumable; tables by `mege report`.",
                                     epilog=spec_format, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="the study's yaml file")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run (e.g. hydra.launcher.partition=cpu)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time on this machine (default 2)")
    parser.add_argument("--out", help="output folder (default: the spec's out)")
    parser.add_argument("--rows", help="comma-separated rows to run (default: all, in the spec's order)")
    parser.add_argument("--stage", default="all", help="selection, confirmation, runs or all (default)")
    parser.add_argument("--launcher", default="local", choices=["local", "slurm"],
                        help="local processes, or SLURM arrays through configs/launcher/slurm.yaml")
    parser.add_argument("--dry-run", action="store_true", help="print the runs and their commands; run nothing")
    parser.add_argument("--export", metavar="DEST", help="run nothing: copy the study folder's completed runs' small "
                        "files, selection.json rows and times.tsv lines (of --rows) into DEST, e.g. committed run files")
    args = parser.parse_intermixed_args(argv)  # options may sit between the spec and its overrides
    bad = [o for o in args.overrides if "=" not in o]
    check(not bad, f"'{bad[0] if bad else ''}' is not a key=value override; options go before the spec's overrides.")
    check(args.jobs >= 1, f"--jobs {args.jobs}: give at least 1.")
    spec = load_spec(args.spec, args.out)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
    if args.export:
        from mege.study.export import export_run_files
        from mege.study.run import rows_to_run
        counts = export_run_files(spec, spec.out, args.export, rows_to_run(spec, rows))
        print(f"{spec.out} -> {args.export}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return 0
    if not args.dry_run:  # how the study was made, one line per call
        spec.out.mkdir(parents=True, exist_ok=True)
        with open(spec.out / "command.txt", "a") as f:
            f.write(shlex.join(["mege", "study", *argv]) + "\n")
    return run_study(spec, args.stage, rows, args.jobs, args.launcher, args.dry_run, tuple(args.overrides))
