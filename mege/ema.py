r"""Exponential moving average of a generator's weights (docs/design.md §5).

``θ̄ ← θ`` on the first update, then ``θ̄ ← d·θ̄ + (1 − d)·θ`` over parameters *and* buffers, with
``d = decay`` or, with warm-up, ``d = min(decay, (1 + t)/(10 + t))`` at update ``t`` so a short run
forgets its initial weights (decay 0.999 alone still gives them weight 0.999^t ≈ 0.37 at t = 1 000).

:class:`EMA` keeps its whole state in its ``state_dict``: the averaged copy under ``module.*`` and
the update count ``n_averaged`` — the layout of ``torch.optim.swa_utils.AveragedModel``, so
checkpoints written before this module load unchanged. The arithmetic is AveragedModel's
(``torch._foreach_lerp_`` on floating tensors) without its per-step host read of ``n_averaged``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from mege.errors import check


def decay_at(decay: float, updates: int, warmup: bool) -> float:
    """The decay of the update after ``updates`` earlier ones (see the module docstring)."""
    return min(decay, (1 + updates) / (10 + updates)) if warmup else decay


class EMA(nn.Module):
    """The averaged copy of ``model`` (``.module``), updated by :meth:`update`."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False):
        super().__init__()
        check(0.0 < decay < 1.0, f"ema decay must be in (0, 1) (got {decay}); set ema_decay=null to turn EMA off.")
        self.module = copy.deepcopy(model)
        device = next(iter(model.parameters()), torch.empty(0)).device
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=device))
        self.decay, self.warmup = float(decay), bool(warmup)
        self.updates = 0  # a host copy of n_averaged, so update() never reads the device

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        mine = [*self.module.parameters(), *self.module.buffers()]
        theirs = [b.detach() for b in [*model.parameters(), *model.buffers()]]
        pairs = list(zip(mine, theirs))
        floats = [(a, b) for a, b in pairs if a.is_floating_point() or a.is_complex()]
        others = [(a, b) for a, b in pairs if not (a.is_floating_point() or a.is_complex())]
        if self.updates == 0:
            torch._foreach_copy_([a for a, _ in floats + others], [b for _, b in floats + others])
        else:
            d = decay_at(self.decay, self.updates, self.warmup)
            if floats:
                torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], 1 - d)
            for a, b in others:
                a.copy_(a * d + b * (1 - d))
        self.n_averaged += 1
        self.updates += 1

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False):
        out = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.updates = int(self.n_averaged)
        return out


def ema_or_none(model: nn.Module, decay: float | None, warmup: bool = False) -> EMA | None:
    """An :class:`EMA` of ``model``, or None when ``decay`` is None/0 (EMA off)."""
    return EMA(model, decay, warmup) if decay else None


def averaged(ema: EMA | None, model: nn.Module) -> nn.Module:
    """The weights to show: the EMA's copy when there is one, else ``model`` itself."""
    return ema.module if ema is not None else model

