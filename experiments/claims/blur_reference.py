"""Reference rows for reading the toy tables: what a generator with *no* structure scores.

Samples drawn uniformly on a box around the data (grid-25: [−5, 5]², i.e. one spacing/2 beyond
the outer centres; ring-8: [−1.5, 1.5]²) are scored with the same metric as trained runs
(mege.metrics.toy.ToyModeMetrics, 2 500 samples, HQ = within 3 std of the nearest centre).
For uniform samples the expected HQ fraction is  k·π(3σ)² / area  and the expected number of
covered modes is  k·(1 − (1 − 1/k)^{n·hq}).  A trained generator that does not beat these
numbers has not learnt the modes.

    python experiments/claims/blur_reference.py [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from mege.data.mixtures import grid25, ring8
from mege.metrics.toy import ToyModeMetrics

BOXES = {"grid25": (grid25(spacing=2.0, std=0.05), 5.0), "ring8": (ring8(radius=1.0, std=0.01, n_modes=8), 1.5)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    metric = ToyModeMetrics(n_samples=2500, hq_std=3.0)
    print("| experiment | sampler | seeds | modes | hq_fraction | reverse_kl | expected hq | expected modes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (data, half) in BOXES.items():
        rows = []
        for seed in args.seeds:
            gen = torch.Generator().manual_seed(seed)
            uniform = lambda n: (torch.rand(n, 2, generator=gen) * 2 - 1) * half  # noqa: E731
            rows.append(metric(uniform, data))
        k = data.centres.shape[0]
        hq = k * math.pi * (3 * data.std) ** 2 / (2 * half) ** 2
        modes = k * (1 - (1 - 1 / k) ** (2500 * hq))
        cells = []
        for key in ("modes", "hq_fraction", "reverse_kl"):
            v = np.array([r[key] for r in rows], float)
            cells.append(f"{v.mean():.4g} ± {v.std(ddof=1) / math.sqrt(len(v)):.2g}")
        print(f"| {name} | uniform on [−{half:g}, {half:g}]² | {len(rows)} | {' | '.join(cells)} | {hq:.4f} | {modes:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
