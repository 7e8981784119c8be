"""Seconds per training step of a run's config on one thread (issue 23, deliverable 2).

    OMP_NUM_THREADS=1 python experiments/regimes/bench_step.py RUN_DIR [key=value ...] [--steps 300] [--reps 3]

Rebuilds the trainer from RUN_DIR/config.yaml (with the overrides), runs a 50-step warm-up, then
``reps`` timings of ``steps`` train steps; prints the fastest rep's wall and CPU seconds per step
(the fastest, because the machine is shared and other processes only ever add time).
``--peak`` instead times a single-threaded 1024³ fp32 torch.mm and prints GFLOP/s.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
import yaml
from omegaconf import OmegaConf


def peak(n: int = 1024, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir", nargs="?")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--peak", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.peak:
        print(f"peak_gflops\t{peak():.1f}\tthreads={torch.get_num_threads()}")
        return
    from mege.training.runs import trainer_from_config
    cfg = OmegaConf.load(f"{a.run_dir}/config.yaml")
    for kv in a.overrides:
        k, v = kv.split("=", 1)
        OmegaConf.update(cfg, k, yaml.safe_load(v))
    cfg.device = "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_from_config(cfg, tmp)
        for _ in range(50):
            trainer.train_step()
            trainer.step += 1
        wall, cpu = [], []
        for _ in range(a.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(a.steps):
                trainer.train_step()
                trainer.step += 1
            wall.append((time.perf_counter() - t0) / a.steps)
            cpu.append((time.process_time() - c0) / a.steps)
    print(f"{' '.join(a.overrides) or '-'}\twall_ms_per_step={min(wall)*1e3:.2f}\tcpu_ms_per_step={min(cpu)*1e3:.2f}")


if __name__ == "__main__":
    main()
