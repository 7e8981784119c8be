"""Training: the composition root (:mod:`.build`), frozen settings (:mod:`.settings`), what stops a
run (:mod:`.guards`) and the loop (:mod:`.trainer`). See docs/design.md §6–§7."""

from mege.training.build import Components, build
from mege.training.guards import Interrupted, NonFiniteError, NonFiniteWatch
from mege.training.settings import Settings, validate
from mege.training.trainer import Trainer, load_run, trainer_from_config

__all__ = ["Components", "Interrupted", "NonFiniteError", "NonFiniteWatch", "Settings", "Trainer", "build",
           "load_run", "trainer_from_config", "validate"]
