"""Small helpers: seeding, device choice, RNG state capture, a module's device, ``eval_mode``
(atomic file writes: :mod:`mege.run_dir`)."""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from mege.errors import MegeError, check


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so a CPU run is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise MegeError(f"unknown device '{name}'; use device=auto, device=cpu or device=cuda[:index].") from None
    if device.type == "cuda":
        check(torch.cuda.is_available(),
              f"device={name} asked for but no CUDA device is visible; use device=auto or device=cpu.")
        count = torch.cuda.device_count()
        check(device.index is None or device.index < count,
              f"device={name} but only {count} CUDA device(s) are visible; use device=cuda:0 … cuda:{count - 1}.")
    return device


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop touches, in a form ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[nn.Module | tuple[nn.Module, ...]]:
    """Put modules in eval mode for the block, restoring each one's training flag afterwards;
    yields the module (or the tuple of modules)."""
    flags = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield modules[0] if len(modules) == 1 else modules
    finally:
        for m, flag in zip(modules, flags):
            m.train(flag)
