"""Config helpers: where the configs live, which options a group has, safe instantiation.

Components are chosen by ``_target_`` only. Before instantiating, every ``_target_`` in the node
is checked against ``allowed_targets`` (prefixes; by default ``mege.`` and ``torch.optim.``,
plus any module the user lists), so a config or checkpoint from elsewhere cannot run
arbitrary code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import hydra.utils
from omegaconf import DictConfig, ListConfig, OmegaConf

from mege.errors import MegeError, check

DEFAULT_ALLOWED = ("mege.", "torch.optim.")


def config_dir() -> Path:
    """``$MEGE_CONFIG_DIR`` or the repository's ``configs/``."""
    return Path(os.environ.get("MEGE_CONFIG_DIR", Path(__file__).resolve().parents[1] / "configs"))


def group_options(group: str) -> list[str]:
    """Names of the yaml files in ``configs/<group>/`` (e.g. the known estimators)."""
    folder = config_dir() / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def check_group_choice(group: str, name: str) -> None:
    """One-line error naming the known options when ``group=name`` has no yaml."""
    known = group_options(group)
    if known and name not in known and name != "null":
        raise MegeError(f"unknown {group} '{name}'; known: {', '.join(known)} "
                        f"(or add configs/{group}/{name}.yaml, or set {group}._target_=your.module.Class).")


def targets(node: Any) -> Iterable[str]:
    if isinstance(node, DictConfig):
        for key, value in node.items_ex(resolve=False) if hasattr(node, "items_ex") else node.items():
            if key == "_target_":
                yield str(value)
            else:
                yield from targets(value)
    elif isinstance(node, ListConfig):
        for value in node:
            yield from targets(value)


def instantiate(node: DictConfig, allowed: Iterable[str] | None = None, **kwargs) -> Any:
    """``hydra.utils.instantiate`` after checking every ``_target_`` against the allowed prefixes."""
    allowed = tuple(DEFAULT_ALLOWED) + tuple(allowed or ())
    for target in targets(node):
        check(any(target.startswith(p) for p in allowed),
              f"_target_ '{target}' is outside the allowed modules {list(allowed)}; "
              f"add its module to allowed_targets in the config (e.g. allowed_targets=[{target.rsplit('.', 1)[0]}.]).")
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except hydra.errors.InstantiationException as err:
        first = str(err).strip().splitlines()[0]
        raise MegeError(f"could not build {OmegaConf.select(node, '_target_')}: {first}") from None
