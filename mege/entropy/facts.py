"""An estimator's facts, in one place: the ``facts:`` node of its yaml (``configs/entropy/<name>.yaml``).

A study, the leaderboard, the accuracy study and ``mege estimators`` read what they need to know
*about* an estimator from :func:`facts_of`, never from tables of their own::

    # configs/entropy/knn.yaml
    _target_: mege.entropy.knn.KLEntropy
    k: 4
    facts:                       # not passed to the class (CONFIG_ONLY)
      family: kNN                # the frontier's column and the leaderboard's family
      lambda_h: [0.003, 0.01, 0.03, 0.1, 0.3]   # a study's λ_H grid (`lambda_h: facts` in a spec)
      cost: 1                    # wall time of a toy run relative to a cheap estimator's
      accuracy_fit_steps: 0      # the accuracy study's fit of the estimator's own parameters

Every field may be left out; the defaults come from the class where it says (its flags
``needs_noisy_generator`` and ``fit_steps``) and otherwise from :data:`DEFAULTS`; the family then
follows the ``_target_``'s module (:func:`family_of`). A user's estimator — a yaml in the user's
``<dir>/entropy/`` added with ``hydra.searchpath=[file://<dir>]`` — is found by :func:`estimator_yaml`
in :func:`config_dirs`
and carries its facts the same way, with no edit to mege.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from omegaconf import DictConfig, OmegaConf

from mege.errors import MegeError, check

FACTS_KEY = "facts"
NONE = "none"
DEFAULT_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
"""λ_H grid of an estimator whose yaml names none (the ablation's grid for families not piloted)."""
DEFAULTS = {"lambda_h": DEFAULT_GRID, "cost": 1.0, "accuracy_fit_steps": 0}
CONFIG_ONLY = ("optimizer", FACTS_KEY)
"""Keys of an estimator's yaml that are not constructor arguments: its own optimiser (read by
:func:`mege.training.build.build`) and its facts."""
FIELDS = ("family", "lambda_h", "needs_noisy_generator", "fit_steps", "cost", "accuracy_fit_steps")


@dataclass(frozen=True)
class Facts:
    """What studies and tables need to know about one estimator (see the module docstring)."""

    name: str
    target: str
    family: str
    lambda_h: tuple[float, ...]
    needs_noisy_generator: bool
    fit_steps: int
    cost: float
    accuracy_fit_steps: int
    summary: str = ""


def family_of(target: str | None, name: str = "") -> str:
    """Estimator family from its ``_target_`` (``mege.entropy.<module>.<Class>``):
    mi → MI bound, kde (value) → KDE value, kde (…Score) → KDE score, knn → kNN, flow / zuko_flow →
    flow, stein → Stein / SSGE, posterior → posterior score, none → none; another module is its own
    family (named by the module). Without a target, the config name's prefix decides."""
    if not target:
        prefix = name.split("_")[0]
        target = {"mi": "mege.entropy.mi.X", "kde": "mege.entropy.kde." + ("KDEScore" if "score" in name else "X"),
                  "knn": "mege.entropy.knn.X", "flow": "mege.entropy.flow.X", "stein": "mege.entropy.stein.X",
                  "ssge": "mege.entropy.stein.X", "posterior": "mege.entropy.posterior.X",
                  "none": "mege.entropy.none.X"}.get(prefix, f"{name}.X")
    module, _, cls = str(target).rpartition(".")
    leaf = module.rsplit(".", 1)[-1]
    if leaf == "kde":
        return "KDE score" if "score" in cls.lower() else "KDE value"
    return {"mi": "MI bound", "knn": "kNN", "flow": "flow", "zuko_flow": "flow", "stein": "Stein / SSGE",
            "posterior": "posterior score", "none": NONE}.get(leaf, leaf or str(target))


def config_dirs(overrides: Iterable[str]) -> list[Path]:
    """Where an estimator's yaml is looked up for a run with these overrides: the folders of its
    ``hydra.searchpath`` (:func:`mege.config.search_dirs`), then mege's own ``configs/``."""
    from mege.config import config_dir, search_dirs
    return search_dirs(overrides) + [config_dir()]


def estimator_yaml(name: str, dirs: Iterable[Path] | None = None) -> Path:
    """``<dir>/entropy/<name>.yaml`` in the first of ``dirs`` (default: mege's ``configs/``) that has it
    (a one-line error naming the fix)."""
    dirs = config_dirs(()) if dirs is None else list(dirs)
    for folder in dirs:
        path = Path(folder) / "entropy" / f"{name}.yaml"
        if path.is_file():
            return path
    from mege.entropy.catalogue import estimator_names
    raise MegeError(f"no estimator yaml entropy/{name}.yaml under {', '.join(map(str, dirs))} (mege's own: "
                    f"{', '.join(estimator_names())}); add your folder with hydra.searchpath=[file://<dir>] "
                    f"holding <dir>/entropy/{name}.yaml.")


def _class_flag(target: str, flag: str, default: Any) -> Any:
    """A class attribute of ``target`` when the class imports (a user's module may not, here)."""
    module, _, cls = target.rpartition(".")
    try:
        return getattr(getattr(importlib.import_module(module), cls), flag, default)
    except (ImportError, AttributeError, ValueError):
        return default


def facts_of(name_or_cfg: str | Path | DictConfig | dict, dirs: Iterable[Path] | None = None) -> Facts:
    """The facts of an estimator given by name (looked up in ``dirs``, see :func:`estimator_yaml`),
    by the path of its yaml, or by its config node (e.g. a run's resolved ``entropy`` node)."""
    summary = ""
    if isinstance(name_or_cfg, (str, Path)) and not str(name_or_cfg).endswith(".yaml"):
        path = estimator_yaml(str(name_or_cfg), dirs)
    elif isinstance(name_or_cfg, (str, Path)):
        path = Path(name_or_cfg)
    else:
        path = None
    if path is not None:
        text = path.read_text()
        comments = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
        summary = comments[0] if comments else ""
        node, name = OmegaConf.create(text), path.stem
    else:
        node = OmegaConf.create(name_or_cfg) if isinstance(name_or_cfg, dict) else name_or_cfg
        name = ""
    target = str(node.get("_target_") or "?")
    name = name or target.rsplit(".", 1)[-1]
    given = node.get(FACTS_KEY) or {}
    given = OmegaConf.to_container(given, resolve=False) if isinstance(given, DictConfig) else dict(given)
    unknown = sorted(set(given) - set(FIELDS))
    check(not unknown, f"estimator {name}: unknown fact(s) {', '.join(unknown)} under facts:; known: {', '.join(FIELDS)}.")
    is_none = family_of(target, name) == NONE
    grid = given.get("lambda_h", (0.0,) if is_none else DEFAULTS["lambda_h"])
    grid = (grid,) if isinstance(grid, (int, float)) else grid
    fit_steps = given.get("fit_steps", node.get("fit_steps", _class_flag(target, "fit_steps", 0)))
    return Facts(name=name, target=target, family=str(given.get("family") or family_of(target, name)),
                 lambda_h=tuple(float(v) for v in grid),
                 needs_noisy_generator=bool(given.get("needs_noisy_generator",
                                                      _class_flag(target, "needs_noisy_generator", False))),
                 fit_steps=int(fit_steps or 0), cost=float(given.get("cost", DEFAULTS["cost"])),
                 accuracy_fit_steps=int(given.get("accuracy_fit_steps", DEFAULTS["accuracy_fit_steps"])),
                 summary=summary)


def constructor_node(node: DictConfig) -> DictConfig:
    """The estimator's node as its class takes it: :data:`CONFIG_ONLY` keys dropped (interpolations such as
    ``${x_dim}`` resolved first); the node itself when it has none of them."""
    if not isinstance(node, DictConfig) or not any(key in node for key in CONFIG_ONLY):
        return node
    tree = OmegaConf.to_container(node, resolve=True)
    return OmegaConf.create({k: v for k, v in tree.items() if k not in CONFIG_ONLY})
