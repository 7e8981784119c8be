"""An estimator's facts (mege/entropy/facts.py): read from its yaml's ``facts:`` node, never passed to its class."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mege.entropy.catalogue import estimator_names
from mege.entropy.facts import config_dirs, constructor_node, facts_of
from mege.errors import MegeError

MI_GRID, KNN_GRID, DEFAULT = (0.1, 0.3, 1.0, 3.0, 10.0), (0.003, 0.01, 0.03, 0.1, 0.3), (0.01, 0.03, 0.1, 0.3, 1.0)


def test_every_estimator_has_its_family_grid_and_needs():
    facts = {name: facts_of(name) for name in estimator_names()}
    assert len(facts) == 19
    assert facts["none"].lambda_h == (0.0,) and facts["none"].family == "none"
    assert {n for n, f in facts.items() if f.lambda_h == MI_GRID} == {"mi_js", "mi_mine", "mi_nwj", "mi_infonce",
                                                                      "mi_smile", "kde_score"}
    assert {n for n, f in facts.items() if f.lambda_h == KNN_GRID} == {"knn", "knn_weighted"}
    assert facts["stein"].lambda_h == facts["flow_zuko_nsf"].lambda_h == DEFAULT
    assert {n for n, f in facts.items() if f.needs_noisy_generator} == {"posterior_is", "posterior_hmc"}
    assert facts["kde_score"].family == "KDE score" and facts["ssge"].family == "Stein / SSGE"
    assert facts["flow_affine"].fit_steps == 1 and facts["flow_affine"].accuracy_fit_steps == 100
    assert facts["mi_js"].accuracy_fit_steps == 300 and facts["flow_spline"].cost == 6.0


def test_facts_never_reach_the_constructor_and_may_be_read_from_a_run_config():
    node = OmegaConf.create({"x_dim": 3, "entropy": {"_target_": "mege.entropy.knn.KLEntropy", "k": "${x_dim}",
                                                     "facts": {"family": "mine"}}}).entropy
    assert OmegaConf.to_container(constructor_node(node)) == {"_target_": "mege.entropy.knn.KLEntropy", "k": 3}
    assert facts_of(node).family == "mine" and facts_of(node).lambda_h == DEFAULT
    assert facts_of({"_target_": "my.pkg.Thing"}).family == "pkg"  # no facts: the module names the family


def test_a_users_yaml_on_the_search_path_and_one_line_refusals(tmp_path):
    (tmp_path / "entropy").mkdir()
    (tmp_path / "entropy" / "mine.yaml").write_text("# mine\n_target_: my.Est\nfacts: {lambda_h: 0.2, cost: 2}\n")
    dirs = config_dirs([f"hydra.searchpath=[file://{tmp_path}]"])
    assert dirs[0] == tmp_path
    mine = facts_of("mine", dirs)
    assert (mine.lambda_h, mine.cost, mine.summary, mine.needs_noisy_generator) == ((0.2,), 2.0, "mine", False)
    with pytest.raises(MegeError, match="no estimator yaml entropy/mine.yaml") as err:
        facts_of("mine")
    assert "hydra.searchpath" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "entropy" / "bad.yaml").write_text("_target_: my.Est\nfacts: {grid: [1]}\n")
    with pytest.raises(MegeError, match="unknown fact"):
        facts_of("bad", dirs)


def test_mege_estimators_lists_the_facts(capsys):
    from mege.cli import main
    assert main(["estimators"]) == 0
    lines = capsys.readouterr().out.splitlines()
    knn = next(line for line in lines if line.startswith("knn "))
    assert knn.split()[1:7] == ["kNN", "0.003,", "0.01,", "0.03,", "0.1,", "0.3"]
    assert "noisy G" in next(line for line in lines if line.startswith("posterior_is "))
