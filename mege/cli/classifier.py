"""``mege classifier ...``: train the Stacked MNIST mode classifier (mege.metrics.classifier)."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from mege.metrics.classifier import main as run
    return run(argv)
