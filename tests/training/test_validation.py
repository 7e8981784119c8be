"""Bad input gets a one-line error that names the fix, and exit status 2 from the CLI.

Every case runs ``mege.cli.main`` in this process and asserts the exact error line on stderr.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from mege.config import group_options
from mege.train import CHECKPOINT

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = ["name=v", "device=cpu", "data=ring8", "energy.hidden=16", "generator.hidden=16", "entropy.hidden=16",
        "train.steps=10", "train.batch_size=16", "train.eval_every=10", "train.ckpt_every=10",
        "train.plot=false", "train.progress=false", "metric.n_samples=50"]


class NaNData:
    """A data set whose samples contain NaN (a broken preprocessing step)."""

    shape = (2,)

    def __init__(self, **ignored):
        pass

    def sample(self, n: int) -> torch.Tensor:
        x = torch.randn(n, 2)
        x[0, 0] = float("nan")
        return x


def known(group: str) -> str:
    return re.escape(", ".join(group_options(group)))


CASES = {
    "unknown estimator": (["entropy=nope"], rf"unknown entropy 'nope'; known: {known('entropy')} \(or add "
                                            r"configs/entropy/nope\.yaml, or set entropy\._target_=your\.module\.Class\)\."),
    "toy metric on data without centres": (["data=swiss_roll"], r"toy mode metrics need a Gaussian mixture with centres, not "
                                                                r"SwissRoll; use data=ring8, data=grid25 or data=custom, or drop metric=toy"),
    "misspelt config key": (["train.stepz=5"], r"unknown config key 'train\.stepz'; did you mean train\.steps\? \(a new key "
                                               r"needs a leading \+: \+train\.stepz=\.\.\.\)\."),
    "key of the chosen group option": (["entropy=mi_js", "entropy.hiden=8"], r"unknown config key 'entropy\.hiden'; did you mean "
                                                                        r"entropy\.hidden\?"),
    "unknown data set": (["data=mnist9"], rf"unknown data 'mnist9'; known: {known('data')} "),
    "unknown penalty in a sweep list": (["penalty=real_zero,l2"], rf"unknown penalty 'l2'; known: {known('penalty')} "),
    "negative lambda_h": (["lambda_h=-1"], r"lambda_h must be a finite number ≥ 0 \(got -1\); use lambda_h=0 to switch "
                                           r"the entropy term off\."),
    "infinite lambda_h": (["lambda_h=inf"], r"lambda_h must be a finite number ≥ 0 \(got inf\)"),
    "negative penalty weight": (["penalty.weight=-1"], r"penalty \(mege\.penalties\.ZeroCentredReal\): penalty weight must "
                                                      r"be non-negative, got -1\.0; use penalty=none to switch it off"),
    "zero steps": (["train.steps=0"], r"train\.steps must be a positive integer \(got 0\); e\.g\. train\.steps=100\."),
    "negative batch size": (["train.batch_size=-4"], r"train\.batch_size must be a positive integer \(got -4\)"),
    "zero critic steps": (["train.critic_steps=0"], r"train\.critic_steps must be a positive integer \(got 0\)"),
    "zero eval interval": (["train.eval_every=0"], r"train\.eval_every must be a positive integer \(got 0\)"),
    "fractional checkpoint interval": (["train.ckpt_every=1.5"], r"train\.ckpt_every must be a positive integer \(got 1\.5\)"),
    "text log interval": (["train.log_every=often"], r"train\.log_every must be a positive integer \(got 'often'\)"),
    "x_dim does not match the data": (["x_dim=3"], r"data samples have shape \(2,\) but the generator makes \(3,\); set "
                                                  r"x_dim \(and the network configs\) to match the data\."),
    "critic width does not match the data": (["energy.x_dim=5"], r"the critic cannot take data of shape \(2,\) \(.*\); "
                                                                 r"set energy\.x_dim \(or x_dim\) to match the data\."),
    "estimator does not match the data": (["entropy.x_dim=5"], r"the entropy estimator JSMutualInformation fails on 16 "
                                                               r"generated samples .*; set its x_dim/z_dim to the config's "
                                                               r"x_dim=2, z_dim=\d+\."),
    "NaN centre in a custom mixture": (["data=custom", "data.centres=[[nan,0],[1,0]]"],
                                       r"data \(mege\.data\.mixtures\.custom\): centres must be finite numbers"),
    "data that yields NaN": ([f"data._target_={__name__}.NaNData", f"allowed_targets=[{__name__}.]"], r"the data contains NaN or Inf values; clean the dataset or its config\."),
    "EMA decay above 1": (["ema_decay=1.5"], r"ema_decay must be in \(0, 1\) \(got 1\.5\); e\.g\. ema_decay=0\.999, or "
                                             r"ema_decay=null to turn EMA off\."),
    "unknown device": (["device=gpu"], r"unknown device 'gpu'; use device=auto, device=cpu or device=cuda\[:index\]\."),
    "negative learning rate": (["optim.critic.lr=-1"], r"optim\.critic: Invalid learning rate: -1; fix optim\.critic"),
    "target outside the allowed modules": (["entropy._target_=os.system"],
                                           r"_target_ 'os\.system' is outside the allowed modules \['mege\.', "
                                           r"'torch\.optim\.'\]; add its module to allowed_targets in the config "
                                           r"\(e\.g\. allowed_targets=\[os\.\]\)\."),
    "target that does not exist": (["entropy._target_=mege.entropy.mi.JSMutualInfo"],
                                   r"entropy \(mege\.entropy\.mi\.JSMutualInfo\): cannot import "
                                   r"'mege\.entropy\.mi\.JSMutualInfo' .*; check the spelling"),
    "unexpected config key": (["+energy.width=3"], r"energy \(mege\.energy\.mlp\.MLPCritic\): TypeError: .*unexpected "
                                                   r"keyword argument 'width'; check the config keys"),
    "bf16 autocast on CPU": (["++train.amp=true"], r"train\.amp and train\.channels_last are GPU options; set them to "
                                                   r"false on CPU\."),
    "non-integer seed": (["seed=one"], r"seed must be an integer \(got 'one'\)\."),
    "zero metric sample": (["metric.n_samples=0"], r"metric \(mege\.metrics\.toy\.ToyModeMetrics\): n_samples must be a "
                                                   r"positive int, got 0"),
}


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("mege: error: ")]
    assert len(lines) == 1, err
    return lines[0][len("mege: error: "):]


@pytest.mark.parametrize("overrides, message", CASES.values(), ids=CASES.keys())
def test_train_rejects_bad_config(run_cli, tmp_path, overrides, message):
    code, _, err = run_cli("train", *TINY, *overrides, f"hydra.run.dir={tmp_path}")
    assert code == 2
    assert re.fullmatch(message + ".*", error_line(err)), error_line(err)
    assert not (tmp_path / CHECKPOINT).exists()


def test_cuda_without_a_gpu(run_cli, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here, so device=cuda is valid")
    code, _, err = run_cli("train", *TINY, "device=cuda", f"hydra.run.dir={tmp_path}")
    assert code == 2
    assert error_line(err) == "device=cuda asked for but no CUDA device is visible; use device=auto or device=cpu."


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One finished tiny run, copied by the tests that damage it."""
    from mege.cli import main
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("run")
    try:
        main(["train", *TINY, f"hydra.run.dir={run_dir}"])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    assert (run_dir / CHECKPOINT).exists()
    return run_dir


