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


def _describe(err: BaseException) -> str:
    """The first line of an error (hydra nests the real one under ``__cause__``)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def instantiate(node: DictConfig, allowed: Iterable[str] | None = None, where: str | None = None, **kwargs) -> Any:
    """``hydra.utils.instantiate`` after checking every ``_target_`` against the allowed prefixes.

    Errors become one-line ``MegeError`` messages naming the config key (``where``, e.g. ``"entropy"``)
    and the fix: a target outside the allowed modules, a target that cannot be imported, and an
    error raised while building it (a :class:`MegeError` from the component keeps its own message).
    """
    allowed = tuple(DEFAULT_ALLOWED) + tuple(allowed or ())
    for target in targets(node):
        check(any(target.startswith(p) for p in allowed),
              f"_target_ '{target}' is outside the allowed modules {list(allowed)}; "
              f"add its module to allowed_targets in the config (e.g. allowed_targets=[{target.rsplit('.', 1)[0]}.]).")
    target = OmegaConf.select(node, "_target_") if isinstance(node, DictConfig) else None
    label = f"{where} ({target})" if where else f"{target}"
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except hydra.errors.InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, MegeError):
            raise MegeError(f"{label}: {cause}") from None
        if isinstance(cause, ImportError) or "Error locating target" in str(err):
            lines = [line.strip() for line in str(cause or err).splitlines() if line.strip()]
            reason = lines[1] if len(lines) > 1 else _describe(cause or err)
            raise MegeError(f"{label}: cannot import '{target}' ({reason}); check the spelling, and make its module "
                            f"importable (pip install it, or run from its folder with PYTHONPATH=.).") from None
        if cause is not None:
            raise MegeError(f"{label}: {type(cause).__name__}: {_describe(cause)}; check the config keys against "
                            f"the arguments of {target}.") from None
        raise MegeError(f"could not build {label}: {_describe(err)}") from None
