"""The trainer: resume reproduces an uninterrupted run, signals checkpoint and exit, the hot loop
never reads a tensor value back to the host, EMA and NaN watch match their definitions, and a
user's estimator outside mege plugs in by ``_target_``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.utils._python_dispatch import TorchDispatchMode

from mege.entropy.base import EntropyEstimator, EntropyResult, flatten
from mege.errors import MegeError
from mege.run_dir import RunDir
from mege.training import Interrupted, NonFiniteError, NonFiniteWatch, Trainer, load_run, trainer_from_config

CHECKPOINT = RunDir.CHECKPOINT

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("single_thread")


class SpreadEstimator(EntropyEstimator):
    """A user's estimator living outside mege: ``Ĥ = Σ_d log std_d(x)`` (a Gaussian's entropy up to a constant)."""

    gives_value = True

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps

    def forward(self, x, z=None, generator=None):
        h = torch.log(flatten(x).std(dim=0) + self.eps).sum()
        return EntropyResult(surrogate=h, value=h, info={"spread": h})


def rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock field."""
    out = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in out:
        row.pop("time_s")
    return out


def final_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {f"{k}.{n}": t for k, m in trainer.modules.items() for n, t in m.state_dict().items()}


def same(a, b) -> bool:
    """Equal as JSON (so NaN metrics compare equal)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def assert_same_run(a: Trainer, b: Trainer, dir_a: Path, dir_b: Path) -> None:
    assert same(rows(dir_a), rows(dir_b))
    sa, sb = final_state(a), final_state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def fail_at(trainer: Trainer, step: int, action) -> None:
    """Make ``trainer.train_step`` call ``action()`` when it is about to run step ``step`` (1-based)."""
    original = trainer.train_step

    def step_or_fail():
        if trainer.step + 1 == step:
            action()
        return original()
    trainer.train_step = step_or_fail


def test_resume_from_interval_checkpoint_matches_uninterrupted(make_cfg, tmp_path):
    cfg = make_cfg("train.steps=60", "train.eval_every=10", "train.ckpt_every=20", "data.std=0.2")
    reference = trainer_from_config(cfg, tmp_path / "ref")
    summary = reference.fit()
    assert summary["status"] == "completed" and summary["step"] == 60
    assert summary["metrics"]["hq_fraction"] > 0  # metrics that can differ

    crashed = trainer_from_config(cfg, tmp_path / "run")

    def crash():
        raise RuntimeError("simulated crash")
    fail_at(crashed, 36, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"
    assert [r["step"] for r in rows(tmp_path / "run")] == [10, 20, 30]  # row 30 is past the checkpoint (20)

    resumed = trainer_from_config(cfg, tmp_path / "run")
    summary_resumed = resumed.fit()
    assert same(summary_resumed["metrics"], summary["metrics"])
    assert same(summary_resumed["ema_metrics"], summary["ema_metrics"])
    assert_same_run(reference, resumed, tmp_path / "ref", tmp_path / "run")

    # resuming a completed run changes nothing and keeps its final metrics
    again = load_run(tmp_path / "run", checkpoint=False).fit()
    assert again["status"] == "completed" and same(again["metrics"], summary["metrics"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_exits_and_resumes(make_cfg, tmp_path, signum):
    cfg = make_cfg("train.steps=40", "train.ckpt_every=20")
    reference = trainer_from_config(cfg, tmp_path / "ref")
    reference.fit()

    sigint_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background (nohup, &)
    run = trainer_from_config(cfg, tmp_path / "run")
    fail_at(run, 27, lambda: signal.raise_signal(signum))
    with pytest.raises(Interrupted) as info:
        run.fit()
    assert info.value.code == 128 + signum
    assert f"at step 27: checkpoint saved; continue with `mege resume {tmp_path / 'run'}`" in str(info.value)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["step"] == 27
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["step"] == 27
    assert signal.getsignal(signum) is not run  # handlers restored
    assert signal.getsignal(signal.SIGINT) is sigint_before

    resumed = trainer_from_config(cfg, tmp_path / "run")
    assert resumed.fit()["status"] == "completed"
    assert_same_run(reference, resumed, tmp_path / "ref", tmp_path / "run")


def test_checkpoint_loads_with_weights_only(make_cfg, tmp_path):
    trainer_from_config(make_cfg("train.steps=20"), tmp_path).fit()
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["step"] == 20
    assert set(state["modules"]) == {"critic", "generator", "entropy", "ema"}
    assert set(state["optimizers"]) == {"critic", "generator", "entropy"}
    assert {"torch", "numpy", "python"} <= set(state["rng"])
    assert int(state["modules"]["ema"]["n_averaged"]) == 20


class NoSync(TorchDispatchMode):
    """Records every read of a tensor value into Python (``.item()``, ``bool(t)``, ``int(t)``, ...).

    Reads of the optimisers' CPU step counters inside ``torch.optim`` are not device syncs and are skipped.
    """

    def __init__(self):
        super().__init__()
        self.reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            stack = traceback.extract_stack()
            in_optimizer = any("/torch/optim/" in f.filename and "swa_utils" not in f.filename for f in stack)
            if not in_optimizer:
                self.reads.append("".join(traceback.format_list(stack[-6:-1])))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("entropy", ["mi_js", "none"])
def test_train_step_never_reads_tensors_back(make_cfg, tmp_path, entropy):
    trainer = trainer_from_config(make_cfg(f"entropy={entropy}", "train.critic_steps=2"), tmp_path)
    trainer.train_step()  # first step: EMA copy, optimiser state creation
    with NoSync() as mode:
        for step in range(2, 4):
            logs = trainer.train_step()
            trainer.watch.update(logs, step)
    assert mode.reads == [], mode.reads[0]


def test_non_finite_watch_names_first_bad_loss_and_step():
    watch = NonFiniteWatch()
    ok = torch.tensor(1.0)
    watch.update({"a": ok, "b": ok}, 1)
    watch.check("")
    watch.update({"a": ok, "b": torch.tensor(float("inf"))}, 2)
    watch.update({"a": torch.tensor(float("nan")), "b": torch.tensor(float("nan"))}, 3)
    with pytest.raises(NonFiniteError, match=r"^loss 'b' became inf at step 2; lower the learning rates"):
        watch.check("")


def test_target_outside_allowed_modules_is_refused(make_cfg, tmp_path):
    with pytest.raises(MegeError, match=r"_target_ 'os\.system' is outside the allowed modules \['mege\.', "
                                        r"'torch\.optim\.'\]; add its module to allowed_targets"):
        trainer_from_config(make_cfg("entropy=none", "+entropy.command=ls", "entropy._target_=os.system"), tmp_path)
    with pytest.raises(MegeError, match=r"_target_ 'subprocess\.run' is outside the allowed modules"):
        trainer_from_config(make_cfg("optim.critic._target_=subprocess.run"), tmp_path)


def test_user_estimator_plugs_in_by_target(make_cfg, tmp_path):
    """The compose API with the class's importable name, in this process."""
    target = f"{__name__}.SpreadEstimator"
    cfg = make_cfg("entropy=none", f"entropy._target_={target}", f"allowed_targets=[{__name__}.]", "train.steps=20")
    trainer = trainer_from_config(cfg, tmp_path)
    assert isinstance(trainer.estimator, SpreadEstimator)
    logs = trainer.train_step()
    assert set(logs) >= {"entropy_value", "entropy/spread"}
    assert trainer.fit()["status"] == "completed"


