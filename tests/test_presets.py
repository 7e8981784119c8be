"""Presets select group options; a group chosen on the command line replaces the whole node (issue 22).

* no committed preset sets a key under a group (``mege.presets.preset_patches``);
* every preset × every option of every group composes, and the chosen option's node is exactly the
  option's own (nothing of the preset leaks into it); each option is also composed for real with
  one preset (cycling through them), which checks that shortcut against hydra;
* for one 2-D recipe (ring8) and one image recipe (stacked_mnist_cpu), every option is built
  (components + shape checks) and either trains 2 steps or is refused in one line with its reason;
* the issue's examples: wgan_gp at its own λ = 10 under ring8, wgan_div under ring8, the posterior
  scores on grid25 with the noisy generators, an image critic on 2-D data refused;
* debug=smoke / debug=fast shorten any recipe; a user's preset that patches a re-chosen group is
  refused by ``mege train`` in one line naming the fix.
"""

from __future__ import annotations

import copy
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from mege.config import config_dir, group_options
from mege.errors import MegeError
from mege.presets import check_composed, check_preset_patches, preset_patches

GROUPS = ("data", "energy", "generator", "loss", "penalty", "entropy", "optim", "metric", "logger")
PRESETS = group_options("experiment")
FAST = {"train.steps": 2, "train.batch_size": 64, "train.log_every": 1, "train.eval_every": 2, "train.ckpt_every": 2,
        "train.progress": False, "train.plot": False, "metric.n_samples": 200, "device": "cpu"}
"""configs/debug/fast.yaml, applied to a composed config (checked against the file below)."""

# Why a representative recipe refuses an option: (recipe, group, option regex) → message regex.
REFUSED = {
    ("ring8", "data", r"stacked_mnist4?"): r"data samples have shape \(\d, 28, 28\) but the generator makes \(2,\)",
    ("ring8", "data", r"swiss_roll"): r"toy mode metrics need a Gaussian mixture with centres",
    ("ring8", "energy", r"dcgan_.*"): r"DCGANCritic takes 28×28 images .* but got samples of 2 values; choose a critic",
    ("ring8", "generator", r"dcgan_.*"): r"data samples have shape \(2,\) but the generator makes \(3, 28, 28\); "
                                         r"set x_dim \(and the network configs\)",
    ("ring8", "entropy", r"posterior_.*"): r"needs a noisy generator .* use generator=noisy_mlp",
    ("ring8", "metric", r"stacked_mnist"): r"Stacked MNIST samples must be \(n, n_stack, 28, 28\), got \(200, 2\)",
    ("stacked_mnist_cpu", "data", r"custom|grid25.*|ring8.*|swiss_roll"): r"data samples have shape \(2,\) but the generator makes",
    ("stacked_mnist_cpu", "data", r"stacked_mnist4"): r"x_dim=2352 but data samples have 3136 values; set x_dim=3136",
    ("stacked_mnist_cpu", "generator", r"(noisy_)?mlp.*"): r"data samples have shape \(3, 28, 28\) but the generator makes \(2352,\)",
    ("stacked_mnist_cpu", "entropy", r"posterior_.*"): r"needs a noisy generator .* use generator=noisy_mlp",
    ("stacked_mnist_cpu", "entropy", r"kde|kde_learned"): r"KDE whitening needs more samples than dimensions",
    ("stacked_mnist_cpu", "metric", r"toy"): r"toy mode metrics need a Gaussian mixture with centres",
}
NOT_BUILT = {("stacked_mnist_cpu", "entropy", r"flow_.*"):
             "a flow on 2352-d images takes 5–25 s to build here; tests/entropy covers the flows' contract"}


def expected(table: dict, recipe: str, group: str, option: str):
    return next((v for (r, g, o), v in table.items() if (r, g) == (recipe, group) and re.fullmatch(o, option)), None)


