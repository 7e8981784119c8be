"""Regression fingerprint: fixed-seed CPU runs give bit-identical metrics to the stored ones.

``tests/fixtures/fingerprint.json`` was written by this file (then ``tests/test_regression_fingerprint.py``;
``python tests/training/test_fingerprint.py --write``) *before* the issue-14 redesign. Each case runs ``mege train`` in-process (one thread, CPU)
and compares every ``metrics.jsonl`` row (but its wall-clock ``time_s``), the summary's raw and EMA
metrics, and a sha256 of the final critic and generator weights with ``==``: any change of
behaviour fails here. ``tests/fixtures/run_before/`` holds a run folder (config.yaml, checkpoint.pt)
written before the redesign; it must still load and evaluate to the stored numbers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[1] / "fixtures"
FINGERPRINT = DATA / "fingerprint.json"
RUN_BEFORE = DATA / "run_before"

COMMON = ["device=cpu", "train.progress=false", "train.plot=false", "name=fingerprint"]
TINY_BASE = ["data=ring8", "x_dim=2", "z_dim=2", "energy.hidden=32", "energy.depth=2", "train.steps=40", "train.batch_size=64", "train.log_every=10",
        "train.eval_every=20", "train.ckpt_every=20", "metric.n_samples=500"]
TINY = [*TINY_BASE, "generator.hidden=32", "generator.depth=2"]
CASES = {
    # the toy demo recipe (grid-25: sharp critic, JS MI entropy term with its own optimiser, EMA
    # with warm-up, cosine schedules, λ_H annealed), shortened
    "grid25_mi_js": ["experiment=grid25", "train.steps=200", "train.eval_every=100", "train.ckpt_every=100",
                     "train.log_every=50", "metric.n_samples=1000"],
    # an estimator with fit steps and its own optimiser
    "flow_affine": [*TINY, "entropy=flow_affine", "entropy.flow.hidden=16", "entropy.flow.layers=2"],
    # a noisy generator and an estimator that needs latents and the generator
    "posterior_is": [*TINY_BASE, "generator=noisy_mlp", "generator.base.hidden=32", "generator.base.depth=2",
                     "entropy=posterior_is", "entropy.samples=4", "lambda_h=0.1"],
}


def weights_sha(run_dir: Path) -> str:
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    h = hashlib.sha256()
    for name in ("critic", "generator"):
        for key, t in sorted(state["modules"][name].items()):
            h.update(key.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "time_s"}


def run_case(overrides: list[str], run_dir: Path) -> dict:
    from mege.cli import main
    before, saved = torch.get_num_threads(), list(sys.argv)
    torch.set_num_threads(1)
    try:
        code = main(["train", *COMMON, *overrides, f"hydra.run.dir={run_dir}"])
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = saved
        torch.set_num_threads(before)
    assert code in (0, None)
    rows = [strip(json.loads(line)) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"rows": rows, "metrics": summary["metrics"], "ema_metrics": summary["ema_metrics"],
            "step": summary["step"], "weights_sha256": weights_sha(run_dir)}


def canonical(obj) -> str:
    """JSON text (NaN written as NaN) so stored and fresh numbers compare bit for bit."""
    return json.dumps(obj, sort_keys=True, indent=1)


def test_fingerprint_is_bit_identical(tmp_path):
    stored = json.loads(FINGERPRINT.read_text())
    for name, overrides in CASES.items():
        fresh = json.loads(canonical(run_case(overrides, tmp_path / name)))
        assert fresh == stored["cases"][name], f"case {name}: metrics differ from the stored fingerprint"


def test_checkpoint_from_before_loads_and_evaluates(tmp_path):
    from mege.training import load_run
    run = tmp_path / "run"
    shutil.copytree(RUN_BEFORE, run)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = load_run(run)
        result = trainer.evaluate(plot=False)
    finally:
        torch.set_num_threads(before)
    stored = json.loads(FINGERPRINT.read_text())["run_before"]
    assert json.loads(canonical({"metrics": result["metrics"], "ema_metrics": result["ema_metrics"]})) == stored
    assert trainer.step == 40


def write(tmp: Path) -> None:
    cases = {name: json.loads(canonical(run_case(o, tmp / name))) for name, o in CASES.items()}
    run = tmp / "flow_affine"
    if RUN_BEFORE.exists():
        shutil.rmtree(RUN_BEFORE)
    RUN_BEFORE.mkdir(parents=True)
    for name in ("config.yaml", "checkpoint.pt"):
        shutil.copy(run / name, RUN_BEFORE / name)
    from mege.training import load_run
    torch.set_num_threads(1)
    result = load_run(RUN_BEFORE).evaluate(plot=False)
    before = json.loads(canonical({"metrics": result["metrics"], "ema_metrics": result["ema_metrics"]}))
    FINGERPRINT.write_text(canonical({"cases": cases, "run_before": before}) + "\n")


if __name__ == "__main__":
    import tempfile
    assert sys.argv[1:] == ["--write"], "usage: python tests/training/test_fingerprint.py --write"
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
    print(f"written {FINGERPRINT} and {RUN_BEFORE}")
