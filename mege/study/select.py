"""The selection stage's rule: each row's λ_H chosen on the selection seeds, written to ``<out>/selection.json``.

The rule is :func:`mege.leaderboard.choose_operating_point` with the spec's parameters
(``selection.rule``: ``min_hq``, ``metric``, ``samples``): among the row's λ_H values whose mean HQ
fraction over the selection seeds is ≥ ``min_hq``, the one with the lowest mean ``metric``; a tie
goes to the smaller λ_H; none qualifying → no λ_H (the row gets no confirmation runs). A row with a
single λ_H value (e.g. ``none`` at 0) takes it without the rule. A row whose selection runs are not
all completed has no choice yet.

A threshold relative to a reference row replaces the fixed ``min_hq``::

    rule: {min_hq_from: {row: none, points: 0.05}, metric: assigned_kl}

every row's HQ threshold is then the mean ``hq_fraction`` (``ema/hq_fraction`` with ``samples: ema``)
over the reference row's selection runs minus ``points`` (a fraction: 0.05 = 5 percentage points),
recorded as ``hq_threshold`` in each row's entry of ``selection.json``. The reference row (one λ_H
value) takes its only λ_H; while its selection runs are not all completed the other rows have no
choice yet (their ``completed``/``runs`` then count the reference row's runs too, so a confirmation
waits for them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mege.errors import MegeError
from mege.report import EMA_PREFIX, build_report
from mege.run_dir import RunDir, write_json
from mege.study.plan import Job, expand
from mege.study.spec import Spec

SELECTION = "selection.json"


def _selection_runs(out: Path, name: str, jobs: list[Job]) -> list:
    """The report's runs of ``jobs`` (one row's selection runs)."""
    wanted = {j.path.resolve() for j in jobs}
    return [r for r in build_report(out / "selection" / name).runs if r.path.resolve() in wanted]


def relative_threshold(spec: Spec, out: Path, extra: tuple[str, ...] = ()) -> tuple[float | None, dict]:
    """(HQ threshold or None, entry fields) of a ``min_hq_from`` rule: the reference row's mean HQ
    over its selection runs minus ``points``; None with a reason (and run counts) when it cannot be had yet."""
    ref, points = spec.rule["min_hq_from"]["row"], float(spec.rule["min_hq_from"]["points"])
    jobs = expand(spec, out, "selection", [ref], extra)
    values = sorted({j.lambda_h for j in jobs})
    if len(values) != 1:
        raise MegeError(f"study spec {spec.path}: selection.rule.min_hq_from names row {ref}, which has "
                        f"{len(values)} λ_H values; give it one (e.g. lambda_h: [0]) so its HQ is one number.")
    done = sum(RunDir(j.path).status() == "completed" for j in jobs)
    if done < len(jobs):
        return None, {"reason": f"reference row {ref}'s selection not complete ({done} of {len(jobs)} runs "
                                f"completed); run the selection stage", "ref_completed": done, "ref_runs": len(jobs)}
    key = (EMA_PREFIX if spec.rule["samples"] == "ema" else "") + "hq_fraction"
    hqs = [r.metrics[key] for r in _selection_runs(out, ref, jobs) if r.included and key in r.metrics]
    if not hqs:
        return None, {"reason": f"reference row {ref}'s selection runs carry no {key}"}
    mean = math.fsum(hqs) / len(hqs)
    return mean - points, {"reason": f"HQ threshold {100 * (mean - points):.1f} % = {ref}'s mean HQ "
                                     f"{100 * mean:.1f} % − {100 * points:g} points"}


def choose_row(spec: Spec, out: Path, name: str, jobs: list[Job], extra: tuple[str, ...] = ()) -> dict:
    """{"lambda_h": value or None, "reason": words, "completed": k, "runs": n} for one row
    (and "hq_threshold" under a ``min_hq_from`` rule)."""
    from mege.leaderboard import choose_operating_point, collect_points

    values = sorted({j.lambda_h for j in jobs})
    done = sum(RunDir(j.path).status() == "completed" for j in jobs)
    entry = {"lambda_h": None, "reason": "", "completed": done, "runs": len(jobs)}
    if done < len(jobs):
        entry["reason"] = f"selection not complete ({done} of {len(jobs)} runs completed); run the selection stage"
        return entry
    relative = "min_hq_from" in spec.rule
    if relative:
        threshold, why = relative_threshold(spec, out, extra)
        if threshold is not None:
            entry["hq_threshold"] = threshold
    if len(values) == 1:
        entry.update(lambda_h=values[0], reason="its only λ_H value")
        return entry
    if relative and threshold is None:
        entry["reason"] = why["reason"]
        if "ref_runs" in why:  # counted as waiting: a confirmation waits for the reference row's runs
            entry.update(completed=done + why["ref_completed"], runs=len(jobs) + why["ref_runs"])
        return entry
    runs = _selection_runs(out, name, jobs)
    points = collect_points(runs, "lambda_h")
    prefix = EMA_PREFIX if spec.rule["samples"] == "ema" else ""
    min_hq = threshold if relative else float(spec.rule["min_hq"])
    pick, reason = choose_operating_point(points, min_hq, prefix, str(spec.rule["metric"]))
    if relative:
        reason += f" ({why['reason']})"
    entry.update(lambda_h=None if pick is None else pick.value, reason=reason)
    return entry


def select(spec: Spec, out: Path, rows: list[str], extra: tuple[str, ...] = ()) -> dict[str, dict]:
    """Apply the rule to ``rows`` and merge the result into ``<out>/selection.json``; returns every row's entry."""
    path = out / SELECTION
    chosen = read_selection(out)
    for name in rows:
        jobs = expand(spec, out, "selection", [name], extra)
        chosen[name] = choose_row(spec, out, name, jobs, extra)
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, {"rule": spec.rule, "seeds": list(spec.selection_seeds), "rows": chosen})
    return chosen


def read_selection(out: Path) -> dict[str, dict]:
    """The rows of ``<out>/selection.json`` ({} when there is none)."""
    try:
        return dict(json.loads((out / SELECTION).read_text()).get("rows") or {})
    except (OSError, ValueError, AttributeError):
        return {}
