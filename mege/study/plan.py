"""A study's jobs: each (stage, row, λ_H, seed) is one ``mege train`` run in its own stable folder.

``<out>/<stage>/<row>/<seed>/`` for a row without λ_H sweep, ``<out>/<stage>/<row>/lambda_<λ>/<seed>/`` for
one with (stage = ``runs`` in a one-stage study, ``selection`` / ``confirmation`` in a two-stage one).
A row's λ_H grid is a list in the spec or ``facts``: its estimator's own grid
(:func:`mege.entropy.facts.facts_of`, looked up on the run's config search path), and an estimator
whose facts say ``needs_noisy_generator`` gets the noisy counterpart of the generator its run would use
(:func:`noisy_generator`) unless the row chooses a generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mege.config import config_dir, group_options, search_dirs
from mege.entropy.facts import Facts, config_dirs, facts_of
from mege.errors import check
from mege.study.spec import FACTS, Row, Spec

NOISY = "noisy_mlp"


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


@lru_cache(maxsize=256)
def generator_choice(overrides: tuple[str, ...]) -> str | None:
    """The generator option these overrides compose to (hydra's choice, e.g. a preset's), None when they do not compose."""
    from hydra import compose, initialize_config_dir
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
        return cfg.hydra.runtime.choices.get("generator")
    except Exception:  # noqa: BLE001 — a config that does not compose is `mege train`'s to report, run by run
        return None


def noisy_generator(overrides: tuple[str, ...]) -> str:
    """The noisy counterpart of the generator the run would use: ``noisy_<option>`` when that option exists
    (e.g. ``noisy_mlp_relu256`` for the toy recipes' ``mlp_relu256``), else ``noisy_mlp``."""
    chosen = generator_choice(overrides)
    options = group_options("generator", search_dirs(overrides))
    return chosen if chosen and chosen.startswith("noisy_") else \
        f"noisy_{chosen}" if f"noisy_{chosen}" in options else NOISY


def row_overrides(spec: Spec, row: Row, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """base + row (+ what the estimator needs: the noisy generator, unless the row chose a generator) + the
    command line's extra overrides."""
    overrides = (*spec.base, *row.overrides)
    facts = row_facts(spec, row)
    needs = facts is not None and facts.needs_noisy_generator and choice(overrides, "generator") is None
    return (*overrides, *((f"generator={noisy_generator(overrides)}",) if needs else ()), *extra)


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
