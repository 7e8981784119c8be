"""Loggers chosen by config: the default writes metrics.jsonl only; ``logger=tensorboard`` adds event files
whose scalars, read back with TensorBoard's own EventAccumulator, equal the metrics.jsonl rows (float32,
as TensorBoard stores them), the losses the trainer's steps returned, λ_H on its schedule and the
cosine-annealed learning rates; a resumed run leaves no duplicate steps; one event folder per job of a
multirun; and without tensorboard installed the run fails at start-up with a one-line install hint."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from conftest import TINY

from mege.errors import MegeError
from mege.loggers import JsonlLogger, TensorBoardLogger, evaluation_scalars
from mege.training import Trainer, trainer_from_config

pytestmark = pytest.mark.usefixtures("single_thread")
LAMBDA, LAMBDA_END, STEPS, LR = 0.3, 0.9, 40, 1e-3
TB = ["logger=tensorboard", "optim=adam_cosine", f"lambda_h={LAMBDA}", f"lambda_h_end={LAMBDA_END}",
      "train.plot=true", "train.plot_samples=200", "entropy=flow_zuko_maf"]


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator) -> dict[str, dict[int, float]]:
    """tag -> {step: value}; a step logged twice would collapse here, so the count is checked too."""
    out = {}
    for tag in accumulator.Tags()["scalars"]:
        points = accumulator.Scalars(tag)
        out[tag] = {p.step: p.value for p in points}
        assert len(out[tag]) == len(points), f"{tag}: duplicate steps {[p.step for p in points]}"
    return out


def rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def f32(value: float) -> float:
    return float(np.float32(value))


def assert_evaluations_match(tb: dict[str, dict[int, float]], run_dir) -> None:
    """Every numeric leaf of every metrics.jsonl row is the TensorBoard scalar at that row's step, and
    TensorBoard holds no evaluation scalar that metrics.jsonl lacks (a KL is NaN while no sample is
    high-quality: NaN counts as equal to NaN, the rest must be equal exactly)."""
    expected: dict[str, dict[int, float]] = {}
    for row in rows(run_dir):
        for tag, value in evaluation_scalars(row):
            expected.setdefault(tag, {})[row["step"]] = f32(value)
    assert {"metrics/modes", "metrics/reverse_kl", "ema_metrics/modes", "ema_metrics/hq_fraction", "time_s"} <= set(expected)
    np.testing.assert_equal({tag: points for tag, points in tb.items() if not tag.startswith("train/")}, expected)
    assert sum(math.isfinite(v) for points in expected.values() for v in points.values()) >= 10  # NaN = NaN here


def test_evaluation_scalars_walk_numeric_leaves_but_protocol():
    row = {"step": 20, "metrics": {"modes": 7, "kl": 0.25, "ok": True, "name": "x", "hist": [1, 2],
                                   "protocol": {"eval_seed": 1234}, "reference": {"modes": 8}},
           "ema_metrics": None, "time_s": 1.5}
    assert list(evaluation_scalars(row)) == [("metrics/modes", 7.0), ("metrics/kl", 0.25),
                                             ("metrics/reference/modes", 8.0), ("time_s", 1.5)]


def test_tensorboard_scalars_equal_metrics_jsonl_losses_lambda_and_learning_rates(make_cfg, tmp_path, monkeypatch):
    returned: dict[int, dict[str, float]] = {}
    train_step = Trainer.train_step

    def recording(self):
        logs = train_step(self)
        returned[self.step + 1] = {k: v.float().sum().item() for k, v in logs.items()}
        return logs

    monkeypatch.setattr(Trainer, "train_step", recording)
    trainer = trainer_from_config(make_cfg(*TB), tmp_path)
    assert isinstance(trainer.logger, TensorBoardLogger)
    trainer.fit()
    acc = events(tmp_path)
    tb = scalars(acc)

    assert_evaluations_match(tb, tmp_path)
    assert [r["step"] for r in rows(tmp_path)] == [20, 40]

    logged = [10, 20, 30, 40]  # log_every = 10
    losses = {"critic_loss", "penalty", "generator_loss", "generator_energy", "entropy_surrogate", "entropy_value",
              "entropy_aux_loss", "entropy/flow_nll"}
    assert set(returned[10]) == losses
    for name in losses:
        assert tb[f"train/{name}"] == {s: f32(returned[s][name]) for s in logged}, name
    # λ_H and the learning rates the logged step used: step s is the s-th update, run at trainer.step = s − 1
    assert tb["train/lambda_h"] == {s: f32(LAMBDA + (LAMBDA_END - LAMBDA) * min(1.0, (s - 1) / STEPS)) for s in logged}
    for name in ("critic", "generator", "entropy"):
        cosine = {s: LR * (1 + math.cos(math.pi * (s - 1) / STEPS)) / 2 for s in logged}
        assert tb[f"train/lr/{name}"] == pytest.approx(cosine, rel=1e-6, abs=1e-12), name
    assert tb["train/lr/generator"][40] < 1e-5 < tb["train/lr/generator"][10]

    images = acc.Images("landscape")
    assert [i.step for i in images] == [20, 40]
    from PIL import Image
    with Image.open(tmp_path / "plots" / "step_0000040.png") as png:
        assert (images[-1].width, images[-1].height) == png.size
    (text,) = acc.Tensors("config/text_summary")
    assert text.tensor_proto.string_val[0].decode() == "```yaml\n" + (tmp_path / "config.yaml").read_text() + "```"


def test_resume_purges_events_after_the_checkpoint(make_cfg, tmp_path, monkeypatch):
    """Checkpoint at 20 only, events and rows to 40, then resume: metrics.jsonl is trimmed to step 20 and
    the writer purges events after it, so every tag has each step once and equals the final rows."""
    save = Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self: save(self) if self.step == 20 else None)
    trainer_from_config(make_cfg(*TB), tmp_path).fit()
    assert max(scalars(events(tmp_path))["train/critic_loss"]) == 40
    monkeypatch.setattr(Trainer, "save", save)
    resumed = trainer_from_config(make_cfg(*TB), tmp_path)
    resumed.fit()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    tb = scalars(events(tmp_path))
    assert sorted(tb["train/critic_loss"]) == [10, 20, 30, 40]
    assert_evaluations_match(tb, tmp_path)
    assert [r["step"] for r in rows(tmp_path)] == [20, 40]


def test_default_logger_writes_metrics_jsonl_and_no_events(make_cfg, tmp_path):
    cfg = make_cfg()
    trainer = trainer_from_config(cfg, tmp_path)
    assert type(trainer.logger) is JsonlLogger and cfg.logger._target_ == "mege.loggers.JsonlLogger"
    summary = trainer.fit()
    assert [r["step"] for r in rows(tmp_path)] == [20, 40]
    assert rows(tmp_path)[-1]["metrics"] == json.loads(json.dumps(summary["metrics"], default=float))
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def test_multirun_writes_one_event_folder_per_job(run_cli, tmp_path):
    code, _, err = run_cli("train", "-m", *TINY, "logger=tensorboard", "train.steps=20", "seed=0,1",
                           f"hydra.sweep.dir={tmp_path}")
    assert code in (0, None), err
    seen = {}
    for job in ("0", "1"):
        tb = scalars(events(tmp_path / job))
        assert_evaluations_match(tb, tmp_path / job)
        seen[job] = tb["train/critic_loss"]
    assert seen["0"] != seen["1"]  # two seeds, two runs


def test_without_tensorboard_the_run_fails_at_start_up_naming_the_extra(make_cfg, run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` now raises ImportError
    with pytest.raises(MegeError, match=r"pip install 'mege\[tensorboard\]'"):
        trainer_from_config(make_cfg("logger=tensorboard"), tmp_path / "api")
    code, out, err = run_cli("train", *TINY, "logger=tensorboard", f"hydra.run.dir={tmp_path / 'cli'}")
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mege: error: logger (mege.loggers.TensorBoardLogger):")
    assert "pip install 'mege[tensorboard]'" in lines[0]
    assert not (tmp_path / "cli" / "metrics.jsonl").exists() and not (tmp_path / "cli" / "checkpoint.pt").exists()