def tiny_mnist(folder: Path) -> Path:
    """A 12-image IDX test split (blank digits), enough for StackedMNIST to sample from."""
    pixels = np.zeros((12, 28, 28), dtype=np.uint8)
    header = lambda magic, shape: struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in shape)  # noqa: E731
    (folder / "t10k-images-idx3-ubyte").write_bytes(header(2051, pixels.shape) + pixels.tobytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(header(2049, (12,)) + bytes([*range(10), 1, 1]))
    return folder


@pytest.fixture(scope="module")
def composed():
    """Each preset composed alone, and each option composed for real with one preset (cycling)."""
    presets, real = {}, {}
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        for preset in PRESETS:
            presets[preset] = compose("config", overrides=[f"experiment={preset}"], return_hydra_config=True)
        options = [(g, o) for g in GROUPS for o in group_options(g)]
        for i, (group, option) in enumerate(options):
            preset = PRESETS[i % len(PRESETS)]
            real[group, option] = (preset, compose("config", overrides=[f"experiment={preset}", f"{group}={option}"],
                                                   return_hydra_config=True))
    return presets, real


def raw(node) -> dict:
    """The config as written (interpolations unresolved), without hydra's node."""
    out = OmegaConf.to_container(node, resolve=False)
    out.pop("hydra", None)
    return out


def with_option(presets, real, preset: str, group: str, option: str):
    """``experiment=<preset> <group>=<option>``: the preset's config with the option's own node in place."""
    return OmegaConf.create({**raw(presets[preset]), group: raw(real[group, option][1])[group]})


def test_no_committed_preset_patches_a_group():
    assert set(PRESETS) >= {"grid25", "ring8", "ring8_collapse", "grid25_collapse", "stacked_mnist_cpu"}
    assert "debug" not in PRESETS
    for preset in PRESETS:
        assert preset_patches(preset, [config_dir()]) == {}, preset


def test_every_preset_with_every_option_composes_to_the_options_own_node(composed):
    presets, real = composed
    for (group, option), (preset, cfg) in real.items():  # each option, composed for real with one preset
        check_composed(cfg.hydra)
        assert cfg.hydra.runtime.choices[group] == option
        assert raw(cfg) == raw(with_option(presets, real, preset, group, option))
    # Every preset's group nodes are exactly its chosen options' own nodes, so choosing another option
    # replaces the whole node for every preset × option (the product the loop above samples).
    n = 0
    for preset, cfg in presets.items():
        choices = cfg.hydra.runtime.choices
        for group in GROUPS:
            assert raw(cfg)[group] == raw(real[group, choices[group]][1])[group], (preset, group)
        n += sum(len(group_options(g)) for g in GROUPS)
    assert n > 400
    with initialize_config_dir(str(config_dir()), version_base="1.3"):  # ... and the same as without a preset
        for group, option in [("penalty", "wgan_gp"), ("generator", "noisy_mlp"), ("optim", "sgd"), ("energy", "mlp")]:
            alone = compose("config", overrides=[f"{group}={option}"])
            assert raw(alone)[group] == raw(real[group, option][1])[group]


@pytest.mark.parametrize("recipe", ["ring8", "stacked_mnist_cpu"])
def test_every_option_trains_two_steps_or_is_refused_in_one_line(recipe, composed, tmp_path, single_thread):
    from mege.training import trainer_from_config
    presets, real = composed
    root = tiny_mnist(tmp_path)
    HydraConfig.instance().set_config(presets[recipe])  # the run name's ${hydra:runtime.choices.*}
    outcomes = {"trained": [], "refused": [], "not built": []}
    for (group, option) in real:
        if (reason := expected(NOT_BUILT, recipe, group, option)) is not None:
            print(f"{recipe} {group}={option}: not built ({reason})")
            outcomes["not built"].append(option)
            continue
        cfg = with_option(presets, real, recipe, group, option)
        with open_dict(cfg):
            for key, value in FAST.items():
                OmegaConf.update(cfg, key, value)
            if "root" in cfg.data:
                cfg.data.root = str(root)
            for node in (cfg.energy, cfg.generator):  # small conv nets
                if "width" in node:
                    node.width = 2
            if "classifier_path" in cfg.metric:  # a small classifier counts the stacks
                cfg.metric.classifier_path = str(tmp_path / "c.pt")
        if not (tmp_path / "c.pt").exists():
            from mege.metrics.classifier import DigitClassifier, save_classifier
            save_classifier(DigitClassifier(width=2, hidden=8), {"arch": {"width": 2, "hidden": 8, "dropout": 0.3}}, tmp_path / "c.pt")
        want = expected(REFUSED, recipe, group, option)
        try:
            summary = trainer_from_config(cfg, tmp_path / f"{group}-{option}").fit()
        except MegeError as err:
            message = str(err)
            assert "\n" not in message, f"{group}={option}: a refusal must be one line: {message!r}"
            assert want is not None and re.search(want, message), f"{recipe} {group}={option} refused: {message}"
            outcomes["refused"].append(option)
            continue
        assert want is None, f"{recipe} {group}={option} should be refused ({want}) but trained"
        assert summary["status"] == "completed" and summary["step"] == 2, (group, option)
        outcomes["trained"].append(option)
    print(recipe, {k: len(v) for k, v in outcomes.items()})
    assert len(outcomes["trained"]) >= 30 and len(outcomes["refused"]) >= 5


def test_fast_debug_matches_its_file():
    text = (config_dir() / "debug" / "fast.yaml").read_text()
    node = OmegaConf.create(text)
    flat = {f"train.{k}": v for k, v in node.train.items()} | {f"metric.{k}": v for k, v in node.metric.items()}
    assert {k: v for k, v in FAST.items() if k != "device"} == flat


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    check_composed(cfg.hydra)
    return cfg


def test_a_chosen_penalty_runs_at_its_own_weight():
    assert compose_cfg("experiment=ring8").penalty.weight == 1.0
    assert compose_cfg("experiment=ring8", "penalty=wgan_gp").penalty.weight == 10.0  # not the recipe's 1.0
    assert compose_cfg("experiment=grid25", "penalty=wgan_gp").penalty.weight == 10.0
    assert "weight" not in compose_cfg("experiment=ring8", "penalty=wgan_div").penalty
    assert compose_cfg("experiment=stacked_mnist_cpu", "penalty=real_zero").penalty.weight == 0.1
    claim1 = compose_cfg("+sweep=claim1_penalty").hydra.sweeper.params
    assert claim1.penalty == "real_zero,real_zero_1,wgan_gp,none"


def test_debug_is_a_group_usable_with_any_preset():
    smoke = compose_cfg("experiment=grid25", "debug=smoke")
    assert (smoke.train.steps, smoke.train.batch_size, smoke.metric.n_samples, smoke.z_dim) == (200, 64, 500, 2)
    images = compose_cfg("experiment=stacked_mnist_cpu", "debug=smoke")
    assert (images.train.steps, images.metric.n_samples, images.x_dim) == (200, 500, 2352)
    assert compose_cfg("+sweep=smoke").train.steps == 200


@pytest.mark.parametrize("overrides", [
    ["experiment=ring8", "penalty=wgan_div"],
    ["experiment=grid25", "generator=noisy_mlp", "entropy=posterior_is"],
    ["experiment=ring8", "generator=noisy_mlp_relu256", "entropy=posterior_hmc"],
])
def test_the_issues_examples_run_two_steps(overrides, tmp_path, run_cli, single_thread):
    code, _, err = run_cli("train", *overrides, "debug=fast", "name=test", f"hydra.run.dir={tmp_path}")
    assert code in (0, None), err
    assert (tmp_path / "summary.json").is_file() and '"completed"' in (tmp_path / "summary.json").read_text()


def test_an_image_critic_on_2d_data_is_refused_in_one_line(tmp_path, run_cli):
    code, _, err = run_cli("train", "experiment=grid25", "energy=dcgan_cpu", "debug=fast", f"hydra.run.dir={tmp_path}")
    lines = [line for line in err.splitlines() if line.startswith("mege: error")]
    assert code == 2 and len(lines) == 1
    assert "DCGANCritic takes 28×28 images with 3 channels (2352 values per sample) but got samples of 2 values" in lines[0]
    assert "choose a critic for this data (energy=mlp" in lines[0]


USER_PRESET = """# @package _global_
defaults:
  - ring8
penalty:
  weight: 2.0
energy:
  hidden: 64
"""


def test_a_users_preset_patch_of_a_rechosen_group_is_refused(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(USER_PRESET)
    dirs = [tmp_path, config_dir()]
    assert preset_patches("mine", dirs) == {"penalty": ["penalty.weight"], "energy": ["energy.hidden"]}
    choices = {"experiment": "mine", "penalty": "wgan_gp"}
    with pytest.raises(MegeError) as err:
        check_preset_patches(choices, ["experiment=mine", "penalty=wgan_gp"], dirs)
    assert str(err.value) == (
        "experiment=mine sets penalty.weight but penalty was re-chosen on the command line (penalty=wgan_gp); "
        "put the value in a penalty option file (configs/penalty/<name>.yaml, inheriting the base option) and "
        "select it in the preset, or pass penalty.weight=... explicitly.")
    check_preset_patches(choices, ["experiment=mine"], dirs)  # nothing re-chosen: the patch applies as written
    check_preset_patches(choices, ["experiment=mine", "penalty=wgan_gp", "penalty.weight=10"], dirs)  # the user's value
    check_preset_patches(choices, ["experiment=mine", "loss=hinge", "penalty.weight=3"], dirs)
    with pytest.raises(MegeError, match=r"experiment=mine sets energy.hidden but energy was re-chosen .*\(energy=dcgan_cpu\)"):
        check_preset_patches(choices, ["experiment=mine", "energy=dcgan_cpu"], dirs)


def test_mege_train_refuses_the_patch_before_building(tmp_path, run_cli, monkeypatch):
    configs = tmp_path / "configs"
    shutil.copytree(config_dir(), configs)
    (configs / "experiment" / "mine.yaml").write_text(USER_PRESET)
    monkeypatch.setenv("MEGE_CONFIG_DIR", str(configs))
    code, _, err = run_cli("train", "experiment=mine", "penalty=wgan_div", "debug=fast", f"hydra.run.dir={tmp_path / 'run'}")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and lines[-1].startswith("mege: error: experiment=mine sets penalty.weight but penalty was re-chosen")
    assert "pass penalty.weight=... explicitly" in lines[-1] and not (tmp_path / "run" / "checkpoint.pt").exists()
