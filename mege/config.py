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


def search_dirs(overrides: Iterable[str]) -> list[Path]:
    """The config folders of ``hydra.searchpath=[file://DIR,...]`` among ``overrides`` (a user's own
    options, e.g. ``DIR/entropy/mine.yaml``), in order."""
    dirs: list[Path] = []
    for arg in overrides:
        key, _, value = str(arg).partition("=")
        if key.lstrip("+") == "hydra.searchpath":
            for item in value.strip("[]").split(","):
                item = item.strip().strip("'\"")
                if item.startswith("file://"):
                    dirs.append(Path(item.removeprefix("file://")))
    return dirs


def group_options(group: str, dirs: Iterable[Path] = ()) -> list[str]:
    """Names of the yaml files in ``configs/<group>/`` (e.g. the known estimators) and in ``<dir>/<group>/``
    of the extra config folders ``dirs`` (:func:`search_dirs`)."""
    folders = [Path(d) / group for d in dirs] + [config_dir() / group]
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def check_group_choice(group: str, name: str, dirs: Iterable[Path] = ()) -> None:
    """One-line error naming the known options when ``group=name`` has no yaml (in mege's configs or ``dirs``)."""
    known = group_options(group, dirs)
    if known and name not in known and name != "null":
        raise MegeError(f"unknown {group} '{name}'; known: {', '.join(known)} "
                        f"(or add configs/{group}/{name}.yaml, or set {group}._target_=your.module.Class).")


def check_override_keys(argv: list[str]) -> None:
    """Plain ``key=value`` overrides must name a key of the config they change (hydra's own error for
    a typo is several lines); the config is composed with the group choices of the first sweep job."""
    from difflib import get_close_matches

    from hydra import compose, initialize_config_dir
    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    choices, keys = [], []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or arg.startswith(("-", "~")) or key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue
        if key.lstrip("+") in groups:  # group choices (+sweep=..., +launcher=... too) shape the config
            if "(" not in value:
                choices.append(f"{key}={value.split(',')[0]}")
        elif not key.startswith("+"):
            keys.append(key)
    if not keys:
        return
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=choices, return_hydra_config=True)
            swept = cfg.hydra.sweeper.get("params") or {}  # a +sweep file's group choices count too
            chosen = {c.partition("=")[0].lstrip("+") for c in choices}
            extra = [f"{k}={str(v).split(',')[0]}" for k, v in swept.items()
                     if k in groups and k not in chosen and "(" not in str(v)]
            if extra:
                cfg = compose("config", overrides=[*choices, *extra], return_hydra_config=True)
    except Exception:  # noqa: BLE001 — a composition problem is hydra's to report
        return

    def node_at(path: list[str]):  # walks the structure without resolving interpolations
        node = cfg
        for part in path:
            if not isinstance(node, DictConfig) or part not in node.keys():
                return None
            node = node._get_node(part)
        return node

    for key in keys:
        parts = key.split(".")
        if node_at(parts) is not None:
            continue
        parent = ".".join(parts[:-1])
        node = node_at(parts[:-1])
        known = [f"{parent}.{k}" if parent else str(k) for k in node.keys()] if isinstance(node, DictConfig) else []
        close = get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise MegeError(f"unknown config key '{key}'; {hint}(a new key needs a leading +: +{key}=...).")


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
