"""``mege report ...``: aggregate a sweep into tables and plots (mege.report)."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from mege.report import main as run
    return run(argv)
