"""Per-channel quality of Stacked MNIST samples: how far from the HQ endpoint's floor a run is (protocol amendment 1).

    python experiments/estimator_ablation/stacked_mnist/channel_quality.py RUN_DIR [RUN_DIR ...] [--n 26000] [--dest DIR]

HQ (the pre-registered endpoint) is the share of stacks whose *every* channel's top-class softmax probability
is ≥ 0.9. On the cpu profile `none` is under 1 %, so the endpoint cannot fall 5 points. This prints, for
each run's raw generator (from its checkpoint, on the metric's own evaluation latents, so its stack HQ is the run's hq_fraction) and for real
stacks through the same classifier, the share of single channels with top-class probability ≥ 0.9, the
median of that probability, and the stack HQ — to say whether a per-channel measure would have room to move.
A diagnostic, not an endpoint of the pre-registered study. Needs the runs' checkpoints (not committed).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mege.metrics.stacked_mnist import HQ_CONFIDENCE, StackedMNISTMetrics, channel_logits
from mege.tables import markdown_table
from mege.training.runs import load_run


def channel_confidence(classifier, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """(n, n_stack): each channel's top-class softmax probability under the reference classifier."""
    classifier.eval()
    with torch.inference_mode():
        return torch.cat([channel_logits(classifier, chunk).float().softmax(dim=2).amax(dim=2) for chunk in x.split(batch)])


def stack_hq(conf: torch.Tensor) -> float:
    """The pre-registered endpoint: the share of stacks whose every channel is ≥ HQ_CONFIDENCE."""
    return (conf.amin(dim=1) >= HQ_CONFIDENCE).float().mean().item()


def row(name: str, conf: torch.Tensor) -> list[str]:
    per_channel = (conf >= HQ_CONFIDENCE).float().mean().item()
    return [name, f"{100 * per_channel:.1f} %", f"{conf.median().item():.3f}", f"{100 * stack_hq(conf):.2f} %"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=26000)
    p.add_argument("--dest", help="folder for channel_quality.md (default: print only)")
    a = p.parse_args()
    classifier, card = StackedMNISTMetrics().load()
    body, data = [], None
    for run in a.runs:
        trainer = load_run(run, device="cpu")
        data = trainer.data
        x = trainer.generate_fn(trainer.generator)(a.n)  # the metric's own evaluation latents
        conf = channel_confidence(classifier, x)
        logged = json.loads((Path(run) / "summary.json").read_text())["metrics"].get("hq_fraction")
        stack = stack_hq(conf)
        if logged is not None and abs(stack - logged) > 1e-6:  # not the run's own samples: say so, do not hide it
            print(f"{run}: stack HQ {stack:.5f} here, {logged:.5f} in its summary.json (other samples or weights)")
        body.append(row(f"{Path(run).parent.parent.name} λ_H {trainer.lambda_h():g}, seed {Path(run).name} (raw)", conf))
    torch.manual_seed(0)
    body.append(row("real stacks (the data)", channel_confidence(classifier, data.sample(a.n))))
    lines = ["# Stacked MNIST: per-channel quality beside stack HQ", "",
             f"Made with `python experiments/estimator_ablation/stacked_mnist/channel_quality.py {' '.join(a.runs)} "
             f"--n {a.n}`; reference classifier (content hash {card.get('content_hash', '?')[:8]}…), {a.n} samples each. "
             f"Channel ≥ 0.9: share of single 28×28 channels whose top-class probability is ≥ {HQ_CONFIDENCE}; stack HQ: "
             "every channel of the stack ≥ 0.9 (the pre-registered endpoint).", "",
             *markdown_table(["samples", "channels ≥ 0.9", "median channel top-class p", "stack HQ"], body), ""]
    print("\n".join(lines))
    if a.dest:
        Path(a.dest).mkdir(parents=True, exist_ok=True)
        (Path(a.dest) / "channel_quality.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
