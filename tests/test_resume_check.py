"""The run folder's resume check and metrics trim, on hand-written folders (no training, about a second).

tests/test_run_dir.py shows the same rules end to end through ``mege train``; here each rule is
asserted on its own: which config differences refuse a resume, the refusal's exact line,
``train.resume=force``, and which metrics rows survive a resume from a checkpoint.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from mege.errors import MegeError
from mege.run_dir import RunDir, config_changes

OLD = {"seed": 0, "device": "cpu", "optimized_metric": "reverse_kl",
       "train": {"steps": 100, "resume": True, "ckpt_every": 20, "batch_size": 64},
       "optim": {"schedule": {"T_max": 100}},
       "entropy": {"_target_": "mege.entropy.knn.KNNEntropy", "k": 5,
                   "facts": {"family": "kNN", "lambda_h_grid": [0.1, 1.0], "cost": "cheap"}}}


def changed(**edits) -> dict:
    """A deep copy of OLD with dotted keys replaced."""
    new = json.loads(json.dumps(OLD))
    for dotted, value in edits.items():
        *path, leaf = dotted.split("__")
        node = new
        for key in path:
            node = node[key]
        node[leaf] = value
    return new


def test_what_may_change_and_what_may_not():
    # how a run is watched, checkpointed or placed, and what studies know about the estimator: not a change
    assert config_changes(OLD, changed(device="cuda", optimized_metric="modes", train__ckpt_every=50,
                                       train__resume=False, entropy__facts={"family": "kNN", "cost": "dear"})) == []
    # how it trains: a change, listed as key: old → new
    assert config_changes(OLD, changed(seed=1)) == ["seed: 0 → 1"]
    assert config_changes(OLD, changed(entropy__k=3)) == ["entropy.k: 5 → 3"]
    assert config_changes(OLD, changed(train__batch_size=32)) == ["train.batch_size: 64 → 32"]
    # more steps, and a schedule length that follows them: not a change; fewer steps: the schedule is one
    assert config_changes(OLD, changed(train__steps=300, optim__schedule={"T_max": 300})) == []
    assert config_changes(OLD, changed(train__steps=50, optim__schedule={"T_max": 50})) == [
        "optim.schedule.T_max: 100 → 50"]


@pytest.fixture
def run(tmp_path) -> RunDir:
    """A run folder holding OLD as config.yaml and a checkpoint at step 40."""
    run = RunDir(tmp_path / "run").mkdir()
    run.write_text(RunDir.CONFIG, yaml.safe_dump(OLD))
    run.save_checkpoint({"step": 40, "modules": {}})
    return run


def test_resume_is_refused_under_another_config_with_one_line_naming_the_fix(run):
    run.check_resume(yaml.safe_dump(OLD), True)  # the same config: continues
    run.check_resume(yaml.safe_dump(changed(train__steps=400, optim__schedule={"T_max": 400})), True)  # more steps
    with pytest.raises(MegeError) as err:
        run.check_resume(yaml.safe_dump(changed(seed=7)), True)
    assert str(err.value) == (f"{run.path} holds a checkpoint written under a different config (seed: 0 → 7); write to "
                              f"a new folder (hydra.run.dir=… or a new hydra.sweep.dir), or continue it anyway with "
                              f"train.resume=force.")
    run.check_resume(yaml.safe_dump(changed(seed=7)), "force")  # the user's call


def test_fewer_steps_than_the_checkpoint_holds_are_refused(run):
    """train.steps 30 < the checkpoint's step 40 is refused even though 30 < 100 is otherwise just a change
    of steps (a schedule that follows steps shows up as a second change)."""
    with pytest.raises(MegeError, match=r"\(train\.steps: 30 is below the checkpoint's step 40\); write to"):
        run.check_resume(yaml.safe_dump(changed(train__steps=30)), True)
    run.check_resume(yaml.safe_dump(changed(train__steps=40)), True)  # exactly the checkpoint's step: continues


def test_trim_keeps_rows_up_to_and_including_the_checkpoint_step(run):
    """Rows written after the checkpoint are dropped on resume (they will be written again); the row of
    the checkpoint's own step, and a torn last line's predecessors, stay."""
    for step in (20, 40, 60):
        run.append_metrics({"step": step, "modes": step // 20})
    with open(run.metrics, "a") as f:
        f.write('{"step": 80, "mo')  # torn by a kill
    assert run.trim_metrics(40) == {"step": 40, "modes": 2}
    assert run.rows() == [{"step": 20, "modes": 1}, {"step": 40, "modes": 2}]
    assert run.metrics.read_text() == '{"step": 20, "modes": 1}\n{"step": 40, "modes": 2}\n'
    assert run.checkpoint_step() == 40 and torch.load(run.checkpoint, weights_only=True)["step"] == 40


def test_a_key_added_later_with_its_old_behaviour_does_not_block_a_resume():
    """Run folders written before `metric.protocol` existed continue under the default protocol (mege),
    and are refused under another one (a different count)."""
    from mege.run_dir import config_changes
    old = {"metric": {"n_samples": 2500}, "train": {"steps": 10}}
    assert config_changes(old, {"metric": {"n_samples": 2500, "protocol": "mege"}, "train": {"steps": 10}}) == []
    assert config_changes(old, {"metric": {"n_samples": 2500, "protocol": "meg"}, "train": {"steps": 10}}) == [
        "metric.protocol: 'mege' → 'meg'"]
