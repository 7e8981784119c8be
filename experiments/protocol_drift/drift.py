"""Protocol drift: the same samples counted the way each paper counts (issue 24).

    OMP_NUM_THREADS=1 python experiments/protocol_drift/drift.py \\
        --runs outputs/protocol_drift/mi_js outputs/protocol_drift/none --dest experiments/protocol_drift

writes ``<dest>/results.json``, ``<dest>/stacked_mnist.md`` and ``<dest>/toy.md`` (default dest
``outputs/protocol_drift/table``: never over the committed tables unless asked).

**Stacked MNIST** (``--runs``: run folders with checkpoints; none are committed, README.md says how
they were trained). Sample sets: 26 000 real stacks (``data.sample`` after ``torch.manual_seed(0)``,
the reference row's draw), and each run's raw and EMA generator on its fixed evaluation latents.
Every set is counted (1) under mege's protocol (reference classifier, eval mode), (2) under MEG's
(their architecture, dropout on) for each ``--dropout-seeds`` seed, (3) with MEG's classifier in
eval mode (dropout off). Each KL is KL(p̂ ‖ uniform) in nats beside the perfect-sampler floor at
the same count.

**Toy mixtures**: the committed run files (``experiments/toy/results.json``,
``experiments/ablation/run_files``, ``experiments/claims/run_files``; no checkpoints are committed,
but every summary holds the three divergences of one sample set of 2 500): mege's assigned KL (all
samples, nearest centre), the HQ reverse KL (PacGAN's paper's definition), and PacGAN's code's JSD
against uniform over the HQ histogram — mege's ``js`` column, which for these uniform mixtures is
exactly that JSD (checked here on exact mixture samples against :func:`pacgan_toy_metrics`) — each
beside its floor at its own count.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mege.metrics.protocols import jsd_floor, jsd_max, pacgan_toy_metrics  # noqa: E402
from mege.metrics.toy import mode_metrics, perfect_sampling_floor  # noqa: E402

TOY_SOURCES = ("experiments/toy/results.json", "experiments/ablation/run_files", "experiments/claims/run_files")


# ----------------------------------------------------------------------------- Stacked MNIST
def sample_sets(runs: list[str], n: int):
    """[(name, description, samples (n, 3, 28, 28))]: real stacks, then each run's raw and EMA generator."""
    from omegaconf import OmegaConf

    from mege.training import load_run
    sets, data = [], None
    for run in runs:
        trainer = load_run(run)
        cfg = OmegaConf.load(Path(run) / "config.yaml")
        entropy = str(cfg.entropy.get("_target_", "none")).rsplit(".", 1)[-1]
        what = (f"{run}: {trainer.step} steps, entropy {entropy}"
                f"{'' if entropy in ('NoEntropy', 'none') else f' λ_H={cfg.lambda_h}'}, seed {cfg.seed}")
        data = trainer.data if data is None else data
        sets.append((f"{Path(run).name} raw", f"{what}; raw generator, eval latents seed {trainer.settings.eval_seed}",
                     trainer.generate_fn(trainer.generator)(n).cpu()))
        if trainer.ema is not None:
            sets.append((f"{Path(run).name} EMA", f"{what}; EMA generator, eval latents seed {trainer.settings.eval_seed}",
                         trainer.generate_fn(trainer.ema.module)(n).cpu()))
    if data is None:
        from mege.data.stacked_mnist import StackedMNIST
        data = StackedMNIST(n_stack=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        real = data.sample(n)
    return [("real stacks", "data.sample(n) after torch.manual_seed(0) (the reference row's draw)", real), *sets], data


def stacked_table(runs: list[str], n: int, seeds: list[int]) -> dict:
    from mege.metrics.classifier import load_classifier
    from mege.metrics.meg_classifier import classify_stacks_meg, load_meg_classifier
    from mege.metrics.stacked_mnist import classify_stacks, count_modes

    ref, ref_card = load_classifier(None)
    meg, meg_card = load_meg_classifier(None)
    sets, data = sample_sets(runs, n)
    dist = data.label_distribution() if hasattr(data, "label_distribution") else None
    floor = perfect_sampling_floor(np.ones(1000), n)
    rows = []
    for name, what, x in sets:
        start = time.perf_counter()
        mege_labels = classify_stacks(ref, x)
        mege_row = count_modes(mege_labels, 1000, dist)
        off_labels = classify_stacks_meg(meg, x, dropout=False)
        off = count_modes(off_labels, 1000)
        on = []
        for seed in seeds:
            labels = classify_stacks_meg(meg, x, dropout=True, seed=seed)
            row = count_modes(labels, 1000)
            row["changed_vs_off"] = float((labels != off_labels).float().mean())
            on.append({"seed": seed, **row})
        rows.append({
            "samples": name, "what": what, "n": n, "floor": floor,
            "mege": {k: mege_row[k] for k in ("modes", "reverse_kl", "reverse_kl_data")},
            "meg_dropout_on": on,
            "meg_dropout_off": {k: off[k] for k in ("modes", "reverse_kl")},
            "label_agreement_mege_vs_meg_off": float((mege_labels == off_labels).float().mean()),
            "seconds": round(time.perf_counter() - start, 1),
        })
        print(f"{name}: mege {mege_row['modes']} / {mege_row['reverse_kl']:.4f}; MEG on "
              + ", ".join(f"{r['modes']} / {r['reverse_kl']:.4f}" for r in on)
              + f"; MEG off {off['modes']} / {off['reverse_kl']:.4f}", flush=True)
    return {"rows": rows, "dropout_seeds": seeds, "floor": floor,
            "meg_heldout_accuracy": heldout_accuracy(meg, seeds),
            "mege_classifier": {k: ref_card.get(k) for k in ("content_hash", "heldout_accuracy", "data", "path")},
            "meg_classifier": {k: meg_card.get(k) for k in ("content_hash", "heldout_accuracy", "best_epoch", "data", "path")}}


def heldout_accuracy(meg, seeds: list[int]) -> dict:
    """The MEG classifier's digit accuracy on its 2 000 held-out test images, dropout off and on (per seed)."""
    from mege.metrics.classifier import split_data
    _, _, hx, hy, _ = split_data(None, 0, 2000, ("test",))
    acc = lambda labels: float((labels == hy).float().mean())  # noqa: E731
    was = meg.training
    with torch.no_grad():
        meg.eval()
        off = acc(meg(hx).argmax(1))
        on = {}
        for seed in seeds:
            torch.manual_seed(seed)
            meg.train()
            on[seed] = acc(meg(hx).argmax(1))
    meg.train(was)
    return {"dropout_off": off, "dropout_on": on}


def mean_se(values: list[float], digits: int = 4) -> str:
    """``mean ± s.e.`` over the values (just the value when there is one)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values) / math.sqrt(len(values)):.{digits}f}"


def stacked_markdown(t: dict, command: str) -> str:
    k = len(t["dropout_seeds"])
    lines = [
        "# Stacked MNIST: one sample set, three counters", "",
        f"`{command}`", "",
        f"{t['rows'][0]['n']:,} stacks per set".replace(",", " ") + "; modes of 1 000; KL = KL(p̂ ‖ uniform), nats; "
        f"perfect-sampler floor at this n: **{t['floor']:.4f}** (every KL below is to be read beside it). "
        f"MEG dropout on: mean ± s.e. over {k} dropout seeds ({', '.join(map(str, t['dropout_seeds']))}), "
        "the same samples each time; 'labels changed' = share of stacks whose label differs from the "
        "dropout-off count.", "",
        f"mege: reference classifier `{t['mege_classifier']['content_hash'][:12]}…` (held-out accuracy "
        f"{t['mege_classifier']['heldout_accuracy']:.4f}), eval mode. MEG: their architecture and recipe, "
        f"`mnist_classifier_meg.pt` `{t['meg_classifier']['content_hash'][:12]}…` (held-out accuracy "
        f"{t['meg_classifier']['heldout_accuracy']:.4f} in eval mode; with dropout on "
        f"{mean_se(list(t['meg_heldout_accuracy']['dropout_on'].values()))} over the dropout seeds).", "",
        "| samples | mege modes | mege KL | MEG (dropout on) modes | MEG (dropout on) KL | labels changed | "
        "MEG arch, dropout off: modes | KL | labels agreeing, mege vs MEG off |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in t["rows"]:
        on = r["meg_dropout_on"]
        lines.append(
            f"| {r['samples']} | {r['mege']['modes']} | {r['mege']['reverse_kl']:.4f} | "
            f"{mean_se([o['modes'] for o in on], 1)} | {mean_se([o['reverse_kl'] for o in on])} | "
            f"{100 * statistics.mean(o['changed_vs_off'] for o in on):.1f} % | "
            f"{r['meg_dropout_off']['modes']} | {r['meg_dropout_off']['reverse_kl']:.4f} | "
            f"{100 * r['label_agreement_mege_vs_meg_off']:.1f} % |")
    lines += ["", "Which samples each row describes:", ""]
    lines += [f"- **{r['samples']}**: {r['what']}" for r in t["rows"]]
    lines += ["", "Per dropout seed (modes / KL):", ""]
    for r in t["rows"]:
        lines.append(f"- {r['samples']}: " + "; ".join(f"seed {o['seed']}: {o['modes']} / {o['reverse_kl']:.4f}"
                                                       for o in r["meg_dropout_on"]))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- toy mixtures
def toy_runs(sources: list[str]) -> list[dict]:
    """One record per committed run and sample kind (raw / EMA) whose summary holds the three divergences."""
    out = []
    for source in sources:
        path = ROOT / source
        if path.suffix == ".json":
            for run in json.loads(path.read_text())["runs"]:
                for kind in ("raw", "ema"):
                    m = run.get(kind)
                    if m and "js" in m:
                        out.append({"group": f"toy benchmark / {run['experiment']}", "seed": run["seed"], "kind": kind, **m})
            continue
        for summary in sorted(path.rglob("summary.json")):
            s = json.loads(summary.read_text())
            cfg = (summary.parent / "config.yaml").read_text() if (summary.parent / "config.yaml").exists() else ""
            lam = next((line.split(":", 1)[1].strip() for line in cfg.splitlines() if line.startswith("lambda_h:")), "?")
            group = f"{source.split('/')[1]} / {summary.parent.parent.relative_to(path)} / λ_H={lam}"
            for kind, key in (("raw", "metrics"), ("ema", "ema_metrics")):
                m = s.get(key)
                if m and "js" in m and m.get("n_hq", 0) > 0:
                    out.append({"group": group, "seed": summary.parent.name, "kind": kind, **m})
    return out


def pacgan_check(seeds=(0, 1, 2)) -> list[dict]:
    """Exact mixture samples (perfect samplers): mege's ``js`` against the ``pacgan`` protocol's JSD,
    and every divergence beside its floor."""
    from mege.data.mixtures import grid25, ring8
    rows = []
    for name, make in (("ring-8", ring8), ("grid-25", grid25)):
        data = make()
        for seed in seeds:
            torch.manual_seed(seed)
            x = data.sample(2500)
            m = mode_metrics(x, data.centres, data.std, data.weights)
            p = pacgan_toy_metrics(x, data.centres, data.std)
            rows.append({"data": name, "seed": seed, "modes": m["modes"], "hq_fraction": m["hq_fraction"],
                         "assigned_kl": m["assigned_kl"], "assigned_kl_floor": m["assigned_kl_floor"],
                         "reverse_kl": m["reverse_kl"], "reverse_kl_floor": m["reverse_kl_floor"],
                         "js_mege": m["js"], "jsd_pacgan": p["jsd"], "jsd_floor": p["jsd_floor"],
                         "same": abs(m["js"] - p["jsd"]) < 1e-12 and m["modes"] == p["modes"]})
    return rows


def toy_table(sources: list[str]) -> dict:
    runs = toy_runs(sources)
    for r in runs:
        uniform = np.full(r["n_modes"], 1.0 / r["n_modes"])
        r["jsd_floor"] = jsd_floor(uniform, r["n_hq"])
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["group"], r["kind"]), []).append(r)
    summary = []
    for (group, kind), rs in groups.items():
        mean = lambda key: statistics.mean(r[key] for r in rs)  # noqa: E731
        summary.append({"group": group, "kind": kind, "n_runs": len(rs), "n_modes": rs[0]["n_modes"],
                        **{k: mean(k) for k in ("modes", "hq_fraction", "assigned_kl", "assigned_kl_floor",
                                                "reverse_kl", "reverse_kl_floor", "js", "jsd_floor")}})
    ratios = [r["reverse_kl"] / r["js"] for r in runs if r["js"] > 0]
    assigned = [r["assigned_kl"] / r["reverse_kl"] for r in runs if r["reverse_kl"] > 0]
    rank = {}
    for kind in ("raw", "ema"):
        rows = [s for s in summary if s["kind"] == kind]
        from scipy.stats import spearmanr
        for a, b in (("reverse_kl", "js"), ("reverse_kl", "assigned_kl"), ("assigned_kl", "js")):
            rank[f"{kind}: {a} vs {b}"] = float(spearmanr([s[a] for s in rows], [s[b] for s in rows]).statistic)
    flips = order_flips([s for s in summary if s["kind"] == "raw"])
    return {"runs": runs, "summary": summary, "n_run_sample_sets": len(runs),
            "ratio_reverse_kl_over_jsd": {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)},
            "ratio_assigned_kl_over_reverse_kl": {"min": min(assigned), "median": statistics.median(assigned), "max": max(assigned)},
            "spearman_over_groups": rank, "order_flips_raw": flips, "perfect_sampler_check": pacgan_check(),
            "jsd_max": {"ring-8": jsd_max(8), "grid-25": jsd_max(25)}}


def order_flips(rows: list[dict]) -> dict:
    """Pairs of groups (same data) ordered one way by the HQ reverse KL and the other by the assigned KL / JSD."""
    out = {}
    for other in ("assigned_kl", "js"):
        pairs = flipped = 0
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if a["n_modes"] != b["n_modes"]:
                    continue
                pairs += 1
                flipped += (a["reverse_kl"] - b["reverse_kl"]) * (a[other] - b[other]) < 0
        out[f"reverse_kl vs {other}"] = {"pairs": pairs, "flipped": int(flipped)}
    return out


def toy_markdown(t: dict, command: str) -> str:
    r = t["ratio_reverse_kl_over_jsd"]
    lines = [
        "# Toy mixtures: one sample set, three divergences", "",
        f"`{command}`", "",
        f"{t['n_run_sample_sets']} sample sets of 2 500 from the committed run files ({', '.join(TOY_SOURCES)}; "
        "raw and EMA generator of each run, the last evaluation; runs whose summary lacks a divergence are left out). "
        "Per group: mean over its seeds. All in nats, each beside its perfect-sampler floor (in brackets) at the "
        "count that entered its histogram: assigned KL at 2 500, HQ reverse KL and JSD at the HQ count. "
        "PacGAN JSD = mege's `js` (JSD against uniform over the HQ histogram); on exact mixture samples it equals "
        "`metric.protocol=pacgan`'s JSD to the last bit (below).", "",
        f"HQ reverse KL / JSD over all sample sets: min {r['min']:.2f}, median {r['median']:.2f}, max {r['max']:.2f}; "
        "assigned KL / HQ reverse KL: min {min:.2f}, median {median:.2f}, max {max:.2f}. ".format(**t["ratio_assigned_kl_over_reverse_kl"]) +
        f"Largest possible JSD against uniform: {t['jsd_max']['ring-8']:.3f} (8 modes), {t['jsd_max']['grid-25']:.3f} (25 modes).", "",
        "Spearman rank correlation between the columns over the groups: "
        + "; ".join(f"{k} {v:.2f}" for k, v in t["spearman_over_groups"].items()) + ".", "",
        "Pairs of raw groups (same data) that two columns order differently: "
        + "; ".join(f"{k}: {v['flipped']} of {v['pairs']}" for k, v in t["order_flips_raw"].items()) + ".", "",
        "## Exact mixture samples (perfect samplers, 2 500 each)", "",
        "| data | seed | modes | HQ | assigned KL (floor) | HQ reverse KL (floor) | PacGAN JSD (floor) | mege js = pacgan JSD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in t["perfect_sampler_check"]:
        lines.append(f"| {c['data']} | {c['seed']} | {c['modes']} | {100 * c['hq_fraction']:.1f} % | "
                     f"{c['assigned_kl']:.4f} ({c['assigned_kl_floor']:.4f}) | {c['reverse_kl']:.4f} ({c['reverse_kl_floor']:.4f}) | "
                     f"{c['jsd_pacgan']:.4f} ({c['jsd_floor']:.4f}) | {c['same']} |")
    lines += ["", "## Committed runs", "",
              "| runs | samples | n | modes | HQ | assigned KL (floor) | HQ reverse KL (floor) | PacGAN JSD (floor) |",
              "|---|---|---|---|---|---|---|---|"]
    for s in sorted(t["summary"], key=lambda s: (s["group"], s["kind"])):
        lines.append(f"| {s['group']} | {s['kind']} | {s['n_runs']} | {s['modes']:.1f}/{s['n_modes']} | "
                     f"{100 * s['hq_fraction']:.1f} % | {s['assigned_kl']:.4f} ({s['assigned_kl_floor']:.4f}) | "
                     f"{s['reverse_kl']:.4f} ({s['reverse_kl_floor']:.4f}) | {s['js']:.4f} ({s['jsd_floor']:.4f}) |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="*", default=["outputs/protocol_drift/mi_js", "outputs/protocol_drift/none"],
                        help="Stacked MNIST run folders with checkpoints")
    parser.add_argument("--dest", default="outputs/protocol_drift/table", help="output folder (default %(default)s)")
    parser.add_argument("--n", type=int, default=26000, help="stacks per sample set (MEG's and mege's: 26 000)")
    parser.add_argument("--dropout-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--toy-sources", nargs="*", default=list(TOY_SOURCES))
    parser.add_argument("--skip-stacked", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "python experiments/protocol_drift/drift.py " + " ".join(argv if argv is not None else sys.argv[1:])
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    out = {"command": command, "toy": toy_table(args.toy_sources)}
    (dest / "toy.md").write_text(toy_markdown(out["toy"], command))
    if not args.skip_stacked:
        out["stacked_mnist"] = stacked_table(args.runs, args.n, args.dropout_seeds)
        (dest / "stacked_mnist.md").write_text(stacked_markdown(out["stacked_mnist"], command))
    out["wall_s"] = round(time.perf_counter() - start, 1)
    (dest / "results.json").write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"written {dest}/results.json, toy.md{'' if args.skip_stacked else ', stacked_mnist.md'} in {out['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
