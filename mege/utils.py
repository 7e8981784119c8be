"""Small helpers: seeding, device choice, RNG state capture, atomic file writes."""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: readers never see a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str | Path, obj: Any) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, default=float)
    atomic_write(path, write)
