"""How much several seeds in one process would save on the narrow toy regimes (issue 23, cost shortfall).

    OMP_NUM_THREADS=1 python experiments/regimes/bench_multiseed.py RUN_DIR [--seeds 1,2,4,8,16] [--steps 200]

A prototype, not a training path: it answers whether the study's ≤ 3.5 h target is reachable by
training S seeds of a width-128 regime as one stacked model, before anyone builds that into
``mege train``. The S critics and S generators of RUN_DIR's config (seeds 0..S−1) are stacked with
``torch.func.stack_module_state`` and run with ``vmap(functional_call)``; one step is the same
critic step (loss + zero-centred penalty, with its double backward) and generator step (entropy
``none``) as :meth:`mege.training.trainer.Trainer.train_step`, on the project's own loss and penalty
objects. The batch of S seeds is flattened to S·B rows, so a loss that is a mean over rows is
``(1/S) Σ_s L_s``; it is multiplied by S, so each seed's parameters get exactly their own gradient
``∇ L_s`` and one Adam over the stacked tensors is S independent Adams (Adam is elementwise). The
stacked step leaves out the EMA update and the learning-rate scheduler that ``train_step`` includes, a
bias in the stacked step's favour.

Printed: the check (largest difference between the stacked gradients and each seed's own module's
gradients on the same batch), then per S the wall ms per step of all S seeds, ms per seed-step, and
the speed-up over the project's ``Trainer.train_step`` of one seed timed in the same process.
Timings are the fastest of ``--reps`` (the machine is shared; other processes only add time).
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from mege.objectives import critic_objective, generator_objective
from mege.training.runs import trainer_from_config


class Stacked(nn.Module):
    """S copies of one architecture as stacked parameters: rows ``[s·B, (s+1)·B)`` go through copy s."""

    def __init__(self, modules: list[nn.Module]):
        super().__init__()
        params, buffers = stack_module_state(modules)
        self.params = nn.ParameterDict({k.replace(".", "/"): nn.Parameter(v) for k, v in params.items()})
        self.buffers_ = dict(buffers)
        self._base = [copy.deepcopy(modules[0]).to("meta")]  # in a list: its meta parameters are not ours
        self.copies = len(modules)

    def forward(self, x: Tensor) -> Tensor:
        params = {k.replace("/", "."): v for k, v in self.params.items()}
        xs = x.reshape(self.copies, -1, *x.shape[1:])
        out = vmap(lambda p, b, xi: functional_call(self._base[0], (p, b), (xi,)))(params, self.buffers_, xs)
        return out.reshape(-1, *out.shape[2:])


def trainers(cfg, seeds: list[int], tmp: str):
    out = []
    for s in seeds:
        c = copy.deepcopy(cfg)
        c.seed = s
        out.append(trainer_from_config(c, f"{tmp}/{s}"))
    return out


def stacked_step(t0, critic: Stacked, gen: Stacked, opt_c, opt_g, real: Tensor, z: Tensor) -> None:
    """One critic step and one generator step of all S seeds (entropy none), each loss × S (see module doc)."""
    s = critic.copies
    with torch.no_grad():
        fake = gen(z)
    c = critic_objective(critic, t0.loss, t0.penalty, real, fake)
    opt_c.zero_grad(set_to_none=True)
    (c.loss * s).backward(inputs=list(critic.parameters()))
    opt_c.step()
    step = generator_objective(critic, t0.loss, t0.entropy, 0.0, gen, z)
    opt_g.zero_grad(set_to_none=True)
    (step.loss * s).backward(inputs=list(gen.parameters()))
    opt_g.step()


def check(cfg, tmp: str, seeds: int = 3) -> float:
    """Largest |stacked gradient − own-module gradient| over both nets' parameters, one shared batch."""
    ts = trainers(cfg, list(range(seeds)), tmp)
    critic, gen = Stacked([t.critic for t in ts]), Stacked([t.generator for t in ts])
    b = ts[0].settings.batch_size
    real = torch.cat([t.data.sample(b) for t in ts])
    z = torch.randn(seeds * b, ts[0].generator.latent_dim)
    fake = gen(z).detach()
    c = critic_objective(critic, ts[0].loss, ts[0].penalty, real, fake)
    g_stacked = torch.autograd.grad(c.loss * seeds, list(critic.parameters()))
    worst = 0.0
    names = list(critic.params.keys())
    for i, t in enumerate(ts):
        rows = slice(i * b, (i + 1) * b)
        ci = critic_objective(t.critic, t.loss, t.penalty, real[rows], fake[rows])
        own = dict(zip([n for n, _ in t.critic.named_parameters()], torch.autograd.grad(ci.loss, list(t.critic.parameters()))))
        for name, g in zip(names, g_stacked):
            worst = max(worst, (g[i] - own[name.replace("/", ".")]).abs().max().item())
    return worst


def time_it(fn, steps: int, reps: int) -> float:
    for _ in range(20):
        fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("--seeds", default="1,2,4,8,16")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg = OmegaConf.load(f"{a.run_dir}/config.yaml")
    cfg.device = "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        print(f"check\tmax_abs_grad_diff={check(cfg, tmp + '/check'):.3g}")
        (t1,) = trainers(cfg, [0], tmp + "/ref")

        def ref_step():
            t1.train_step()
            t1.step += 1

        ref = time_it(ref_step, a.steps, a.reps)
        print(f"Trainer.train_step\tS=1\tms_per_step={ref * 1e3:.2f}\tms_per_seed_step={ref * 1e3:.2f}\tspeedup=1.00")
        for s in [int(v) for v in a.seeds.split(",")]:
            ts = trainers(cfg, list(range(s)), f"{tmp}/s{s}")
            critic, gen = Stacked([t.critic for t in ts]), Stacked([t.generator for t in ts])
            opt_c = ts[0].optimizers["critic"].__class__(critic.parameters(), **ts[0].optimizers["critic"].defaults)
            opt_g = ts[0].optimizers["generator"].__class__(gen.parameters(), **ts[0].optimizers["generator"].defaults)
            b, zd = ts[0].settings.batch_size, ts[0].generator.latent_dim

            def step():
                real = torch.cat([t.data.sample(b) for t in ts])
                stacked_step(ts[0], critic, gen, opt_c, opt_g, real, torch.randn(s * b, zd))

            w = time_it(step, a.steps, a.reps)
            print(f"stacked\tS={s}\tms_per_step={w * 1e3:.2f}\tms_per_seed_step={w / s * 1e3:.2f}\tspeedup={ref / (w / s):.2f}")


if __name__ == "__main__":
    main()
