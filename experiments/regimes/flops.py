"""Matmul FLOPs per training step of a toy run (issue 23, deliverable 2), analytic and counted.

    python experiments/regimes/flops.py RUN_DIR [--count]

Analytic count, per sample, from the run's config.yaml (MLP critic with optional random Fourier
features, MLP generator, one critic update per generator update, penalty on real samples):
  F = critic forward  = 2·(d·m) [Fourier] + 2·(in·h + (depth−1)·h·h + h·1)
  G = generator forward = 2·(z·h + (depth−1)·h·h + h·d)
  critic update:    G (fake, no grad) + 3F (fake fwd+bwd) + 3F (real fwd+bwd) + 6F (penalty double backward ≈ ×2 more on real)
  generator update: 3G + 3F (critic forward + backward to its input, counted as a full backward)
  per step = batch · (4G + 15F) · critic_steps-adjusted; lazy penalty (every k) counts 6F/k.
``--count`` also runs one real train step under torch.profiler (with_flops: aten::mm and aten::addmm
calls, forward and backward, as the profiler counts them) as a cross-check.
"""
from __future__ import annotations

import argparse
import tempfile

from omegaconf import OmegaConf


def analytic(cfg) -> dict:
    e, g, t = cfg.energy, cfg.generator, cfg.train
    d, z = int(cfg.x_dim), int(cfg.z_dim)
    m = int(e.get("fourier_features", 0) or 0)
    cin = d + 2 * m if m else d
    F = 2 * (d * m if m else 0) + 2 * (cin * e.hidden + (e.depth - 1) * e.hidden**2 + e.hidden)
    G = 2 * (z * g.hidden + (g.depth - 1) * g.hidden**2 + g.hidden * d)
    k, c = int(t.get("penalty_every", 1)), int(t.critic_steps)
    critic = G + 3 * F + 3 * F + 6 * F / k
    gen = 3 * G + 3 * F
    per_sample = c * critic + gen
    return {"F": F, "G": G, "per_sample": per_sample, "gflop_per_step": per_sample * int(t.batch_size) / 1e9}


def counted(cfg) -> float:
    import torch

    from mege.training.runs import trainer_from_config
    torch.set_num_threads(1)
    cfg.device = "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_from_config(cfg, tmp)
        trainer.train_step()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True) as prof:
            trainer.train_step()
    return sum(e.flops for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm", "aten::matmul")) / 1e9


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("--count", action="store_true")
    a = p.parse_args()
    cfg = OmegaConf.load(f"{a.run_dir}/config.yaml")
    r = analytic(cfg)
    line = f"F={r['F']}\tG={r['G']}\tflop_per_sample={r['per_sample']:.0f}\tanalytic_gflop_per_step={r['gflop_per_step']:.4f}"
    if a.count:
        line += f"\tcounted_gflop_per_step={counted(cfg):.4f}"
    print(line)


if __name__ == "__main__":
    main()
