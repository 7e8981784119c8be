"""tools/gpu_check.sh: its --dry-run passes on this machine (CUDA absent is a note, not a failure),
checks every command it would run, fails when the interpreter cannot run them, and the real check
refuses to start without a CUDA device."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "gpu_check.sh"


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable, **env})


def test_dry_run_checks_every_command_and_exits_0():
    proc = run("--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "dry run: OK"
    assert not [line for line in lines if line.startswith("FAIL")]
    (cuda,) = [line for line in lines if " CUDA: " in line]
    if torch.cuda.is_available():
        assert cuda.startswith("ok    CUDA: ")
    else:
        assert cuda.startswith("note  CUDA: not available") and "not fatal for --dry-run" in cuda
    for check in ("python: ", "tool: timeout", "1. tests: MEGE_TEST_DEVICE=cuda python -m pytest", "2. bench: python tools/bench/bench.py --device cuda",
                  "3. classifier: python -m mege.cli classifier train", "3. train (fp32): mege train experiment=stacked_mnist",
                  "3. train (bf16+channels_last): mege train experiment=stacked_mnist"):
        assert any(line.startswith(f"ok    {check}") for line in lines), check
    collected = next(line for line in lines if "1. tests:" in line)
    count = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
                           cwd=REPO, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    assert f"({count.split(' in ')[0]}" in collected  # the whole suite, each test once
    (caps,) = [line for line in lines if line.startswith("time caps:")]
    assert caps.endswith("= 450 s")  # ≤ 8 min with the ~20 s of set-up


def test_dry_run_fails_when_the_interpreter_cannot_run_the_check():
    proc = run("--dry-run", PYTHON="/bin/false")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[-1] == "dry run: FAILED"
    assert any(line.startswith("FAIL  python: /bin/false") for line in lines)
    assert any(line.startswith("FAIL  2. bench:") for line in lines)


def test_unknown_argument_and_no_cuda_are_errors():
    proc = run("--bogus")
    assert proc.returncode == 2 and "gpu_check: unknown argument '--bogus'" in proc.stderr
    if not torch.cuda.is_available():
        proc = run()
        assert proc.returncode == 2
        assert proc.stderr.startswith("gpu_check: no CUDA device (not available") and "--dry-run" in proc.stderr
