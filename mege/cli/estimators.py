"""``mege estimators``: the entropy estimators of configs/entropy/."""

from __future__ import annotations


def estimators(argv: list[str]) -> int:
    from mege.entropy.catalogue import catalogue
    for entry in catalogue():
        print(f"{entry.name:16s} {entry.target:45s} {entry.summary}")
    print("plug your own: mege train entropy=none entropy._target_=your.module.Class 'allowed_targets=[your.]'")
    return 0
