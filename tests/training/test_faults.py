"""Fault tolerance: kill -9 then resume, an injected NaN, never a non-finite checkpoint, torn logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mege.energy.mlp import MLPCritic
from mege.run_dir import RunDir
from mege.training import NonFiniteError, trainer_from_config

CHECKPOINT = RunDir.CHECKPOINT

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("single_thread")


class PoisonedCritic(MLPCritic):
    """An MLP critic whose energies turn NaN from call ``nan_after + 1`` on (a run that diverges)."""

    def __init__(self, x_dim: int, hidden: int = 32, depth: int = 2, nan_after: int = 0, **mlp_options):
        super().__init__(x_dim, hidden, depth, **mlp_options)
        self.nan_after, self.calls = nan_after, 0

    def forward(self, x):
        self.calls += 1
        u = super().forward(x)
        return u * float("nan") if self.calls > self.nan_after else u


RUN = ["name=kill", "device=cpu", "data=ring8", "data.std=0.2", "energy.hidden=32", "generator.hidden=32",
       "entropy.hidden=32", "train.steps=200", "train.batch_size=64", "train.log_every=10", "train.eval_every=50",
       "train.ckpt_every=20", "train.plot=false", "train.progress=false", "metric.n_samples=200"]


def mege(*argv: str, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "mege.cli", *argv], dict(cwd=REPO, env=env, **kwargs)


def read_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("time_s")
    return rows


def test_kill_9_then_resume_matches_an_uninterrupted_run(run_cli, tmp_path):
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    cmd, kw = mege("train", *RUN, f"hydra.run.dir={ref_dir}")
    reference = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    cmd, kw = mege("train", *RUN, f"hydra.run.dir={run_dir}")
    victim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    deadline = time.monotonic() + 120
    while not (run_dir / CHECKPOINT).exists():
        assert victim.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_at = torch.load(run_dir / CHECKPOINT, weights_only=True)["step"]
    assert 20 <= killed_at < 200
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"

    code, _, err = run_cli("resume", str(run_dir))  # in this process, also one thread
    assert code == 0, err[-2000:]
    assert reference.wait(timeout=300) == 0, reference.stderr.read()[-2000:]

    done, ref = (json.loads((d / "summary.json").read_text()) for d in (run_dir, ref_dir))
    assert done["status"] == ref["status"] == "completed" and done["step"] == 200
    assert json.dumps(done["metrics"]) == json.dumps(ref["metrics"])
    assert json.dumps(done["ema_metrics"]) == json.dumps(ref["ema_metrics"])
    assert read_rows(run_dir) == read_rows(ref_dir)
    a, b = (torch.load(d / CHECKPOINT, weights_only=True)["modules"] for d in (run_dir, ref_dir))
    for name in a:
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key}"


@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_sigterm_to_mege_train_saves_and_exits_with_128_plus_signal(tmp_path, signum):
    cmd, kw = mege("train", *RUN, "train.steps=100000", f"hydra.run.dir={tmp_path}")
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    deadline = time.monotonic() + 120
    while not (tmp_path / CHECKPOINT).exists():
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()[-2000:] if run.poll() else ""
        time.sleep(0.01)
    run.send_signal(signum)
    assert run.wait(timeout=60) == 128 + signum
    err = run.stderr.read()
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    step = summary["step"]
    assert summary["status"] == "interrupted"
    assert f"mege: {signal.Signals(signum).name} at step {step}: checkpoint saved; continue with `mege resume {tmp_path}`." \
        in err.splitlines()
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == step


def test_injected_nan_stops_with_the_named_loss_and_keeps_the_last_good_checkpoint(run_cli, tmp_path):
    # split critic forward: 3 critic calls per step (real, fake, generator step) -> call 109 is step 37's first
    code, _, err = run_cli("train", "name=nan", "device=cpu", "data=ring8", "generator.hidden=32",
                           f"energy._target_={__name__}.PoisonedCritic", "energy.hidden=32", "energy.depth=2",
                           "+energy.nan_after=108", f"allowed_targets=[{__name__}.]", "++train.joint_critic_forward=false",
                           "train.steps=60", "train.batch_size=32", "train.log_every=10", "train.eval_every=60",
                           "train.ckpt_every=20", "train.plot=false", "train.progress=false", "metric.n_samples=100",
                           f"hydra.run.dir={tmp_path}")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"mege: error: loss 'critic_loss' became nan at step 37; lower the learning rates or λ, or resume from the "
        f"last good checkpoint ({tmp_path / CHECKPOINT}).")
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["step"] == 20  # the step-40 checkpoint was never written
    for module in state["modules"].values():
        for value in module.values():
            assert not value.is_floating_point() or bool(torch.isfinite(value).all())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "at step 37" in summary["error"]


def test_save_refuses_non_finite_parameters(make_cfg, tmp_path):
    trainer = trainer_from_config(make_cfg("train.steps=20"), tmp_path)
    trainer.fit()
    before = (tmp_path / CHECKPOINT).read_bytes()
    with torch.no_grad():
        trainer.critic.net[2].weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"^parameter 'critic\.net\.2\.weight' is non-finite at step 20; lower"):
        trainer.save()
    assert (tmp_path / CHECKPOINT).read_bytes() == before


def test_resume_drops_rows_past_the_checkpoint_and_a_torn_line(make_cfg, tmp_path):
    cfg = make_cfg("train.steps=40", "train.eval_every=20", "train.ckpt_every=20")
    trainer = trainer_from_config(cfg, tmp_path)
    trainer.fit()
    path = tmp_path / "metrics.jsonl"
    good = path.read_text()
    torch.save({**torch.load(tmp_path / CHECKPOINT, weights_only=True), "step": 20}, tmp_path / CHECKPOINT)
    path.write_text(good + '{"step": 60, "metrics": {}}\n{"step": 8')  # a row from the future, a torn line
    trainer = trainer_from_config(cfg, tmp_path)
    last = trainer._restore()
    assert trainer.step == 20 and last["step"] == 20
    assert path.read_text() == good.splitlines(keepends=True)[0]
