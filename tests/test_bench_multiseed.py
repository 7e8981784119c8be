"""experiments/regimes/bench_multiseed.py: S seeds stacked with torch.func get each seed's own gradient.

The benchmark's speed-up is only meaningful if the stacked step is the same computation as S separate
steps: the summed-over-seeds loss (each seed's mean loss × 1) must give seed s's parameters exactly the
gradient its own module gets on its rows of the batch.
"""
from pathlib import Path

from omegaconf import OmegaConf

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
bench = load_script("experiments/regimes/bench_multiseed.py", "bench_multiseed")


def test_stacked_seeds_get_their_own_gradients(tmp_path):
    cfg = OmegaConf.load(ROOT / "experiments/regimes/run_files/grid25_collapse_fast/100/config.yaml")
    cfg.device = "cpu"
    assert bench.check(cfg, str(tmp_path), seeds=3) < 1e-6
