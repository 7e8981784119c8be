"""The selection stage's rule: each row's λ_H chosen on the selection seeds, written to ``<out>/selection.json``.

The rule is :func:`mege.leaderboard.choose_operating_point` with the spec's parameters
(``selection.rule``: ``min_hq``, ``metric``, ``samples``): among the row's λ_H values whose mean HQ
fraction over the selection seeds is ≥ ``min_hq``, the one with the lowest mean ``metric``; a tie
goes to the smaller λ_H; none qualifying → no λ_H (the row gets no confirmation runs). A row with a
single λ_H value (e.g. ``none`` at 0) takes it without the rule. A row whose selection runs are not
all completed has no choice yet.
"""

from __future__ import annotations

import json
from pathlib import Path

from mege.report import EMA_PREFIX, build_report
from mege.run_dir import RunDir, write_json
from mege.study.plan import Job, expand
from mege.study.spec import Spec

SELECTION = "selection.json"


def choose_row(spec: Spec, out: Path, name: str, jobs: list[Job]) -> dict:
    """{"lambda_h": value or None, "reason": words, "completed": k, "runs": n} for one row."""
    from mege.leaderboard import choose_operating_point, collect_points

    values = sorted({j.lambda_h for j in jobs})
    done = sum(RunDir(j.path).status() == "completed" for j in jobs)
    entry = {"lambda_h": None, "reason": "", "completed": done, "runs": len(jobs)}
    if done < len(jobs):
        entry["reason"] = f"selection not complete ({done} of {len(jobs)} runs completed); run the selection stage"
        return entry
    if len(values) == 1:
        entry.update(lambda_h=values[0], reason="its only λ_H value")
        return entry
    wanted = {j.path.resolve() for j in jobs}
    runs = [r for r in build_report(out / "selection" / name).runs if r.path.resolve() in wanted]
    points = collect_points(runs, "lambda_h")
    prefix = EMA_PREFIX if spec.rule["samples"] == "ema" else ""
    pick, reason = choose_operating_point(points, float(spec.rule["min_hq"]), prefix, str(spec.rule["metric"]))
    entry.update(lambda_h=None if pick is None else pick.value, reason=reason)
    return entry


def select(spec: Spec, out: Path, rows: list[str], extra: tuple[str, ...] = ()) -> dict[str, dict]:
    """Apply the rule to ``rows`` and merge the result into ``<out>/selection.json``; returns every row's entry."""
    path = out / SELECTION
    chosen = read_selection(out)
    for name in rows:
        jobs = expand(spec, out, "selection", [name], extra)
        chosen[name] = choose_row(spec, out, name, jobs)
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, {"rule": spec.rule, "seeds": list(spec.selection_seeds), "rows": chosen})
    return chosen


def read_selection(out: Path) -> dict[str, dict]:
    """The rows of ``<out>/selection.json`` ({} when there is none)."""
    try:
        return dict(json.loads((out / SELECTION).read_text()).get("rows") or {})
    except (OSError, ValueError, AttributeError):
        return {}
