"""A study spec (one yaml file) read into :class:`Spec`, every problem refused in one line naming the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mege.errors import MegeError, check

FACTS = "facts"
STAGES = ("selection", "confirmation")
RUNS = "runs"
"""The stage name of a one-stage study (its runs go to ``<out>/runs/``)."""
KEYS = ("name", "out", "base", "rows", "seeds", "lambda_h", "selection", "confirmation", "report")
ROW_KEYS = ("overrides", "lambda_h")
RULE_KEYS = ("min_hq", "metric", "samples", "min_hq_from")
RULE_DEFAULTS = {"min_hq": 0.80, "metric": "assigned_kl", "samples": "raw"}
RELATIVE_KEYS = ("row", "points")
"""``selection.rule.min_hq_from: {row: none, points: 0.05}``: the HQ threshold is that row's mean HQ minus
``points`` (:mod:`mege.study.select`), in place of ``min_hq``."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Row:
    """One named row: its overrides and its λ_H grid (``facts``, a list of values, or None: no λ_H sweep)."""

    name: str
    overrides: tuple[str, ...]
    lambda_h: str | tuple[float, ...] | None


@dataclass(frozen=True)
class Report:
    """One ``mege report`` call: the runs of ``runs`` (a stage) into ``<out>/report/<name>/`` with ``args``."""

    name: str
    runs: str
    args: tuple[str, ...]


@dataclass
class Spec:
    """A study: rows (overrides) × seeds (× λ_H grids), in one stage or in selection → confirmation."""

    path: Path
    name: str
    out: Path
    base: tuple[str, ...]
    rows: dict[str, Row]
    seeds: tuple[int, ...] = ()
    selection_seeds: tuple[int, ...] = ()
    confirmation_seeds: tuple[int, ...] = ()
    rule: dict[str, Any] = field(default_factory=lambda: dict(RULE_DEFAULTS))
    reports: tuple[Report, ...] = ()

    @property
    def two_stage(self) -> bool:
        return bool(self.selection_seeds)

    @property
    def stages(self) -> tuple[str, ...]:
        return STAGES if self.two_stage else (RUNS,)


def _where(path: Path) -> str:
    return f"study spec {path}"


def _overrides(value: Any, what: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    check(isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value),
          f"{_where(path)}: {what} must be a list of key=value overrides, e.g. [experiment=ring8_collapse].")
    items = tuple(str(v) for v in value)
    bad = [v for v in items if "=" not in v]
    check(not bad, f"{_where(path)}: {what} has {bad[0] if bad else None!r}, not a key=value override; write it as key=value.")
    return items


def _seeds(value: Any, what: str, path: Path) -> tuple[int, ...]:
    check(isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
          f"{_where(path)}: {what} must be a non-empty list of integer seeds, e.g. [0, 1, 2].")
    check(len(set(value)) == len(value), f"{_where(path)}: {what} repeats a seed; list each seed once.")
    return tuple(value)


def _grid(value: Any, what: str, path: Path) -> str | tuple[float, ...] | None:
    if value is None or value == FACTS:
        return value
    values = value if isinstance(value, list) else [value]
    check(values and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in values),
          f"{_where(path)}: {what} must be '{FACTS}' (each estimator's own grid) or a list of values ≥ 0.")
    return tuple(float(v) for v in values)


def _row(name: str, value: Any, default_grid: Any, path: Path) -> Row:
    check(NAME.match(str(name)) is not None,
          f"{_where(path)}: row name {name!r} must be letters, digits, '.', '_' or '-' (it names a folder).")
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(ROW_KEYS))
        check(not unknown, f"{_where(path)}: row {name} has unknown key(s) {', '.join(unknown)}; "
                           f"known: {', '.join(ROW_KEYS)}.")
        return Row(str(name), _overrides(value.get("overrides"), f"row {name}'s overrides", path),
                   _grid(value.get("lambda_h", default_grid), f"row {name}'s lambda_h", path))
    return Row(str(name), _overrides(value, f"row {name}", path), default_grid)


