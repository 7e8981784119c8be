"""Presets select group options; they do not patch a group's node.

A preset (``configs/experiment/<name>.yaml``, ``# @package _global_``) chooses options in its defaults
list (``override /penalty: real_zero_1``) and sets top-level values (seed, z_dim, lambda_h, train.*).
A tuned variant of an option is an option file of its own (``configs/penalty/real_zero_1.yaml``
inherits ``real_zero``), so a group chosen on the command line replaces the whole node, at that
option's own values.

A preset that sets a key under a group (``penalty: {weight: 1.0}``) would instead merge it into
whatever option ends up chosen: ``penalty=wgan_gp`` would run at the preset's weight, and
``penalty=wgan_div`` would crash on an unknown argument. No committed preset does this, but a
user's might: :func:`check_preset_patches` refuses it, in one line naming the fix, when the
command line re-chose that group (and did not set the patched keys itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from mege.errors import MegeError

PRESET_GROUP = "experiment"


def _leaves(node: Any, prefix: str) -> list[str]:
    """Dotted paths of the leaves under ``node`` (a dict from yaml)."""
    if isinstance(node, dict) and node:
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}.{key}")]
    return [prefix]


def _find(group: str, name: str, dirs: Iterable[Path]) -> Path | None:
    for folder in dirs:
        path = Path(folder) / group / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def _groups(dirs: Iterable[Path]) -> set[str]:
    return {p.name for d in dirs if Path(d).is_dir() for p in Path(d).iterdir() if p.is_dir()}


def preset_patches(name: str, dirs: Iterable[Path]) -> dict[str, list[str]]:
    """``{group: [dotted keys]}`` that the preset ``name`` (and the presets in its defaults list) sets
    under a config group, read from the raw yaml in the config folders ``dirs`` (first match wins)."""
    dirs = [Path(d) for d in dirs]
    groups, out, seen = _groups(dirs), {}, set()

    def visit(preset: str) -> None:
        if preset in seen:
            return
        seen.add(preset)
        path = _find(PRESET_GROUP, preset, dirs)
        if path is None:
            return
        raw = yaml.safe_load(path.read_text()) or {}
        for entry in raw.get("defaults") or []:  # a parent preset: `- grid25` (or `- /experiment/grid25`)
            if isinstance(entry, str) and entry != "_self_" and not entry.startswith("override"):
                visit(entry.removeprefix(f"/{PRESET_GROUP}/"))
        for key, value in raw.items():
            if key in groups and key not in ("defaults", "hydra", PRESET_GROUP):
                out.setdefault(key, []).extend(k for k in _leaves(value, key) if k not in out.get(key, []))

    visit(name)
    return out


def check_preset_patches(choices: Mapping[str, Any], overrides: Iterable[str], dirs: Iterable[Path]) -> None:
    """Refuse a preset that sets keys under a group the command line re-chose (one line, naming the fix).

    ``choices``: hydra's ``runtime.choices``; ``overrides``: the job's command-line overrides
    (``hydra.overrides.task``); ``dirs``: the config folders, searched in order. A patched key that
    the command line sets itself (``penalty.weight=10``) is allowed: its value is the user's.
    """
    preset = choices.get(PRESET_GROUP)
    if not preset:
        return
    overrides = [str(o) for o in overrides]
    chosen, explicit = {}, set()
    for arg in overrides:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if sep and "." not in key and key != PRESET_GROUP:
            chosen[key] = value
        elif sep:
            explicit.add(key)
    for group, keys in preset_patches(str(preset), dirs).items():
        if group not in chosen:
            continue
        left = [k for k in keys if k not in explicit and not any(k.startswith(e + ".") for e in explicit)]
        if left:
            shown = ", ".join(left[:3]) + (", ..." if len(left) > 3 else "")
            raise MegeError(
                f"experiment={preset} sets {shown} but {group} was re-chosen on the command line "
                f"({group}={chosen[group]}); put the value in a {group} option file (configs/{group}/<name>.yaml, "
                f"inheriting the base option) and select it in the preset, or pass {left[0]}=... explicitly.")


def config_folders(hydra_cfg: Any) -> list[Path]:
    """The file-system config folders of a composed config's ``hydra.runtime.config_sources``, in order."""
    sources = hydra_cfg.runtime.get("config_sources") or []
    return [Path(s.path) for s in sources if s.get("schema") == "file" and s.get("path")]


def check_composed(hydra_cfg: Any) -> None:
    """:func:`check_preset_patches` for a composed config's ``hydra`` node (or ``HydraConfig.get()``)."""
    check_preset_patches(hydra_cfg.runtime.choices, hydra_cfg.overrides.task, config_folders(hydra_cfg))
