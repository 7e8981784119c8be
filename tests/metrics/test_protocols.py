"""Counting protocols (mege/metrics/protocols.py, mege/metrics/meg_classifier.py): MEG's Stacked
MNIST counter and PacGAN's 2-D JSD column, against hand computations."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from scipy.spatial.distance import jensenshannon
from torch import nn

from mege.data import mnist
from mege.data.mixtures import ring8
from mege.data.stacked_mnist import encode_labels
from mege.errors import MegeError
from mege.metrics.meg_classifier import MEG_PATH, MEGDigitNet, classify_stacks_meg, load_meg_classifier, train_meg_classifier
from mege.metrics.protocols import jsd_floor, jsd_max, pacgan_toy_metrics
from mege.metrics.stacked_mnist import StackedMNISTMetrics, count_modes
from mege.metrics.toy import ToyModeMetrics, mode_metrics, perfect_sampling_floor

SHARED = mnist.REPO_ROOT.parent / "shared" / "data" / "mnist"


class ConstantDigitNet(nn.Module):
    """Reads digit d off a constant image of value −1 + 2d/9 and returns log-probabilities; with
    ``p > 0`` dropout on the logits (active in train mode only) scrambles the answer. Records the
    mode and the batch size of every call."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(p)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, x.shape[0]))
        d = (x.mean(dim=(1, 2, 3)) + 1) * 4.5
        return torch.log_softmax(self.drop(100 - (torch.arange(10) - d[:, None]) ** 2), dim=1)


def stacks(digits) -> torch.Tensor:
    """Constant-image stacks (n, 3, 28, 28) showing ``digits`` (n, 3)."""
    value = -1 + 2 * torch.as_tensor(digits, dtype=torch.float32) / 9
    return value[:, :, None, None].expand(-1, -1, 28, 28).clone()


CARD = {"heldout_accuracy": 1.0, "content_hash": "stub", "is_committed": False}


def test_meg_counter_on_a_hand_built_batch_gives_the_hand_count():
    digits = [[1, 2, 3]] * 3 + [[4, 5, 6], [7, 8, 9], [0, 0, 0]]  # labels 123 ×3, 456, 789, 0
    clf = ConstantDigitNet()
    clf.eval()
    metric = StackedMNISTMetrics(classifier=clf, card=CARD, n_samples=6, protocol="meg")
    out = metric(lambda n: stacks(digits), SimpleNamespace(n_stack=3, shape=(3, 28, 28)))
    # by hand: p = (1/2, 1/6, 1/6, 1/6) on 4 of 1 000 cells; KL(p || uniform) = Σ p ln(1000 p)
    assert out["modes"] == 4 and out["n_samples"] == 6
    assert math.isclose(out["reverse_kl"], 0.5 * math.log(500) + 0.5 * math.log(1000 / 6), rel_tol=1e-12)
    assert "reverse_kl_data" not in out  # MEG's counter reports no KL to the data histogram
    assert clf.calls and all(training for training, _ in clf.calls)  # counted in train mode, as theirs
    assert not clf.training  # the caller's mode is restored
    card = out["protocol"]
    assert card["protocol"] == "meg" and card["log_base"] == "e" and card["n_samples"] == 6
    assert card["classifier_mode"].startswith("train")
    assert card["perfect_sampling_floor"] == perfect_sampling_floor(np.ones(1000), 6)


def test_meg_counter_classifies_1000_stacks_per_call():
    clf = ConstantDigitNet()
    classify_stacks_meg(clf, stacks(torch.randint(10, (2500, 3))), dropout=True, seed=0)
    assert [n for _, n in clf.calls] == [3000, 3000, 1500]


def test_dropout_on_spreads_a_concentrated_set_stub():
    """Every stack shows (1, 2, 3): dropout off gives one mode and KL = ln 1000, the maximum; noisy
    labels can only spread the histogram, so dropout on gives more modes and a lower KL."""
    x = stacks([[1, 2, 3]] * 500)
    clf = ConstantDigitNet(p=0.9)
    off = count_modes(classify_stacks_meg(clf, x, dropout=False), 1000)
    on = count_modes(classify_stacks_meg(clf, x, dropout=True, seed=0), 1000)
    assert off["modes"] == 1 and math.isclose(off["reverse_kl"], math.log(1000))
    assert on["modes"] > off["modes"] and on["reverse_kl"] < off["reverse_kl"]


def test_dropout_on_spreads_a_concentrated_set_meg_classifier():
    """The committed MEG-architecture classifier on 2 000 copies of one real stack."""
    if not (SHARED / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"shared MNIST test split not found at {SHARED}")
    images = mnist.load_mnist(SHARED, ("test",))["test"].images[:3]
    x = mnist.to_unit_range(images)[None].expand(2000, -1, -1, -1).contiguous()
    clf, _ = load_meg_classifier()
    off = count_modes(classify_stacks_meg(clf, x, dropout=False), 1000)
    runs = [count_modes(classify_stacks_meg(clf, x, dropout=True, seed=s), 1000) for s in (0, 1)]
    assert off["modes"] == 1
    for on in runs:
        assert on["modes"] > 1 and on["reverse_kl"] < off["reverse_kl"]
    same_seed = classify_stacks_meg(clf, x[:200], dropout=True, seed=1)
    assert torch.equal(same_seed, classify_stacks_meg(clf, x[:200], dropout=True, seed=1))  # seeded masks


