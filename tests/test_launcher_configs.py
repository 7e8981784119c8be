"""configs/launcher/*.yaml compose with hydra's compose API (nothing is launched or submitted).

The main config `configs/config.yaml` is used when it exists; otherwise a stub primary config
in tmp_path reaches the repo's launcher group through hydra's search path.
"""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _primary(tmp_path: Path) -> Path:
    if (CONFIGS / "config.yaml").is_file():
        return CONFIGS
    stub = tmp_path / "stub_configs"
    stub.mkdir()
    (stub / "config.yaml").write_text(f"defaults:\n  - _self_\nseed: 0\nhydra:\n  searchpath:\n    - file://{CONFIGS}\n")
    print("configs/config.yaml not found: composing against a stub primary config")
    return stub


def _launcher_override(config_dir: Path, name: str) -> str:
    """`launcher=<name>` when the primary defaults list has a launcher entry, else `+launcher=<name>`."""
    defaults = (yaml.safe_load((config_dir / "config.yaml").read_text()) or {}).get("defaults", [])
    listed = any(isinstance(d, dict) and any(k.split(" ")[-1] == "launcher" for k in d) for d in defaults)
    return f"launcher={name}" if listed else f"+launcher={name}"


def _compose(tmp_path, name, *extra):
    config_dir = _primary(tmp_path)
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        plain = compose("config")
        cfg = compose("config", overrides=[_launcher_override(config_dir, name), *extra], return_hydra_config=True)
    task = OmegaConf.to_container(cfg, resolve=False)
    task.pop("hydra")
    # `# @package _global_` + only `hydra:` keys: the task config is untouched by the launcher choice.
    assert task == OmegaConf.to_container(plain, resolve=False)
    return cfg.hydra.launcher


def test_slurm_launcher_fields_land_under_hydra_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher missing: pip install -e '.[launchers]'")
    launcher = _compose(tmp_path, "slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30")
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.timeout_min == 30  # command-line overrides win
    assert (launcher.gpus_per_node, launcher.cpus_per_task, launcher.mem_gb, launcher.array_parallelism) == (1, 4, 16, 32)
    assert (launcher.nodes, launcher.tasks_per_node) == (1, 1)


def test_slurm_launcher_defaults(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher missing: pip install -e '.[launchers]'")
    launcher = _compose(tmp_path, "slurm")
    assert launcher.partition is None and launcher.timeout_min == 120


def test_joblib_launcher_runs_two_jobs(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="hydra-joblib-launcher missing: pip install -e '.[launchers]'")
    launcher = _compose(tmp_path, "joblib")
    assert launcher._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert launcher.n_jobs == 2 and launcher.prefer == "processes"


def test_local_launcher_is_hydra_basic(tmp_path):
    launcher = _compose(tmp_path, "local")
    assert launcher._target_ == "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


# ------------------------------------------------------------------ configs/sweep/*.yaml

SWEEPS = sorted(p.stem for p in (CONFIGS / "sweep").glob("*.yaml"))


def _sweep_choices(key: str, value) -> list[str]:
    """The values hydra's basic sweeper expands ``key: value`` to (a glob against the group's yaml files)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    override = OverridesParser.create().parse_override(f"{key}={value}")
    if not override.is_sweep_override():
        return [override.get_value_element_as_str()]
    if isinstance(override.value(), Glob):
        return override.value().filter(sorted(p.stem for p in (CONFIGS / key).glob("*.yaml")))
    return list(override.sweep_string_iterator())


@pytest.mark.parametrize("sweep", SWEEPS)
def test_sweep_config_composes_for_every_swept_value(sweep):
    if not (CONFIGS / "config.yaml").is_file():
        pytest.skip("configs/config.yaml not present yet: sweep configs need the real config groups")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = compose("config", overrides=[f"+sweep={sweep}"], return_hydra_config=True)
        if not cfg.hydra.sweeper.params:  # the swept values come on the command line (the config's header says which)
            return
        params = {k: _sweep_choices(k, v) for k, v in cfg.hydra.sweeper.params.items()}
        assert params and all(params.values()), params
        assert cfg.hydra.sweep.dir.startswith("multirun/")
        first = {k: v[0] for k, v in params.items()}
        for key, values in params.items():
            if key == "seed" and len(values) > 1:
                assert values == [str(s) for s in range(len(values))]  # seeds 0..n-1
                continue
            for value in values:  # each swept value composes (groups exist, keys exist)
                job = compose("config", overrides=[f"+sweep={sweep}", *(f"{k}={value if k == key else v}" for k, v in first.items())])
                if "." in key:  # a swept scalar or list lands where it says
                    assert str(OmegaConf.select(job, key)).replace(" ", "") == value.replace(" ", "")


def test_momentum_sweeps_tie_critic_to_generator():
    if not (CONFIGS / "config.yaml").is_file():
        pytest.skip("configs/config.yaml not present yet: sweep configs need the real config groups")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        adam = compose("config", overrides=["+sweep=claim3_adam", "optim=adam", "optim.generator.betas=[0.9,0.9]"])
        sgd = compose("config", overrides=["+sweep=claim3_sgd", "optim=sgd", "optim.generator.momentum=0.9"])
    assert list(adam.optim.critic.betas) == [0.9, 0.9] and sgd.optim.critic.momentum == 0.9
