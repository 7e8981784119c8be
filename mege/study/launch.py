"""Running a study's jobs: locally ``--jobs`` at a time, or as SLURM arrays through hydra's submitit launcher.

Each job is ``mege train <overrides> hydra.run.dir=<its folder>`` in its own process (one thread:
``OMP_NUM_THREADS=1`` and ``MKL_NUM_THREADS=1`` unless set), so the run folder's own rules hold
(:mod:`mege.run_dir`): an interrupted run continues from its checkpoint, a completed one is checked
and ends at once (*kept*), and a folder written under another config — completed or not — is refused
in one line. A job that fails is recorded with the last line of its stderr and the others go on.
Every job that trained or failed appends one row to ``<out>/times.tsv``: stage, row, λ_H, seed,
status, wall seconds, start (UTC), error.

On SLURM (``--launcher slurm``, configs/launcher/slurm.yaml) the seeds of one (stage, row, λ_H)
are one ``mege train -m ... seed=a,b,c +launcher=slurm`` array into the same folders
(``hydra.sweep.dir=<row folder>``, ``hydra.sweep.subdir=${seed}``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mege.report.runs import _last_line  # the last non-empty line: a failed run's error
from mege.run_dir import RunDir
from mege.study.plan import Job

TRAIN = [sys.executable, "-m", "mege.cli", "train"]
"""The train command (tests point it at a fake)."""
TIMES = "times.tsv"
TIMES_HEADER = "stage\trow\tlambda_h\tseed\tstatus\twall_s\tstart_utc\terror\n"
LOG = "study.log"


@dataclass
class Outcome:
    """What became of one job: completed (ran now), kept (completed before), failed (with its error)."""

    job: Job
    status: str
    wall_s: float | None = None
    error: str = ""


def completed(job: Job) -> bool:
    """The job's folder says completed (``mege train`` still checks its config before keeping it)."""
    return RunDir(job.path).status() == "completed"


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "1")}


def local_command(job: Job) -> list[str]:
    """``mege train`` into the job's folder. A completed folder is only checked there (and kept), so hydra is
    told not to rewrite its ``.hydra/`` record of how the run was made (``hydra.output_subdir=null``)."""
    keep_record = ["hydra.output_subdir=null"] if completed(job) else []
    return [*TRAIN, *job.overrides, f"hydra.run.dir={job.path}", *keep_record]


class Recorder:
    """Appends one row per finished job to ``<out>/times.tsv`` (thread-safe)."""

    def __init__(self, out: Path):
        self.path = out / TIMES
        self.lock = threading.Lock()

    def add(self, outcome: Outcome, start: float) -> None:
        job = outcome.job
        row = [job.stage, job.row, "" if job.lambda_h is None else f"{job.lambda_h:g}", str(job.seed), outcome.status,
               "" if outcome.wall_s is None else f"{outcome.wall_s:.1f}",
               time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)), outcome.error.replace("\t", " ")]
        with self.lock:
            new = not self.path.is_file()
            with open(self.path, "a") as f:
                f.write((TIMES_HEADER if new else "") + "\t".join(row) + "\n")


def run_one(job: Job, recorder: Recorder) -> Outcome:
    """One job in its own process; its output to ``<folder>/study.log``."""
    was_done = completed(job)
    job.path.mkdir(parents=True, exist_ok=True)
    start, t0 = time.time(), time.perf_counter()
    with open(job.path / LOG, "a" if was_done else "w") as log:
        proc = subprocess.run(local_command(job), env=env(), stdout=log, stderr=subprocess.PIPE, text=True)
        log.write(proc.stderr)
    return finish(job, was_done, proc.returncode, proc.stderr, time.perf_counter() - t0, start, recorder)


def finish(job: Job, was_done: bool, returncode: int, stderr: str, wall: float, start: float,
           recorder: Recorder) -> Outcome:
    """The job's outcome from its folder and its process; recorded unless it was kept."""
    status = RunDir(job.path).status()
    if returncode == 0 and status == "completed":
        outcome = Outcome(job, "kept" if was_done else "completed", None if was_done else wall)
    else:
        outcome = Outcome(job, "failed", wall, _last_line(stderr) or f"exit {returncode}, run status {status!r}")
    if outcome.status != "kept":
        recorder.add(outcome, start)
        print(f"[{outcome.status}] {job.label} ({wall:.0f} s){': ' + outcome.error if outcome.error else ''}", flush=True)
    return outcome


def run_local(jobs: list[Job], n_jobs: int, out: Path) -> list[Outcome]:
    """The jobs, ``n_jobs`` at a time, in order."""
    recorder = Recorder(out)
    with ThreadPoolExecutor(max(1, n_jobs)) as pool:
        return list(pool.map(lambda j: run_one(j, recorder), jobs))


def slurm_groups(jobs: list[Job]) -> list[list[Job]]:
    """Jobs sharing stage, row and λ_H (one SLURM array each), in order."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.stage, job.row, job.lambda_h), []).append(job)
    return list(groups.values())


def slurm_command(group: list[Job]) -> list[str]:
    """``mege train -m <overrides> seed=a,b +launcher=slurm hydra.sweep.dir=<row folder> hydra.sweep.subdir=${seed}``."""
    first = group[0]
    overrides = [o for o in first.overrides if o.partition("=")[0].lstrip("+") != "seed"]
    seeds = ",".join(str(j.seed) for j in group)
    return [*TRAIN, "-m", *overrides, f"seed={seeds}", "+launcher=slurm", f"hydra.sweep.dir={first.path.parent}",
            "hydra.sweep.subdir=${seed}"]


def run_slurm(jobs: list[Job], out: Path) -> list[Outcome]:
    """One array per group (completed runs included: their task checks the config and ends at once)."""
    recorder = Recorder(out)
    outcomes = []
    for group in slurm_groups(jobs):
        was_done = {j.path: completed(j) for j in group}
        start, t0 = time.time(), time.perf_counter()
        proc = subprocess.run(slurm_command(group), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        outcomes += [finish(j, was_done[j.path], proc.returncode, proc.stderr, wall, start, recorder) for j in group]
    return outcomes
