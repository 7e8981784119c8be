"""experiments/claims/converged.sh: each (row, seed) job gets exactly its row's overrides (a fake `mege` records them)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "claims" / "converged.sh"
FAKE = """#!/usr/bin/env bash
for a in "$@"; do case $a in hydra.run.dir=*) dir=${a#hydra.run.dir=};; esac; done
mkdir -p "$dir"; printf '%s\\n' "$@" > "$dir/args.txt"
"""


def _run(tmp_path, rows, extra=(), seeds="0 1"):
    fake = tmp_path / "mege"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    env = {**os.environ, "MEGE": str(fake), "ROOT": str(tmp_path / "root"), "SEEDS": seeds, "ROWS": rows, "JOBS": "2"}
    return subprocess.run(["bash", str(SCRIPT), "ring8", *extra], env=env, capture_output=True, text=True, timeout=60)


def _args(tmp_path, label, seed):  # the overrides, after `train`
    return (tmp_path / "root" / "ring8" / label / str(seed) / "args.txt").read_text().split()[1:]


def test_each_job_gets_its_row_and_seed_with_and_without_extra_overrides(tmp_path):
    assert _run(tmp_path, "sgd_beta0.9 wgan_gp recipe").returncode == 0
    for seed in (0, 1):
        sgd = _args(tmp_path, "sgd_beta0.9", seed)
        assert sgd[:3] == ["experiment=ring8", f"seed={seed}", "train.progress=false"]
        # equal effective step: lr·(1 − β) = 1e-2 at β = 0.9
        assert sgd[3:6] == ["+sweep=claim3_equal_step_sgd", "optim.generator.momentum=0.9", "optim.generator.lr=0.001"]  # η·(1 − β) = 0.01·0.1
        assert _args(tmp_path, "wgan_gp", seed)[3:5] == ["penalty=wgan_gp", "penalty.weight=10"]
        assert _args(tmp_path, "recipe", seed)[3:] == [f"hydra.run.dir={tmp_path}/root/ring8/recipe/{seed}"]
    times = (tmp_path / "root" / "times.tsv").read_text().splitlines()
    assert len(times) == 6
    assert _run(tmp_path, "sgd_beta0.5", extra=["train.steps=4"], seeds="2").returncode == 0
    assert _args(tmp_path, "sgd_beta0.5", 2)[3:7] == ["+sweep=claim3_equal_step_sgd", "optim.generator.momentum=0.5",
                                                      "optim.generator.lr=0.005", "train.steps=4"]


def test_an_unknown_row_is_refused_before_any_run(tmp_path):
    out = _run(tmp_path, "recipe bogus")
    assert out.returncode == 2 and "unknown row 'bogus'" in out.stderr
    assert not (tmp_path / "root" / "ring8" / "recipe").exists()