def test_user_estimator_plugs_in_through_the_cli(tmp_path):
    """The README's worked example: `mege train entropy._target_=tests.training.test_trainer.SpreadEstimator
    allowed_targets=[tests.]`, run from the repository root so `tests` is importable."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "mege.cli", "train", "entropy=none",
           "entropy._target_=tests.training.test_trainer.SpreadEstimator", "allowed_targets=[tests.]",
           "name=plugin", "device=cpu", "data=ring8", "energy.hidden=32", "generator.hidden=32",
           "train.steps=10", "train.batch_size=32", "train.eval_every=10", "train.ckpt_every=10",
           "train.plot=false", "train.progress=false", "metric.n_samples=100", f"hydra.run.dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    assert OmegaConf.load(out / "config.yaml").entropy._target_ == "tests.training.test_trainer.SpreadEstimator"


def test_lambda_h_schedule_is_linear_from_start_to_end(make_cfg, tmp_path):
    trainer = trainer_from_config(make_cfg("lambda_h=2.0", "lambda_h_end=0.5", "train.steps=40"), tmp_path)
    values = []
    for step in (0, 10, 20, 40, 50):
        trainer.step = step
        values.append(trainer.lambda_h())
    assert values == pytest.approx([2.0, 1.625, 1.25, 0.5, 0.5])
    constant = trainer_from_config(make_cfg("lambda_h=0.7", "train.steps=40"), tmp_path / "c")
    constant.step = 30
    assert constant.lambda_h() == 0.7
    with pytest.raises(MegeError, match="lambda_h_end must be ≥ 0"):
        trainer_from_config(make_cfg("lambda_h_end=-1"), tmp_path / "bad")


def test_an_estimator_yaml_may_carry_its_own_optimizer(make_cfg, tmp_path):
    """`entropy.optimizer` (a _partial_ in the estimator's yaml) is the entropy term's optimiser;
    without it optim.entropy is used."""
    own = trainer_from_config(make_cfg("+entropy.optimizer._target_=torch.optim.SGD", "+entropy.optimizer._partial_=true",
                                       "+entropy.optimizer.lr=0.5"), tmp_path / "own")
    assert type(own.entropy.optimizer) is torch.optim.SGD and own.entropy.optimizer.param_groups[0]["lr"] == 0.5
    assert own.optimizers["entropy"] is own.entropy.optimizer
    default = trainer_from_config(make_cfg(), tmp_path / "default")
    assert type(default.entropy.optimizer) is torch.optim.Adam
    assert not hasattr(default.estimator, "optimizer") and not hasattr(own.estimator, "optimizer")
