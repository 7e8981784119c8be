"""A study's jobs: each (stage, row, λ_H, seed) is one ``mege train`` run in its own stable folder.

``<out>/<stage>/<row>/<seed>/`` for a row without λ_H sweep, ``<out>/<stage>/<row>/lambda_<λ>/<seed>/`` for
one with (stage = ``runs`` in a one-stage study, ``selection`` / ``confirmation`` in a two-stage one).
A row's λ_H grid is a list in the spec or ``facts``: its estimator's own grid
(:func:`mege.entropy.facts.facts_of`, looked up on the run's config search path), and an estimator
whose facts say ``needs_noisy_generator`` gets ``generator=noisy_mlp`` unless the row chooses a generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mege.entropy.facts import Facts, config_dirs, facts_of
from mege.errors import check
from mege.study.spec import FACTS, Row, Spec


@dataclass(frozen=True)
class Job:
    """One run of the study."""

    stage: str
    row: str
    lambda_h: float | None
    seed: int
    overrides: tuple[str, ...]
    path: Path

    @property
    def label(self) -> str:
        lam = "" if self.lambda_h is None else f" λ_H={self.lambda_h:g}"
        return f"{self.stage}/{self.row}{lam} seed {self.seed}"


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def choice(overrides: tuple[str, ...] | list[str], key: str) -> str | None:
    """The last value given to ``key`` (e.g. ``entropy``) among the overrides, or None."""
    values = [o.partition("=")[2] for o in overrides if _key(o) == key]
    return values[-1] if values else None


def row_facts(spec: Spec, row: Row) -> Facts | None:
    """The facts of the row's estimator (its ``entropy=`` choice, on the row's search path), or None without one."""
    overrides = (*spec.base, *row.overrides)
    name = choice(overrides, "entropy")
    return None if name is None else facts_of(name, config_dirs(overrides))


def row_grid(spec: Spec, row: Row) -> tuple[float, ...] | None:
    """The row's λ_H values: its list, its estimator's facts (``facts``), or None (no λ_H sweep)."""
    if row.lambda_h != FACTS:
        return row.lambda_h
    facts = row_facts(spec, row)
    check(facts is not None, f"study spec {spec.path}: row {row.name} takes its λ_H grid from its estimator's facts "
                             f"but chooses no estimator; add entropy=<name> to it or give it lambda_h: [values].")
    return facts.lambda_h


def row_overrides(spec: Spec, row: Row, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """base + row (+ what the estimator needs) + the command line's extra overrides."""
    overrides = (*spec.base, *row.overrides)
    facts = row_facts(spec, row)
    needed = tuple(facts.overrides) if facts is not None and choice(overrides, "generator") is None else ()
    return (*overrides, *needed, *extra)


def lambda_dir(value: float) -> str:
    return f"lambda_{value:g}"


def job(spec: Spec, out: Path, stage: str, row: Row, lam: float | None, seed: int, extra: tuple[str, ...]) -> Job:
    overrides = row_overrides(spec, row, extra) + ((f"lambda_h={lam:g}",) if lam is not None else ()) + (f"seed={seed}",)
    folder = out / stage / row.name / (lambda_dir(lam) if lam is not None else "") / str(seed)
    return Job(stage, row.name, lam, seed, overrides, folder)


def expand(spec: Spec, out: Path, stage: str, rows: list[str], extra: tuple[str, ...] = (),
           chosen: dict[str, float | None] | None = None) -> list[Job]:
    """The jobs of one stage, row by row (then λ_H, then seed), so a stopped queue leaves whole rows.
    ``chosen``: the confirmation's λ_H per row (rows without one get no jobs)."""
    out_jobs = []
    for name in rows:
        row = spec.rows[name]
        if stage == "confirmation":
            lam = (chosen or {}).get(name)
            values: tuple[float | None, ...] = () if lam is None else (lam,)
            seeds = spec.confirmation_seeds
        else:
            values = row_grid(spec, row) or (None,)
            seeds = spec.selection_seeds if stage == "selection" else spec.seeds
        out_jobs += [job(spec, out, stage, row, lam, seed, extra) for lam in values for seed in seeds]
    return out_jobs
