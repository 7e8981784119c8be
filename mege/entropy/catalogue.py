"""The registered estimators: one yaml per estimator in ``configs/entropy/``, each with a ``_target_``.

``mege estimators`` prints :func:`catalogue`; an unknown ``entropy=<name>`` is answered by
:func:`unknown_estimator_message`, which lists the known names and the plug-in route.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from mege.errors import MegeError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "entropy"


@dataclass(frozen=True)
class EstimatorEntry:
    """One registered estimator: config name, its ``_target_`` class, the yaml's first comment line."""

    name: str
    target: str
    summary: str


def catalogue(config_dir: Path | str = CONFIG_DIR) -> list[EstimatorEntry]:
    """Every ``<name>.yaml`` under ``config_dir``, sorted by name."""
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise MegeError(f"no estimator configs at {config_dir}; run from a mege checkout or pass config_dir.")
    entries = []
    for path in sorted(config_dir.glob("*.yaml")):
        text = path.read_text()
        comments = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
        target = OmegaConf.create(text).get("_target_", "?")
        entries.append(EstimatorEntry(path.stem, str(target), comments[0] if comments else ""))
    return entries


def known_estimators(config_dir: Path | str = CONFIG_DIR) -> list[str]:
    """Names usable as ``entropy=<name>``, each with its target: ``"knn (mege.entropy.knn.KLEntropy)"``."""
    return [f"{entry.name} ({entry.target})" for entry in catalogue(config_dir)]


def estimator_names(config_dir: Path | str = CONFIG_DIR) -> list[str]:
    """Bare names usable as ``entropy=<name>``."""
    return [entry.name for entry in catalogue(config_dir)]


def unknown_estimator_message(name: str, config_dir: Path | str = CONFIG_DIR) -> str:
    """One line: the unknown name, the known ones, and how to plug in a class of one's own."""
    known = ", ".join(estimator_names(config_dir))
    return (f"unknown entropy estimator '{name}'; known: {known}. "
            f"Or plug in your own with entropy._target_=your.module.YourEstimator.")
