"""Studies: ``mege study SPEC.yaml`` runs (or continues) rows × seeds (× λ_H grids) of ``mege train``.

A spec is one yaml file::

    name: ablation_ring8_collapse
    out: outputs/ablation/ring8_collapse        # default output folder (--out replaces it)
    base: [experiment=ring8_collapse, +sweep=ablation_frontier]   # every run
    lambda_h: facts                  # each row's λ_H grid from its estimator's facts (or a list; absent: no sweep)
    rows:                            # name: overrides (or {overrides: [...], lambda_h: [...]})
      none: [entropy=none]
      kde_score: [entropy=kde_score]
    selection:                       # two stages: choose each row's λ_H on these seeds ...
      seeds: [0, 1, 2]
      rule: {min_hq: 0.80, metric: assigned_kl, samples: raw}   # or min_hq_from: {row: none, points: 0.05}:
                                     # the threshold is none's mean selection HQ minus 5 points
    confirmation:                    # ... and judge it on disjoint seeds
      seeds: [10, 11, 12, 13, 14]
    report:                          # mege report calls into <out>/report/<name>/ (default: one per stage)
      frontier: {runs: selection, args: [--frontier, lambda_h]}
      leaderboard: {runs: confirmation, args: [--leaderboard]}

A one-stage study gives ``seeds: [...]`` instead of selection/confirmation. Runs go to
``<out>/<stage>/<row>/[lambda_<λ>/]<seed>/`` (:mod:`.plan`), the chosen λ_H to ``<out>/selection.json``
(:mod:`.select`), each run's wall time to ``<out>/times.tsv`` (:mod:`.launch`), the tables to
``<out>/report/``. Rerunning the same command continues the study: completed runs are kept,
interrupted ones continue from their checkpoints, a folder written under another config is refused
by the run-folder check and listed with the other failures at the end. ``--export DEST`` runs nothing
and copies the completed runs' small files, ``selection.json`` rows and ``times.tsv`` lines into DEST
(committed run files; a study run in parts gathered into one), from which the study continues
(:mod:`.export`).

Modules: :mod:`.spec` (reading a spec), :mod:`.plan` (the jobs), :mod:`.launch` (running them),
:mod:`.select` (the selection rule), :mod:`.run` (the whole study), :mod:`.export` (run files out).
"""

from mege.study.plan import Job, expand, row_grid
from mege.study.run import run_study
from mege.study.select import choose_row, read_selection, select
from mege.study.spec import Row, Spec, load_spec

__all__ = ["Job", "Row", "Spec", "choose_row", "expand", "load_spec", "read_selection", "row_grid", "run_study",
           "select"]
