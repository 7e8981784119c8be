"""The pre-redesign import path of the trainer (issue 14), kept for scripts written against it.

New code imports from :mod:`mege.training` (trainer, composition root, settings, guards),
:mod:`mege.ema` and :mod:`mege.run_dir`. ``Trainer(cfg, out_dir)`` here is
:func:`mege.training.trainer_from_config`.
"""

from __future__ import annotations

from mege.run_dir import RunDir
from mege.tables import format_table
from mege.training.guards import Interrupted, NonFiniteError, NonFiniteWatch, StopSignals
from mege.training.settings import validate
from mege.training.runs import load_run, trainer_from_config

CHECKPOINT = RunDir.CHECKPOINT
Trainer = trainer_from_config  # Trainer(cfg, out_dir), as before the redesign

__all__ = ["CHECKPOINT", "Interrupted", "NonFiniteError", "NonFiniteWatch", "StopSignals", "Trainer",
           "format_table", "load_run", "trainer_from_config", "validate"]
