"""The run folder: a rerun continues only under the same config; a killed sweep continues.

A sweep stopped part-way continues when the same command runs again: completed runs stop at once,
the interrupted one resumes from its checkpoint to the metrics of an uninterrupted run. A run
folder whose checkpoint was written under another config is refused with one line naming the fix
(a new folder, or train.resume=force); growing ``train.steps`` is allowed, shrinking it is not.
"""

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

from mege.errors import MegeError
from mege.run_dir import RunDir, config_changes
from mege.training import trainer_from_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("single_thread")

RUN = ["name=sweep", "device=cpu", "data=ring8", "data.std=0.2", "energy.hidden=32", "generator.hidden=32",
       "entropy.hidden=32", "train.steps=160", "train.batch_size=64", "train.log_every=10", "train.eval_every=40",
       "train.ckpt_every=20", "train.plot=false", "train.progress=false", "metric.n_samples=200"]


def mege(*argv: str) -> tuple[list[str], dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "mege.cli", *argv], dict(cwd=REPO, env=env)


def rows(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time_s"} for row in RunDir(run_dir).rows()]


def test_config_changes_ignore_growing_steps_and_what_follows_them():
    old = {"train": {"steps": 100, "resume": True, "batch_size": 64}, "optim": {"schedule": {"T_max": 100}}, "seed": 0}
    grown = {"train": {"steps": 300, "resume": True, "batch_size": 64}, "optim": {"schedule": {"T_max": 300}}, "seed": 0}
    assert config_changes(old, grown) == []
    changed = {**grown, "seed": 1}
    assert config_changes(old, changed) == ["seed: 0 → 1"]
    shrunk = {"train": {"steps": 50, "resume": True, "batch_size": 64}, "optim": {"schedule": {"T_max": 50}}, "seed": 0}
    assert config_changes(old, shrunk) == ["optim.schedule.T_max: 100 → 50"]


def test_a_checkpoint_of_another_config_is_refused_with_the_fix(make_cfg, tmp_path):
    trainer_from_config(make_cfg("train.steps=20"), tmp_path).fit()
    with pytest.raises(MegeError) as err:
        trainer_from_config(make_cfg("train.steps=20", "optim.critic.lr=0.01"), tmp_path).fit()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path} holds a checkpoint written under a different config (optim.critic.lr: ")
    assert message.endswith("write to a new folder (hydra.run.dir=… or a new hydra.sweep.dir), or continue it "
                            "anyway with train.resume=force.")
    with pytest.raises(MegeError, match=r"train\.steps: 10 is below the checkpoint's step 20"):
        trainer_from_config(make_cfg("train.steps=10"), tmp_path).fit()
    assert RunDir(tmp_path).status() == "completed"  # a refusal leaves the folder as it was
    longer = trainer_from_config(make_cfg("train.steps=40"), tmp_path).fit()  # more steps: continues
    assert longer["status"] == "completed" and longer["step"] == 40
    forced = trainer_from_config(make_cfg("train.steps=40", "optim.critic.lr=0.01", "train.resume=force"), tmp_path)
    assert forced.fit()["step"] == 40


def test_killed_sweep_reruns_to_the_same_metrics_and_a_changed_config_is_refused(tmp_path):
    sweep, ref = tmp_path / "sweep", tmp_path / "ref"
    cmd, kw = mege("train", *RUN, "seed=1", f"hydra.run.dir={ref}")  # the uninterrupted run of job 1
    reference = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    sweep_cmd = ["train", "-m", *RUN, "seed=0,1", f"hydra.sweep.dir={sweep}"]
    cmd, kw = mege(*sweep_cmd)
    victim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    deadline = time.monotonic() + 240
    while not (sweep / "1" / RunDir.CHECKPOINT).exists():
        assert victim.poll() is None, "the sweep ended before job 1's first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint of job 1 within 240 s"
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert RunDir(sweep / "0").status() == "completed" and RunDir(sweep / "1").status() == "running"
    killed_at = torch.load(sweep / "1" / RunDir.CHECKPOINT, weights_only=True)["step"]
    assert 20 <= killed_at < 160
    first = (sweep / "0" / RunDir.CHECKPOINT).stat().st_mtime_ns, rows(sweep / "0")

    cmd, kw = mege(*sweep_cmd)  # the same command again
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, done.stderr[-2000:]
    assert reference.wait(timeout=300) == 0, reference.stderr.read()[-2000:]
    assert ((sweep / "0" / RunDir.CHECKPOINT).stat().st_mtime_ns, rows(sweep / "0")) == first  # skipped
    resumed, uninterrupted = (json.loads((d / RunDir.SUMMARY).read_text()) for d in (sweep / "1", ref))
    assert resumed["status"] == "completed" and resumed["step"] == 160
    assert json.dumps(resumed["metrics"]) == json.dumps(uninterrupted["metrics"])
    assert json.dumps(resumed["ema_metrics"]) == json.dumps(uninterrupted["ema_metrics"])
    assert rows(sweep / "1") == rows(ref)

    cmd, kw = mege(*sweep_cmd, "train.steps=100")  # fewer steps than the checkpoints hold: another config
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert refused.returncode == 2
    errors = [line for line in refused.stderr.splitlines() if line.startswith("mege: error:")]
    assert errors == [f"mege: error: {sweep / '0'} holds a checkpoint written under a different config "
                      f"(train.steps: 100 is below the checkpoint's step 160; optim.schedule.total_iters: 160 → 100); "
                      f"write to a new folder (hydra.run.dir=… or a new hydra.sweep.dir), or continue it anyway "
                      f"with train.resume=force."]
    assert RunDir(sweep / "0").status() == "completed" and rows(sweep / "1") == rows(ref)


def test_a_completed_run_with_its_checkpoint_is_kept_byte_for_byte(make_cfg, tmp_path):
    # a study rerun over its own output relaunches every completed run: none of its files may be rewritten (its
    # summary once came back with another elapsed_s, and read "running" while being rewritten)
    first = trainer_from_config(make_cfg("train.steps=20"), tmp_path).fit()
    names = ("summary.json", "metrics.jsonl", "config.yaml", "checkpoint.pt")
    def files():  # contents and the file itself (an atomic rewrite is a new inode)
        return {name: ((tmp_path / name).read_bytes(), os.stat(tmp_path / name).st_ino) for name in names}

    before = files()
    kept = trainer_from_config(make_cfg("train.steps=20", "train.progress=false"), tmp_path).fit()
    assert json.dumps(kept, sort_keys=True, default=str) == json.dumps(first, sort_keys=True, default=str)  # NaN-safe
    assert files() == before
    longer = trainer_from_config(make_cfg("train.steps=30"), tmp_path).fit()  # more steps continue from the checkpoint
    assert longer["step"] == 30 and RunDir(tmp_path).status() == "completed"


def test_a_completed_run_without_its_checkpoint_is_kept_not_retrained(make_cfg, tmp_path):
    # committed run files hold summary.json, config.yaml and metrics.jsonl but no checkpoint: a study continued
    # from them must keep them (retraining would overwrite them, with another platform's numbers elsewhere)
    first = trainer_from_config(make_cfg("train.steps=20"), tmp_path).fit()
    RunDir(tmp_path).checkpoint.unlink()
    before = {name: (tmp_path / name).read_bytes() for name in ("summary.json", "metrics.jsonl")}
    kept = trainer_from_config(make_cfg("train.steps=20"), tmp_path).fit()
    assert json.dumps(kept, sort_keys=True, default=str) == json.dumps(first, sort_keys=True, default=str)  # NaN-safe
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert not RunDir(tmp_path).checkpoint.exists()  # nothing was trained
    with pytest.raises(MegeError, match=r"holds a completed run \(no checkpoint\) written under a different config "
                                        r"\(optim\.critic\.lr: "):
        trainer_from_config(make_cfg("train.steps=20", "optim.critic.lr=0.01"), tmp_path).fit()
    with pytest.raises(MegeError, match=r"completed at step 20 without its checkpoint, so it cannot continue to "
                                        r"train\.steps=40"):
        trainer_from_config(make_cfg("train.steps=40"), tmp_path).fit()
    assert {name: (tmp_path / name).read_bytes() for name in before} == before  # refusals leave it as it was
    again = trainer_from_config(make_cfg("train.steps=20", "train.resume=force"), tmp_path).fit()
    assert again["step"] == 20 and RunDir(tmp_path).checkpoint.exists()  # force trains it again
