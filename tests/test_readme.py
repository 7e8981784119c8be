"""The README's worked example of a user estimator, run exactly as printed there."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from mege.training import trainer_from_config

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str) -> str:
    blocks = re.findall(r"```(?:python|bash)\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if marker in b)


def test_readme_estimator_plugs_in_and_gives_the_gaussian_score(make_cfg, tmp_path, monkeypatch):
    (tmp_path / "my_estimators.py").write_text(readme_block("# my_estimators.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    from my_estimators import GaussianScore

    # Closed form: for a Gaussian batch the fitted score is −Σ̂⁻¹(x − μ̂).
    x = torch.randn(4000, 2) @ torch.tensor([[2.0, 0.0], [0.5, 1.0]])
    cov = torch.cov(x.T)
    expected = -torch.linalg.solve(cov, (x - x.mean(0)).T).T
    assert torch.allclose(GaussianScore().score(x), expected, atol=1e-3)

    # The README's command-line overrides, applied through the compose API.
    command = readme_block("entropy._target_=my_estimators.GaussianScore")
    overrides = [tok.strip("'") for tok in command.replace("\\\n", " ").split()
                 if "=" in tok and not tok.startswith(("PYTHONPATH", "experiment"))]
    assert "entropy._target_=my_estimators.GaussianScore" in overrides
    trainer = trainer_from_config(make_cfg(*overrides), tmp_path / "run")
    assert type(trainer.estimator).__name__ == "GaussianScore"
    summary = trainer.fit()
    assert summary["status"] == "completed" and summary["step"] == trainer.settings.steps


def layout_entries() -> set[str]:
    """The names the README's Layout block lists under ``mege/`` (``name.py`` or ``name/``)."""
    text = README.read_text()
    block = re.search(r"## Layout\n.*?```\n(.*?)```", text, flags=re.S).group(1)
    lines = block.split("mege/\n", 1)[1].splitlines()
    names: set[str] = set()
    for line in lines:
        if not line.startswith("  ") or line.startswith("   "):
            break
        first = re.split(r"\s{2,}", line.strip())[0]
        names.update(re.findall(r"\b([a-z_]+(?:\.py|/))", first))
    return names


def test_readme_layout_matches_the_package_tree():
    package = Path(__file__).resolve().parents[1] / "mege"
    actual = {p.name + ("/" if p.is_dir() else "") for p in package.iterdir()
              if p.name not in ("__init__.py", "__pycache__") and (p.is_dir() or p.suffix == ".py")}
    assert layout_entries() == actual