def damaged(trained_run: Path, tmp_path: Path, damage) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    damage(run_dir / CHECKPOINT)
    return run_dir


@pytest.mark.parametrize("command", ["eval", "resume"])
def test_corrupt_checkpoint(run_cli, trained_run, tmp_path, command):
    run_dir = damaged(trained_run, tmp_path, lambda p: p.write_bytes(b"\x00garbage" * 100))
    code, _, err = run_cli(command, str(run_dir))
    assert code == 2
    assert error_line(err) == (f"checkpoint {run_dir / CHECKPOINT} is corrupt or truncated (UnpicklingError); delete "
                               f"it to start over or resume from an intact copy.")


def test_truncated_checkpoint(run_cli, trained_run, tmp_path):
    run_dir = damaged(trained_run, tmp_path, lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]))
    code, _, err = run_cli("eval", str(run_dir))
    assert code == 2
    assert re.fullmatch(rf"checkpoint {re.escape(str(run_dir / CHECKPOINT))} is corrupt or truncated \(\w+\); delete it "
                        r"to start over or resume from an intact copy\.", error_line(err))


def test_checkpoint_that_is_not_from_mege(run_cli, trained_run, tmp_path):
    run_dir = damaged(trained_run, tmp_path, lambda p: torch.save({"weights": torch.zeros(3)}, p))
    code, _, err = run_cli("eval", str(run_dir))
    assert code == 2
    assert error_line(err) == (f"{run_dir / CHECKPOINT} is not a mege checkpoint; point resume at a run directory "
                               f"written by `mege train`.")


