"""``mege estimators``: the entropy estimators of configs/entropy/ with their facts (:mod:`mege.entropy.facts`)."""

from __future__ import annotations


def estimators(argv: list[str]) -> int:
    from mege.entropy.catalogue import catalogue
    from mege.entropy.facts import facts_of
    print(f"{'name':16s} {'family':16s} {'λ_H grid':28s} {'needs':10s} {'fit':>3s} {'cost':>4s}  summary")
    for entry in catalogue():
        f = facts_of(entry.name)
        grid = ", ".join(f"{v:g}" for v in f.lambda_h)
        needs = "noisy G" if f.needs_noisy_generator else "—"
        print(f"{f.name:16s} {f.family:16s} {grid:28s} {needs:10s} {f.fit_steps:3d} {f.cost:4g}  {f.summary}")
    print("facts: the `facts:` node of configs/entropy/<name>.yaml (family, λ_H grid for `mege study`, needs, "
          "fit steps, cost relative to a cheap estimator).")
    print("plug your own: mege train entropy=none entropy._target_=your.module.Class 'allowed_targets=[your.]', or "
          "a yaml of your own in DIR/entropy/ with hydra.searchpath=[file://DIR]")
    return 0
