"""``mege sample <run_dir> --steps K``: latent-space MCMC from a run's learned energy (:mod:`mege.sampling`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch

from mege.errors import MegeError, check
from mege.mcmc import MCMCResult
from mege.sampling import latent_map, mcmc_block_name, refine, refined_metric, run_generator
from mege.tables import format_table
from mege.training import load_run
from mege.utils import eval_mode, module_device


def metric_table(rows: list[dict]) -> str:
    """A markdown table of every float/int entry of the metric rows (protocol dicts left out)."""
    keys = ["steps"] + [k for k, v in rows[0].items() if k != "steps" and isinstance(v, (int, float))]
    for row in rows[1:]:
        keys += [k for k, v in row.items() if k not in keys and isinstance(v, (int, float))]
    return format_table(rows, keys)


def _resolve_sampler(path: str) -> Callable[..., MCMCResult]:
    """A sampler function from a dotted path; only ``mege.`` modules (as for config targets)."""
    import hydra.utils

    check(path.startswith("mege."), f"--sampler must be a dotted path inside mege (e.g. mege.mcmc.hmc); got {path}")
    try:
        return hydra.utils.get_method(path)
    except Exception:  # noqa: BLE001 — any import failure is a bad path
        raise MegeError(f"--sampler {path} is not importable; use mege.mcmc.mala, mege.mcmc.hmc or mege.mcmc.nuts") from None


def main(argv: list[str]) -> int:
    """``mege sample <run_dir> --steps K [--step-size E] [--n N] [--temperature T] ...``.

    Loads the run, draws N refined samples ``G(z_K)`` (default: as many as the run's metric
    asks for), prints the run's metric plain vs refined, and writes to ``--out`` (default
    ``<run_dir>/sample-K<steps>-T<temperature>``): ``samples.pt`` (refined samples, final
    latents, first-chain paths), ``acceptance.json`` (acceptance statistics and both metric
    rows) and, for 2-D data, ``landscape.png`` with chains overlaid in data space.
    """
    parser = argparse.ArgumentParser(prog="mege sample", description=main.__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--steps", type=int, required=True, help="MCMC transitions K (warm-up included)")
    parser.add_argument("--step-size", type=float, default=0.05, help="initial step size (adapted during warm-up)")
    parser.add_argument("--warmup", type=int, default=None, help="adaptation steps (default K // 2)")
    parser.add_argument("--temperature", type=float, default=1.0, help="T in exp(-U(G(z))/T)")
    parser.add_argument("--n", type=int, default=None, help="samples to draw (default: the metric's count)")
    parser.add_argument("--sampler", default="mege.mcmc.mala", help="mege.mcmc.mala | .hmc | .nuts")
    parser.add_argument("--seed", type=int, default=None, help="RNG seed (default: the run's train.eval_seed)")
    parser.add_argument("--raw", action="store_true", help="use the raw generator even when the run has an EMA")
    parser.add_argument("--chains-plotted", type=int, default=50, help="chains drawn on the landscape")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    check(args.steps >= 0, f"--steps must be >= 0; got {args.steps}")

    run = load_run(args.run_dir)
    sampler = _resolve_sampler(args.sampler)
    seed = run.settings.eval_seed if args.seed is None else args.seed
    generator = run_generator(run, args.raw)
    mcmc = dict(step_size=args.step_size, temperature=args.temperature, warmup=args.warmup, sampler=sampler)
    out = args.out or args.run_dir / f"sample-K{args.steps}-T{args.temperature:g}"
    out.mkdir(parents=True, exist_ok=True)

    plain, _ = refined_metric(run, 0, args.raw, seed, **mcmc)
    refined, wrapped = refined_metric(run, args.steps, args.raw, seed, keep_path=args.chains_plotted, **mcmc)
    kind = mcmc_block_name(args.temperature)  # mcmc_T1: the energy model's samples; mode_seek: T < 1
    rows = [{**plain, "steps": "plain"}, {**refined, "steps": f"{args.steps} ({kind})"}]
    x, result = wrapped.last_samples, wrapped.last_result
    if args.n is not None and args.n != len(x):
        torch.manual_seed(seed)
        x, result = refine(generator, run.critic, args.n, args.steps, return_result=True,
                           keep_path=min(args.chains_plotted, args.n), **mcmc)
    n = len(x)
    lmap = latent_map(generator)
    paths = None
    if result.path is not None:
        with torch.no_grad(), eval_mode(generator):
            paths = torch.stack([lmap.forward(u) for u in result.path], dim=1).cpu()  # (chains, steps+1, *shape)

    torch.save({"x": x.cpu(), "latents": result.z.cpu(), "paths": paths, "stats": result.stats(),
                "generator": "raw" if args.raw or getattr(run, "ema", None) is None else "ema"}, out / "samples.pt")
    report = {"run_dir": str(args.run_dir), "seed": seed, "sampler": args.sampler, "step_size_initial": args.step_size,
              "temperature": args.temperature, "acceptance": result.stats(), "metrics": rows}
    (out / "acceptance.json").write_text(json.dumps(report, indent=2, default=float))

    if x.dim() == 2 and x.shape[1] == 2:
        from mege import plots

        real = run.data.sample(n)
        plots.landscape(run.critic, real, x.cpu(), out / "landscape.png", device=module_device(run.critic),
                        title=f"latent {result.sampler}: K={args.steps}, T={args.temperature:g} ({kind})", chains=paths)
    print(metric_table(rows))
    stats = result.stats()
    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    print(f"acceptance {rate(stats['accept_rate'])} (warm-up {rate(stats['warmup_accept_rate'])}), "
          f"median step size {stats['step_size_median']:.3g}; wrote {out}")
    return 0
