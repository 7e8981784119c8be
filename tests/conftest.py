"""Shared fixtures: a composed tiny config, and the CLI run in-process.

``make_cfg(*overrides)`` composes ``configs/config.yaml`` with :data:`TINY` (hidden 32, a few
dozen steps, small metric sample, no plots) followed by the test's own overrides (later wins).
``run_cli(*argv)`` runs ``mege.cli.main`` and returns ``(return code, stdout, stderr)``.
``single_thread`` runs a test with one intra-op thread: on a loaded machine two OpenMP threads
can make tiny-network steps 10–20× slower, and the count must not change inside a test that
compares two runs bit for bit. ``MEGE_TEST_DEVICE=cuda`` runs the composed configs on the GPU
(``experiments/gpu_check.sh``); the default is the CPU.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir

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
