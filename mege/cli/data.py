"""``mege data ...``: download and verify MNIST (mege.data.mnist)."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from mege.data.mnist import main as run
    return run(argv)
