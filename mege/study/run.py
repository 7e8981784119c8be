"""Running a study end to end: stages in order, the selection between them, the tables after them."""

from __future__ import annotations

import shlex
from pathlib import Path

from mege.errors import MegeError, check
from mege.study import launch
from mege.study.launch import Outcome
from mege.study.plan import Job, expand
from mege.study.select import read_selection, select
from mege.study.spec import Spec

REPORT = "report"


def rows_to_run(spec: Spec, rows: list[str] | None) -> list[str]:
    if not rows:
        return list(spec.rows)
    unknown = [r for r in rows if r not in spec.rows]
    check(not unknown, f"unknown row(s) {', '.join(unknown)}; rows of {spec.path}: {', '.join(spec.rows)}.")
    return [r for r in spec.rows if r in rows]


def _stages(spec: Spec, stage: str) -> tuple[str, ...]:
    if stage == "all":
        return spec.stages
    check(stage in spec.stages, f"--stage {stage}: this study's stages are {', '.join(spec.stages)} (or all).")
    return (stage,)


def _execute(jobs: list[Job], launcher: str, n_jobs: int, out: Path, dry_run: bool) -> list[Outcome]:
    if dry_run:
        if launcher == "slurm":
            for group in launch.slurm_groups(jobs):
                print(shlex.join(launch.slurm_command(group)))
        for job in jobs:
            state = "completed" if launch.completed(job) else "to run"
            print(f"[{state}] {job.label}: {shlex.join(launch.local_command(job)) if launcher == 'local' else job.path}")
        return []
    return launch.run_slurm(jobs, out) if launcher == "slurm" else launch.run_local(jobs, n_jobs, out)


def rule_threshold(spec: Spec, out: Path) -> float | None:
    """The selection rule's HQ threshold: ``min_hq``, or under ``min_hq_from`` the ``hq_threshold`` that
    ``selection.json`` records (None while the reference row's selection runs are not all completed)."""
    if "min_hq_from" not in spec.rule:
        return float(spec.rule["min_hq"])
    recorded = {e["hq_threshold"] for e in read_selection(out).values() if "hq_threshold" in e}
    return recorded.pop() if len(recorded) == 1 else None


def _report_args(spec: Spec, out: Path, args: tuple[str, ...]) -> list[str] | None:
    """A report's arguments, a frontier given the rule's own HQ threshold (``--min-hq``) unless the spec sets
    one; None when that threshold is not known yet."""
    if "--frontier" not in args or "--min-hq" in args:
        return list(args)
    threshold = rule_threshold(spec, out)
    return None if threshold is None else [*args, "--min-hq", repr(threshold)]


def write_reports(spec: Spec, out: Path) -> list[str]:
    """Each of the spec's ``mege report`` calls whose stage has runs, into ``<out>/report/<name>/``; a frontier
    is drawn at the selection rule's HQ threshold (:func:`rule_threshold`), so its operating points are the
    study's choices."""
    from mege.cli.report import main as report_main

    problems = []
    for item in spec.reports:
        runs = out / item.runs
        if not runs.is_dir():
            continue
        args = _report_args(spec, out, item.args)
        if args is None:
            ref = spec.rule["min_hq_from"]["row"]
            problems.append(f"report {item.name}: not drawn yet; the rule's HQ threshold waits for row {ref}'s "
                            f"selection runs (rerun the same command once they are completed)")
            continue
        try:
            report_main([str(runs), *args, "--out", str(out / REPORT / item.name)])
        except MegeError as err:
            problems.append(f"report {item.name}: {err}")
    return problems


def run_study(spec: Spec, stage: str = "all", rows: list[str] | None = None, n_jobs: int = 2,
              launcher: str = "local", dry_run: bool = False, extra: tuple[str, ...] = ()) -> int:
    """Run (or continue) the study; 0 when every run completed, 1 when some failed or some confirmation waits
    for an incomplete selection (a row the rule gave no λ_H is listed, not an error)."""
    check(launcher in ("local", "slurm"), f"--launcher {launcher}: choose local or slurm.")
    out = spec.out.resolve()
    names, stages = rows_to_run(spec, rows), _stages(spec, stage)
    if not dry_run:
        out.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    waiting: list[str] = []  # rows whose confirmation waits for their selection runs
    unchosen: list[str] = []  # rows the rule gave no λ_H
    for name in stages:
        if name == "confirmation":
            chosen = select(spec, out, names, extra) if not dry_run else read_selection(out)
            for row in names:
                entry = chosen.get(row) or {"reason": "no selection yet", "completed": 0, "runs": 1}
                if entry.get("lambda_h") is None:
                    incomplete = entry.get("completed", 0) < entry.get("runs", 0)
                    (waiting if incomplete else unchosen).append(f"{row}: no confirmation runs ({entry.get('reason')})")
            jobs = expand(spec, out, name, names, extra, {r: (chosen.get(r) or {}).get("lambda_h") for r in names})
        else:
            jobs = expand(spec, out, name, names, extra)
        print(f"{spec.name}: {name}, {len(jobs)} runs ({sum(launch.completed(j) for j in jobs)} completed) -> {out / name}",
              flush=True)
        outcomes += _execute(jobs, launcher, n_jobs, out, dry_run)
        if name == "selection" and not dry_run:
            for row, entry in select(spec, out, names, extra).items():
                if row in names:
                    value = entry["lambda_h"]
                    print(f"selection {row}: " + ("none" if value is None else f"λ_H = {value:g}") + f" ({entry['reason']})")
    if dry_run:
        for line in waiting + unchosen:
            print(f"  {line}")
        return 0
    problems = write_reports(spec, out)
    failed = [o for o in outcomes if o.status == "failed"]
    ran = sum(o.status == "completed" for o in outcomes)
    print(f"{spec.name}: {ran} ran, {sum(o.status == 'kept' for o in outcomes)} kept, {len(failed)} failed; "
          f"wall times in {out / launch.TIMES}; tables in {out / REPORT}")
    for line in waiting + unchosen + problems:
        print(f"  {line}")
    if failed:
        print("failed runs (rerun the same command to retry; a changed config needs a new --out):")
        for o in failed:
            print(f"  {o.job.label} ({o.job.path}): {o.error}")
    return 1 if failed or waiting else 0
