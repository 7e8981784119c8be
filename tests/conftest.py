"""Shared fixtures: a composed tiny config, and the CLI run in-process.

``make_cfg(*overrides)`` composes ``configs/config.yaml`` with :data:`TINY` (hidden 32, a few
dozen steps, small metric sample, no plots) followed by the test's own overrides (later wins).
``run_cli(*argv)`` runs ``mege.cli.main`` and returns ``(return code, stdout, stderr)``.
``A``, ``M``, ``quadratic``, ``gaussian_target``, ``chain_z_scores``: a closed-form Gaussian target for the
MCMC tests; ``Identity``, ``StubRun`` (with ``Identity2d``, ``GridCritic``): stand-ins for a trained run.
``single_thread`` runs a test with one intra-op thread: on a loaded machine two OpenMP threads
can make tiny-network steps 10–20× slower, and the count must not change inside a test that
compares two runs bit for bit. ``MEGE_TEST_DEVICE=cuda`` runs the composed configs on the GPU
(``tools/gpu_check.sh``); the default is the CPU.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from mege.config import config_dir

TINY = [
    "name=test", f"device={os.environ.get('MEGE_TEST_DEVICE', 'cpu')}", "data=ring8", "x_dim=2", "z_dim=2",
    "energy.hidden=32", "energy.depth=2", "generator.hidden=32", "generator.depth=2",
    "train.steps=40", "train.batch_size=64", "train.critic_steps=1",
    "train.log_every=10", "train.eval_every=20", "train.ckpt_every=20",
    "train.progress=false", "train.plot=false", "metric.n_samples=200",
]


def compose_config(*overrides: str):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("config", overrides=[*TINY, *overrides])


@pytest.fixture
def make_cfg():
    return compose_config


@pytest.fixture
def run_cli(capsys):
    def run(*argv: str) -> tuple[int, str, str]:
        from mege.cli import main
        saved = list(sys.argv)
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # `mege train` leaves through hydra with sys.exit
            code = exit_.code
        finally:
            sys.argv = saved
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


@pytest.fixture
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------ a closed-form target for the MCMC tests
# Identity "generator" G(z) = z and U(x) = ½ (x − m)ᵀ diag(A) (x − m): the target N(z; 0, I)·exp(−U(z)/T)
# is Gaussian with precision Λ = I + A/T and mean Λ⁻¹ (A/T) m (tests/mcmc/, tests/test_sampling.py).
A = torch.tensor([1.0, 4.0, 9.0])
M = torch.tensor([1.0, -2.0, 0.5])


def quadratic(z: torch.Tensor) -> torch.Tensor:
    """U(x) = ½ (x − m)ᵀ diag(A) (x − m)."""
    return 0.5 * ((z - M) ** 2 * A).sum(dim=1)


def gaussian_target(temperature: float, prior: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance (diagonal) of N(0, I)^prior · exp(−U/T)."""
    precision = A / temperature + (1.0 if prior else 0.0)
    return (A / temperature) * M / precision, 1.0 / precision


def chain_z_scores(chain: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, label: str) -> tuple[torch.Tensor, torch.Tensor]:
    """z-scores of the pooled mean and variance using per-chain averages (batch means over chains)."""
    kept, n_chains = chain.shape[:2]
    chain_mean = chain.mean(dim=0)  # (chains, d)
    chain_sq = ((chain - mean) ** 2).mean(dim=0)
    se_mean = chain_mean.std(dim=0) / math.sqrt(n_chains)
    se_var = chain_sq.std(dim=0) / math.sqrt(n_chains)
    z_mean = (chain_mean.mean(dim=0) - mean) / se_mean
    z_var = (chain_sq.mean(dim=0) - var) / se_var
    ess = var / (chain_mean.var(dim=0))  # per chain, from Var(chain average) = σ²/ESS
    print(f"{label}: {n_chains} chains x {kept} kept states, ESS/chain {ess.numpy().round(1)}, "
          f"z(mean) {z_mean.numpy().round(2)}, z(var) {z_var.numpy().round(2)}, "
          f"var ratio {(chain_sq.mean(dim=0) / var).numpy().round(3)}")
    return z_mean, z_var


# ------------------------------------------------------------ stand-ins for a trained run
class Identity(nn.Module):
    latent_dim = 3

    def __init__(self):
        super().__init__()
        self.unused = nn.Linear(1, 1)  # gives the module a device and a training flag

    def sample_latent(self, n, device=None):
        return torch.randn(n, self.latent_dim, device=device)

    def forward(self, z):
        return z


class StubRun:
    """What ``mege.training.load_run`` returns, reduced to what ``mege sample`` reads."""

    def __init__(self):
        from types import SimpleNamespace

        from mege.data.mixtures import grid25
        from mege.metrics.toy import ToyModeMetrics

        self.generator, self.ema, self.data = Identity2d(), None, grid25()
        self.critic = GridCritic(self.data.centres)
        self.metric = ToyModeMetrics(n_samples=500)
        self.settings = SimpleNamespace(eval_seed=3)


class Identity2d(Identity):
    latent_dim = 2

    def forward(self, z):
        return 2.0 * z


class GridCritic(nn.Module):
    """U(x) = 50 · min_k ‖x − μ_k‖² / 2 : pits at the grid centres."""

    def __init__(self, centres):
        super().__init__()
        self.register_buffer("centres", centres)

    def forward(self, x):
        return 25.0 * torch.cdist(x, self.centres).pow(2).min(dim=1).values


def load_script(relative_path: str, name: str):
    """A script of the repository (``experiments/…``, ``tools/…``) imported as module ``name``; it is
    registered in ``sys.modules`` first, since dataclasses look their module up while the class is built."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / relative_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