def test_pacgan_jsd_equals_scipy_on_a_hand_built_histogram():
    data = ring8()
    counts = [5, 3, 0, 2, 0, 0, 1, 1]
    x = torch.cat([data.centres[k].expand(c, -1) for k, c in enumerate(counts)] + [torch.tensor([[5.0, 5.0]] * 4)])
    out = pacgan_toy_metrics(x, data.centres, data.std)
    q = np.array(counts) / sum(counts)
    u = np.full(8, 1 / 8)
    assert out["modes"] == 5 and out["n_hq"] == 12 and math.isclose(out["hq_fraction"], 12 / 16)
    assert math.isclose(out["jsd"], jensenshannon(q, u) ** 2, rel_tol=1e-12)  # scipy's default base: e
    assert not math.isclose(out["jsd"], jensenshannon(q, u, base=2) ** 2, rel_tol=1e-3)
    assert math.isclose(out["entropy_of_coverage"], -np.sum(q[q > 0] * np.log(q[q > 0])), rel_tol=1e-12)
    assert math.isclose(out["jsd_floor"], jsd_floor(u, 12)) and out["protocol"]["protocol"] == "pacgan"
    assert jsd_max(8) < math.log(2)


def test_pacgan_hq_threshold_is_strict_and_in_std_units():
    data = ring8()  # std 0.01
    x = data.centres[:2] + torch.tensor([[0.0299, 0.0], [0.0301, 0.0]], dtype=data.centres.dtype)
    assert pacgan_toy_metrics(x, data.centres, data.std)["n_hq"] == 1


def test_jsd_floor_matches_monte_carlo():
    rng = np.random.default_rng(0)
    w = np.full(8, 1 / 8)
    draws = rng.multinomial(200, w, size=4000) / 200
    m = 0.5 * (draws + w)
    with np.errstate(divide="ignore", invalid="ignore"):
        js = 0.5 * np.nansum(np.where(draws > 0, draws * np.log(draws / m), 0), 1) + 0.5 * np.sum(w * np.log(w / m), 1)
    assert math.isclose(jsd_floor(w, 200), js.mean(), rel_tol=0.03)


def test_pacgan_protocol_through_the_metric_equals_mege_js_on_uniform_mixtures():
    data = ring8()
    torch.manual_seed(0)
    x = data.sample(2500)
    pac = ToyModeMetrics(protocol="pacgan")(lambda n: x[:n], data)
    ours = mode_metrics(x, data.centres, data.std, data.weights)
    assert pac["jsd"] == ours["js"] and pac["modes"] == ours["modes"] and pac["n_hq"] == ours["n_hq"]
    assert "reverse_kl" not in pac


def test_protocol_option_composes_and_refuses_the_wrong_data(make_cfg):
    assert instantiate(make_cfg("metric.protocol=pacgan").metric).protocol == "pacgan"
    assert instantiate(make_cfg().metric).protocol == "mege"
    with pytest.raises(MegeError, match="metric.protocol=meg does not count 2-D mixtures; use metric.protocol=mege or pacgan"):
        ToyModeMetrics(protocol="meg")
    with pytest.raises(MegeError, match="does not count Stacked MNIST"):
        StackedMNISTMetrics(protocol="pacgan")
    with pytest.raises(MegeError, match="unknown metric.protocol='veegan'"):
        StackedMNISTMetrics(protocol="veegan")


def test_meg_classifier_training_is_deterministic_and_the_asset_is_carded():
    a, card_a = train_meg_classifier(out=None, max_steps=15, log=None)
    b, card_b = train_meg_classifier(out=None, max_steps=15, log=None)
    assert card_a["content_hash"] == card_b["content_hash"]
    assert sum(p.numel() for p in MEGDigitNet().parameters()) == 21840
    assert MEG_PATH.stat().st_size < 200_000
    model, card = load_meg_classifier()
    stored = torch.load(MEG_PATH, map_location="cpu", weights_only=True)["card"]["content_hash"]
    assert card["content_hash"] == stored and card["is_committed"] and not model.training
    assert card["heldout_accuracy"] > 0.95 and card["recipe"]["optimizer"] == "SGD"


def test_meg_labels_encode_channel0_most_significant():
    clf = ConstantDigitNet()
    assert classify_stacks_meg(clf, stacks([[7, 0, 2]]), dropout=False).tolist() == encode_labels(torch.tensor([[7, 0, 2]])).tolist() == [702]
