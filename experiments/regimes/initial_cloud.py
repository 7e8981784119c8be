"""Where the generator's samples are before training (issue 23: the collapse's cause).

    python experiments/regimes/initial_cloud.py RUN_DIR [RUN_DIR ...]

Rebuilds each run's untrained generator from its config.yaml (same seed, so the same initial
weights as the run), draws 2 500 samples and prints, in data units: the cloud's centre, its
radius (90 % of samples within), and the distance from the cloud's centre to the nearest and to
the farthest mixture centre.
"""
import sys
import tempfile

import torch
from omegaconf import OmegaConf

from mege.training.runs import trainer_from_config

torch.set_num_threads(1)
for run in sys.argv[1:]:
    cfg = OmegaConf.load(f"{run}/config.yaml")
    cfg.device = "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        t = trainer_from_config(cfg, tmp)
        g = t.generator.eval()
        with torch.no_grad():
            x = t.data.to_data_units(g(g.sample_latent(2500, "cpu"))).double()
    c = x.mean(0)
    r90 = (x - c).norm(dim=1).quantile(0.9).item()
    d = (t.data.centres.double() - c).norm(dim=1)
    print(f"{run}\tcentre=({c[0]:.3f}, {c[1]:.3f})\tr90={r90:.3f}\tnearest_mode={d.min():.3f}\tfarthest_mode={d.max():.3f}\t"
          f"modes_within_r90={int((d <= r90).sum())}/{len(d)}")
