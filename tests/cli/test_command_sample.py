"""``mege sample``: a stub run with pits at the grid centres; samples, statistics and the landscape written."""

from __future__ import annotations

import pytest
import torch

from conftest import StubRun
from mege.errors import MegeError


def test_sample_cli_writes_samples_stats_and_landscape(tmp_path, monkeypatch, capsys):
    import json

    import mege.cli.sample
    from mege.cli.sample import main

    monkeypatch.setattr(mege.cli.sample, "load_run", lambda run_dir: StubRun())
    out = tmp_path / "out"
    assert main([str(tmp_path), "--steps", "40", "--out", str(out), "--chains-plotted", "5"]) == 0
    printed = capsys.readouterr().out
    print(printed)
    saved = torch.load(out / "samples.pt", weights_only=True)
    assert saved["x"].shape == (500, 2) and saved["paths"].shape == (5, 41, 2)
    report = json.loads((out / "acceptance.json").read_text())
    plain, refined = report["metrics"]
    assert plain["steps"] == "plain" and refined["steps"] == "40 (mcmc_T1)"  # T = 1: the model's samples, named
    assert 0.3 < report["acceptance"]["accept_rate"] < 0.8
    # the pits pull samples in: far more high-quality samples after MCMC than from G alone
    assert refined["hq_fraction"] > plain["hq_fraction"] + 0.2
    assert (out / "landscape.png").stat().st_size > 10_000
    assert "| plain |" in printed and "| 40 (mcmc_T1) |" in printed
    with pytest.raises(MegeError, match="--sampler"):
        main([str(tmp_path), "--steps", "4", "--sampler", "os.system"])
