"""Run loggers, chosen by config (``configs/logger/``): ``logger=jsonl`` (the default) or ``logger=tensorboard``.

The trainer calls, in :meth:`mege.training.trainer.Trainer.fit`:

* :meth:`JsonlLogger.start` once, after the run folder is restored (``step`` > 0 when resuming);
* :meth:`JsonlLogger.log_scalars` every ``train.log_every`` steps with the step's losses (the
  trainer's ``train_step`` logs: ``critic_loss``, ``penalty``, ``generator_loss``, ...,
  ``entropy/<info>``), the ``lambda_h`` and the learning rates ``lr/<optimizer>`` that the step used;
* :meth:`JsonlLogger.log_evaluation` at every evaluation with the row written to ``metrics.jsonl``
  (step, raw and EMA metrics, time) and the figure saved at that step (landscape or sample grid);
* :meth:`JsonlLogger.close` when the run ends, however it ends.

:class:`JsonlLogger` appends the evaluation rows to ``metrics.jsonl`` (what ``mege resume``,
``mege report`` and the studies read); a logger of one's own subclasses it and adds to it.
:class:`TensorBoardLogger` also writes TensorBoard event files into the run folder, so
``tensorboard --logdir multirun/<sweep>`` shows one run per job folder.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Iterator

from mege.errors import MegeError
from mege.run_dir import RunDir

METRICS = RunDir.METRICS
NOT_SCALARS = ("protocol",)  # descriptive blocks of a metric row (constants, strings): not plotted


def evaluation_scalars(row: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """``(tag, value)`` for every numeric leaf of a ``metrics.jsonl`` row but the step: the tag is the
    key path joined by ``/`` (``metrics/modes``, ``ema_metrics/reverse_kl``, ``time_s``); booleans,
    strings, lists and the ``protocol`` blocks are skipped."""
    for key, value in row.items():
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            if key not in NOT_SCALARS:
                yield from evaluation_scalars(value, prefix=f"{tag}/")
        elif isinstance(value, numbers.Real) and not isinstance(value, bool) and tag != "step":
            yield tag, float(value)


class JsonlLogger:
    """The default logger: one JSON row per evaluation appended to ``<run>/metrics.jsonl``.

    Training scalars are shown on the progress bar only (not stored)."""

    def __init__(self) -> None:
        self.out_dir: Path | None = None

    def start(self, out_dir: str | Path, step: int, config_text: str = "") -> None:
        self.out_dir = Path(out_dir)

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        pass

    def log_evaluation(self, row: dict[str, Any], figure: str | Path | None = None) -> None:
        RunDir(self.out_dir).append_metrics(row)

    def close(self) -> None:
        pass


class TensorBoardLogger(JsonlLogger):
    """``metrics.jsonl`` plus TensorBoard event files in the run folder (or ``<run>/<subdir>``).

    Tags: ``train/<loss>``, ``train/lambda_h``, ``train/lr/<optimizer>`` every ``log_every`` steps;
    the ``metrics.jsonl`` row's numeric leaves by key path (``metrics/<name>``, ``ema_metrics/<name>``,
    ``time_s``) and the image ``landscape`` (the landscape plot, or the sample grid for images) at
    every evaluation; the resolved config as text ``config`` at the start. On resume the writer
    purges the events after the restored step (as the trainer drops the ``metrics.jsonl`` rows after
    it), so a run killed between checkpoints shows no duplicate steps. Needs the ``tensorboard``
    package: without it the run fails at start-up with a one-line error naming the extra.
    """

    def __init__(self, subdir: str | None = None, flush_secs: int = 30, images: bool = True):
        super().__init__()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MegeError("logger=tensorboard needs the tensorboard package: pip install 'mege[tensorboard]' "
                            "(or keep the default logger=jsonl).") from None
        self._writer_class, self.subdir, self.flush_secs, self.images = SummaryWriter, subdir, int(flush_secs), images
        self.writer = None

    @property
    def log_dir(self) -> Path:
        return self.out_dir / self.subdir if self.subdir else self.out_dir

    def start(self, out_dir: str | Path, step: int, config_text: str = "") -> None:
        super().start(out_dir, step, config_text)
        self.writer = self._writer_class(str(self.log_dir), purge_step=step + 1 if step > 0 else None,
                                         flush_secs=self.flush_secs)
        if step == 0 and config_text:
            self.writer.add_text("config", "```yaml\n" + config_text + "```", 0)

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(f"train/{name}", value, step)

    def log_evaluation(self, row: dict[str, Any], figure: str | Path | None = None) -> None:
        super().log_evaluation(row, figure)
        step = int(row["step"])
        for tag, value in evaluation_scalars(row):
            self.writer.add_scalar(tag, value, step)
        if self.images and figure is not None and Path(figure).is_file():
            import numpy as np
            from PIL import Image
            with Image.open(figure) as image:
                pixels = np.asarray(image.convert("RGB"))
            self.writer.add_image("landscape", pixels, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
