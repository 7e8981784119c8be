"""Training: the composition root (:mod:`.build`), frozen settings (:mod:`.settings`), what stops a
run (:mod:`.guards`), the loop (:mod:`.trainer`) and the entry points (:mod:`.runs`). See docs/design.md §6–§7."""

from mege.training.build import Components, build
from mege.training.guards import Interrupted, NonFiniteError, NonFiniteWatch
from mege.training.settings import Settings, validate
from mege.training.runs import load_run, trainer_from_config
from mege.training.trainer import Trainer

__all__ = ["Components", "Interrupted", "NonFiniteError", "NonFiniteWatch", "Settings", "Trainer", "build",
           "load_run", "trainer_from_config", "validate"]