def test_checkpoint_from_another_config(run_cli, trained_run, tmp_path):
    run_dir = damaged(trained_run, tmp_path, lambda p: None)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("hidden: 16", "hidden: 24"))
    code, _, err = run_cli("eval", str(run_dir))
    assert code == 2
    assert re.fullmatch(rf"checkpoint {re.escape(str(run_dir / CHECKPOINT))} does not fit this config \(RuntimeError: "
                        r".*\); load it with the config\.yaml of the run that wrote it\.", error_line(err))


def test_run_directory_without_checkpoint(run_cli, trained_run, tmp_path):
    run_dir = damaged(trained_run, tmp_path, lambda p: p.unlink())
    code, _, err = run_cli("eval", str(run_dir))
    assert code == 2
    assert error_line(err) == f"{run_dir} has no {CHECKPOINT}; train it first (`mege resume {run_dir}`)."


def test_run_directory_without_config(run_cli, trained_run, tmp_path):
    run_dir = damaged(trained_run, tmp_path, lambda p: None)
    (run_dir / "config.yaml").unlink()
    code, _, err = run_cli("resume", str(run_dir))
    assert code == 2
    assert error_line(err) == f"{run_dir} has no config.yaml; pass a folder written by `mege train`."


@pytest.mark.parametrize("command", ["eval", "resume"])
def test_run_directory_that_does_not_exist(run_cli, command):
    code, _, err = run_cli(command, "/nope/run")
    assert code == 2
    assert error_line(err) == ("run directory /nope/run does not exist; pass a folder written by `mege train` "
                               "(it holds config.yaml and checkpoint.pt).")


def test_resume_without_a_directory(run_cli):
    code, _, err = run_cli("resume")
    assert (code, error_line(err)) == (2, "usage: mege resume <run_dir>")


def test_unknown_command(run_cli):
    code, _, err = run_cli("trian", "data=ring8")
    assert code == 2
    assert re.fullmatch(r"unknown command 'trian'; known: train, resume, eval, estimators, .*\.", error_line(err))


def test_eval_of_a_sweep_folder_refines_every_completed_run(run_cli, trained_run, tmp_path):
    sweep = tmp_path / "sweep"
    for job in ("0", "1"):
        shutil.copytree(trained_run, sweep / job)
    (sweep / "1" / "summary.json").write_text(json.dumps({"status": "failed", "step": 3}))  # skipped: not completed
    code, out, _ = run_cli("eval", str(sweep), "--mcmc-steps", "3", "--temperature", "0.5")
    assert code == 0
    assert "evaluated 1 runs" in out
    result = json.loads((sweep / "0" / "eval.json").read_text())
    assert "refined" not in result
    seek, model = result["mode_seek"], result["mcmc_T1"]  # T < 1 always comes with the model's own samples
    assert seek["steps"] == 3 and seek["protocol"]["latent_mcmc"]["temperature"] == 0.5
    assert model["steps"] == 3 and model["protocol"]["latent_mcmc"]["temperature"] == 1.0
    assert "mcmc_T1: modes=" in out and "mode_seek: modes=" in out
    assert not (sweep / "1" / "eval.json").exists()
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("eval", str(tmp_path / "empty"))  # no run under it: nothing to evaluate
    assert code == 2 and "holds no completed run" in error_line(err)


def test_eval_rejects_negative_mcmc_steps(run_cli, trained_run):
    code, _, err = run_cli("eval", str(trained_run), "--mcmc-steps", "-1")
    assert (code, error_line(err)) == (2, "--mcmc-steps must be ≥ 0 (got -1).")


def test_key_check_composes_with_sweep_and_experiment_choices():
    """Keys that exist only once +sweep / experiment choices are applied pass; a typo still fails."""
    from mege.config import check_override_keys as check_keys
    from mege.errors import MegeError
    check_keys(["+sweep=claim3_sgd", "optim.generator.momentum=0.9", "experiment=stacked_mnist_cpu", "ema_warmup=false"])
    check_keys(["entropy=glob(*)", "train.steps=10", "+launcher=joblib", "hydra.launcher.n_jobs=2", "+new.key=1"])
    with pytest.raises(MegeError, match=r"unknown config key 'optim\.generator\.momentun'; did you mean optim\.generator\.momentum\?"):
        check_keys(["+sweep=claim3_sgd", "optim.generator.momentun=0.9"])