def load_spec(path: str | Path, out: str | Path | None = None) -> Spec:
    """Read and check a study spec (format: :mod:`mege.study`); ``out`` replaces the spec's ``out``."""
    path = Path(path)
    check(path.is_file(), f"study spec {path} does not exist; pass a yaml file (format: `mege study --help`).")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise MegeError(f"{_where(path)} is not valid yaml ({str(err).splitlines()[0]}); fix its syntax.") from None
    check(isinstance(raw, dict), f"{_where(path)} must be a mapping with name, rows and seeds (or selection/confirmation).")
    unknown = sorted(set(raw) - set(KEYS))
    check(not unknown, f"{_where(path)}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}.")
    name = str(raw.get("name") or path.stem)
    target = out if out is not None else raw.get("out")
    check(target is not None, f"{_where(path)} names no output folder; add out: <folder> or pass --out DIR.")
    grid = _grid(raw.get("lambda_h"), "lambda_h", path)
    rows_raw = raw.get("rows")
    check(isinstance(rows_raw, dict) and rows_raw,
          f"{_where(path)}: rows must map row names to override lists, e.g. rows: {{none: [entropy=none]}}.")
    rows = {str(k): _row(k, v, grid, path) for k, v in rows_raw.items()}
    spec = Spec(path=path, name=name, out=Path(target), base=_overrides(raw.get("base"), "base", path), rows=rows)

    selection, confirmation = raw.get("selection"), raw.get("confirmation")
    if selection is None and confirmation is None:
        spec.seeds = _seeds(raw.get("seeds"), "seeds", path)
    else:
        check(selection is not None and confirmation is not None,
              f"{_where(path)}: a two-stage study needs both selection: and confirmation:; give both or neither.")
        check(raw.get("seeds") is None, f"{_where(path)}: a two-stage study takes its seeds from selection: and "
                                        f"confirmation:; remove the top-level seeds.")
        check(isinstance(selection, dict) and isinstance(confirmation, dict),
              f"{_where(path)}: selection and confirmation must be mappings with seeds: [...].")
        spec.selection_seeds = _seeds(selection.get("seeds"), "selection.seeds", path)
        spec.confirmation_seeds = _seeds(confirmation.get("seeds"), "confirmation.seeds", path)
        common = sorted(set(spec.selection_seeds) & set(spec.confirmation_seeds))
        check(not common, f"{_where(path)}: selection and confirmation seeds overlap ({', '.join(map(str, common))}); "
                          f"confirmation must judge on seeds the selection never saw.")
        rule = selection.get("rule") or {}
        check(isinstance(rule, dict) and not set(rule) - set(RULE_KEYS),
              f"{_where(path)}: selection.rule takes {', '.join(RULE_KEYS)} (e.g. {{min_hq: 0.8, metric: assigned_kl}}, "
              f"or min_hq_from: {{row: none, points: 0.05}} for row none's mean HQ minus 5 points).")
        spec.rule = {**RULE_DEFAULTS, **rule}
        check(spec.rule["samples"] in ("raw", "ema"), f"{_where(path)}: selection.rule.samples must be raw or ema.")
        check(isinstance(spec.rule["min_hq"], (int, float)) and 0 <= spec.rule["min_hq"] <= 1,
              f"{_where(path)}: selection.rule.min_hq must be a fraction in [0, 1], e.g. 0.8.")
        if "min_hq_from" in rule:
            _relative_rule(rule, rows, path)
            del spec.rule["min_hq"]  # the threshold comes from the reference row; selection.json records it per row
        check(all(r.lambda_h is not None for r in rows.values()),
              f"{_where(path)}: a two-stage study chooses λ_H per row; give lambda_h: {FACTS} (or a list) for every row.")
    spec.reports = _reports(raw.get("report"), spec, path)
    return spec


def _relative_rule(rule: dict, rows: dict[str, Row], path: Path) -> None:
    """Check ``selection.rule.min_hq_from: {row: <a row>, points: <fraction>}`` (and no ``min_hq`` beside it)."""
    value = rule["min_hq_from"]
    usage = "selection.rule.min_hq_from takes {row: <row name>, points: <fraction>}, e.g. {row: none, points: 0.05} " \
            "(the HQ threshold = row none's mean selection HQ minus 5 points)"
    check(isinstance(value, dict) and set(value) == set(RELATIVE_KEYS), f"{_where(path)}: {usage}.")
    check("min_hq" not in rule, f"{_where(path)}: selection.rule gives both min_hq and min_hq_from; keep one "
                                f"(min_hq_from replaces the fixed threshold).")
    check(str(value["row"]) in rows, f"{_where(path)}: selection.rule.min_hq_from names row {value['row']!r}, which is "
                                     f"not in rows ({', '.join(rows)}); name one of them.")
    points = value["points"]
    check(isinstance(points, (int, float)) and not isinstance(points, bool) and 0 <= points <= 1,
          f"{_where(path)}: selection.rule.min_hq_from.points must be a fraction in [0, 1] (0.05 = 5 points).")
    grid = rows[str(value["row"])].lambda_h
    check(not isinstance(grid, tuple) or len(grid) == 1,
          f"{_where(path)}: selection.rule.min_hq_from's row {value['row']} has {len(grid or ())} λ_H values; give it "
          f"one (e.g. lambda_h: [0]) so its HQ is one number.")
    value["row"] = str(value["row"])


def _reports(value: Any, spec: Spec, path: Path) -> tuple[Report, ...]:
    """``report: {name: {runs: <stage>, args: [...]}}``; default one plain report per stage."""
    if value is None:
        return tuple(Report(stage, stage, ()) for stage in spec.stages)
    check(isinstance(value, dict), f"{_where(path)}: report must map names to {{runs: <stage>, args: [...]}}.")
    out = []
    for name, item in value.items():
        item = item or {}
        check(isinstance(item, dict) and not set(item) - {"runs", "args"},
              f"{_where(path)}: report {name} takes runs: <stage> and args: [mege report options].")
        runs = str(item.get("runs", spec.stages[0]))
        check(runs in spec.stages, f"{_where(path)}: report {name} reads runs: {runs}; this study's stages: "
                                   f"{', '.join(spec.stages)}.")
        args = item.get("args") or []
        check(isinstance(args, list), f"{_where(path)}: report {name}'s args must be a list, e.g. [--by, entropy].")
        check("--out" not in args, f"{_where(path)}: report {name} writes to <out>/report/{name}; remove --out from its args.")
        out.append(Report(str(name), runs, tuple(str(a) for a in args)))
    return tuple(out)
