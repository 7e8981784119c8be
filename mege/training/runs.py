"""Entry points that put a run together: config → settings → components → trainer (docs/design.md §6)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mege.errors import MegeError, check
from mege.run_dir import RunDir
from mege.training.build import build, first_line
from mege.training.settings import Settings
from mege.training.trainer import Trainer
from mege.utils import pick_device


def trainer_from_config(cfg: DictConfig, run_dir: str | Path | RunDir) -> Trainer:
    """Validate ``cfg`` into settings, build the components, and make the trainer."""
    settings = Settings.from_config(cfg, pick_device(cfg.device))
    return Trainer(build(cfg, settings), settings, run_dir)


def load_run(run_dir: str | Path, checkpoint: bool = True, **overrides) -> Trainer:
    """A trainer rebuilt from ``run_dir/config.yaml`` with the weights of its checkpoint."""
    run = RunDir(run_dir)
    check(run.path.is_dir(), f"run directory {run} does not exist; pass a folder written by `mege train` "
                             f"(it holds config.yaml and checkpoint.pt).")
    check(run.config.exists(), f"{run} has no config.yaml; pass a folder written by `mege train`.")
    try:
        cfg = OmegaConf.load(run.config)
    except Exception as err:  # noqa: BLE001 — a yaml or omegaconf parse error
        raise MegeError(f"{run.config} is not a readable config ({first_line(err)}); "
                        f"restore it from the run's .hydra/config.yaml.") from None
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    trainer = trainer_from_config(cfg, run)
    if checkpoint:
        check(run.checkpoint.exists(), f"{run} has no {RunDir.CHECKPOINT}; train it first (`mege resume {run}`).")
        trainer.load()
    return trainer
