"""A study folder's small files into a run-files folder that can be committed
(``mege study SPEC --out OUT --export DEST [--rows …]``; runs nothing).

What travels, for the rows asked (default: all of the spec's):

- each *completed* run's ``summary.json``, ``config.yaml``, ``metrics.jsonl`` and ``.hydra/{config,overrides}.yaml``
  (no checkpoint, no logs) under the same ``<stage>/<row>/[lambda_<λ>/]<seed>/`` path, replacing DEST's copy;
- the rows' entries of ``selection.json`` (OUT's entry of a row replaces DEST's; DEST's other rows stay);
- the rows' lines of ``times.tsv`` that DEST does not hold yet (appended, one header).

DEST is a study folder again: given back as ``--out`` (or copied to one), its completed runs are kept, not
retrained (:mod:`mege.run_dir`), so a study stopped in one session continues from the committed run files
in the next, and a study run in parts (several ``--out`` folders) is gathered into one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mege.errors import check
from mege.run_dir import RunDir, write_json
from mege.study.launch import TIMES, TIMES_HEADER
from mege.study.select import SELECTION, read_selection
from mege.study.spec import Spec

RUN_FILES = ("summary.json", "config.yaml", "metrics.jsonl", ".hydra/config.yaml", ".hydra/overrides.yaml")


def export_run_files(spec: Spec, out: Path, dest: Path, rows: list[str]) -> dict[str, int]:
    """Copy ``rows``' small files from the study folder ``out`` into ``dest`` (module doc); returns counts."""
    out, dest = Path(out), Path(dest)
    check(out.is_dir(), f"--export: the study folder {out} does not exist; give the --out the study ran into.")
    check(out.resolve() != dest.resolve(), f"--export {dest}: that is the study folder itself; give another folder.")
    copied = skipped = 0
    for stage in spec.stages:
        for row in rows:
            for summary in sorted((out / stage / row).rglob("summary.json")):
                run = summary.parent
                if RunDir(run).status() != "completed":
                    skipped += 1
                    continue
                target = dest / run.relative_to(out)
                for name in RUN_FILES:
                    if (run / name).is_file():
                        (target / name).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(run / name, target / name)
                copied += 1
    chosen = {r: e for r, e in read_selection(out).items() if r in rows}
    if chosen:
        dest.mkdir(parents=True, exist_ok=True)
        write_json(dest / SELECTION, {"rule": spec.rule, "seeds": list(spec.selection_seeds),
                                      "rows": {**read_selection(dest), **chosen}})
    times = 0
    if (out / TIMES).is_file():
        have = set((dest / TIMES).read_text().splitlines()) if (dest / TIMES).is_file() else set()
        new = [line for line in (out / TIMES).read_text().splitlines()[1:]
               if line.partition("\t")[2].partition("\t")[0] in rows and line not in have]  # column 2: the row
        if new:
            dest.mkdir(parents=True, exist_ok=True)
            with open(dest / TIMES, "a") as f:
                f.write(("" if have else TIMES_HEADER) + "\n".join(new) + "\n")
        times = len(new)
    return {"runs": copied, "not completed": skipped, "selection rows": len(chosen), "timing lines": times}
