"""What stops a run: NaN/Inf losses and parameters, SIGTERM/SIGINT (docs/design.md §7).

* :class:`NonFiniteWatch` records on the device the first step at which each logged loss went
  NaN/Inf (a handful of tiny device ops per step, no host sync); :meth:`NonFiniteWatch.check`
  synchronises once, at log/eval/checkpoint intervals, and raises :class:`NonFiniteError`.
* :class:`StopSignals`: SIGTERM/SIGINT set a flag the loop reads after the current step; a second
  SIGINT aborts at once. :class:`Interrupted` is the ``SystemExit`` (128 + signal number) raised
  after the checkpoint is saved.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import torch
from torch import Tensor, nn

from mege.errors import MegeError


class NonFiniteError(MegeError):
    """A loss or parameter became NaN or Inf."""


class Interrupted(SystemExit):
    """SIGTERM/SIGINT: a checkpoint was saved; exit status 128 + signal number."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + signum)
        self.signum, self.message = signum, message

    def __str__(self) -> str:
        return self.message


class NonFiniteWatch:
    """For each logged loss, the first step at which it was NaN/Inf — tracked on the device."""

    def __init__(self) -> None:
        self.names: tuple[str, ...] = ()
        self.first: Tensor | None = None
        self.value: Tensor | None = None

    def update(self, logs: dict[str, Tensor], step: int) -> None:
        names = tuple(logs)
        values = torch.stack([v.detach().float().sum() for v in logs.values()])
        if names != self.names:  # a new set of losses (rare): settle the old one, start over
            self.check(where="")
            self.names = names
            self.first = torch.full((len(names),), -1, dtype=torch.long, device=values.device)
            self.value = torch.zeros_like(values)
        bad = ~torch.isfinite(values) & (self.first < 0)
        self.first = torch.where(bad, step, self.first)
        self.value = torch.where(bad, values, self.value)

    def check(self, where: str) -> None:
        if self.first is None:
            return
        first = self.first.tolist()
        hits = [(step, i) for i, step in enumerate(first) if step >= 0]
        if hits:
            step, i = min(hits)
            raise NonFiniteError(f"loss '{self.names[i]}' became {self.value[i].item()} at step {step}; lower the "
                                 f"learning rates or λ, or resume from the last good checkpoint{where}.")


def check_finite_parameters(modules: dict[str, nn.Module], step: int, checkpoint: Any) -> None:
    """Raise :class:`NonFiniteError` naming the first NaN/Inf parameter or buffer."""
    for mod_name, module in modules.items():
        for name, p in [*module.named_parameters(), *module.named_buffers()]:
            if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                raise NonFiniteError(f"parameter '{mod_name}.{name}' is non-finite at step {step}; lower "
                                     f"the learning rates, or resume from the last good {checkpoint}.")


class StopSignals:
    """SIGTERM/SIGINT set :attr:`signum`; the loop reads it after the current step. A second SIGINT aborts."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
