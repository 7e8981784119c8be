"""``mege train [hydra overrides]`` (``-m`` for a sweep) and ``mege resume <run_dir>``.

A rerun of the same command continues its run folders: completed runs stop at once, interrupted
ones resume from their checkpoints, and a folder whose checkpoint was written under another
config is refused (:meth:`mege.run_dir.RunDir.check_resume`). The value returned to a sweeper is
the config's ``optimized_metric``.
"""

from __future__ import annotations

import json
import sys

from mege.config import check_group_choice, check_override_keys, config_dir, search_dirs
from mege.errors import MegeError, check


def check_overrides(argv: list[str]) -> None:
    """``group=name`` overrides must name a yaml of that group; λ's must be ≥ 0."""
    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    dirs = search_dirs(argv)  # a user's own options, added with hydra.searchpath=[file://DIR]
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if sep and key in groups and "(" not in value:  # sweep functions such as glob(*) pass through
            for choice in value.split(","):
                check_group_choice(key, choice, dirs)


def sweep_objective(summary: dict, metric: str | None) -> float | None:
    """What a run returns to a hydra sweeper: the config's ``optimized_metric`` of the EMA generator
    when there is one, else of the raw generator (None when the name is null or absent)."""
    metrics = summary.get("ema_metrics") or summary.get("metrics") or {}
    return metrics.get(metric) if metric else None


def train(argv: list[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    check_overrides(argv)
    check_override_keys(argv)

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
    def run(cfg) -> float | None:
        from mege.presets import check_composed
        from mege.training import trainer_from_config
        try:
            check_composed(HydraConfig.get())  # a preset's patch to a group re-chosen here is refused
            trainer = trainer_from_config(cfg, HydraConfig.get().runtime.output_dir)
            summary = trainer.fit()
        except MegeError as err:
            print(f"mege: error: {err}", file=sys.stderr)
            sys.exit(2)
        return sweep_objective(summary, trainer.settings.optimized_metric)

    sys.argv = ["mege train", *argv]
    run()
    return 0


def resume(argv: list[str]) -> int:
    check(len(argv) == 1, "usage: mege resume <run_dir>")
    from mege.training import load_run
    trainer = load_run(argv[0], checkpoint=False)
    summary = trainer.fit()
    print(json.dumps(summary, indent=2, default=float))
    return 0
