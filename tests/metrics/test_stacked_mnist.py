"""Stacked MNIST data (mege/data/stacked_mnist.py) and its mode counting (mege/metrics/stacked_mnist.py)."""

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mege.data import mnist
from mege.data.stacked_mnist import StackedMNIST, decode_labels, encode_labels
from mege.errors import MegeError
from mege.metrics import toy
from mege.metrics.stacked_mnist import HQ_CONFIDENCE, StackedMNISTMetrics, classify_stacks, count_modes

SHARED = mnist.REPO_ROOT.parent / "shared" / "data" / "mnist"
COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # published test-split digit counts


def digit_value(d):
    """Pixel value in [−1, 1] that encodes digit d in the stub data/classifier: −1 + 2d/9."""
    return -1 + 2 * torch.as_tensor(d, dtype=torch.float32) / 9


def write_constant_digits(folder: Path, digits: list[int]) -> None:
    """IDX test split whose image i is constant with the uint8 value of digit_value(digits[i])."""
    pixels = np.stack([np.full((28, 28), round((float(digit_value(d)) + 1) * 127.5), dtype=np.uint8) for d in digits])
    header = lambda magic, shape: struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in shape)  # noqa: E731
    (folder / "t10k-images-idx3-ubyte").write_bytes(header(2051, pixels.shape) + pixels.tobytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(header(2049, (len(digits),)) + bytes(digits))


class StubClassifier(nn.Module):
    """Reads the digit off a constant image; heavy dropout on the logits, so train mode would
    scramble the answer. Records the mode it was called in."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.7)
        self.modes_seen = []

    def forward(self, x):
        self.modes_seen.append(self.training)
        d = (x.mean(dim=(1, 2, 3)) + 1) * 4.5
        return self.drop(100 - (torch.arange(10, device=x.device) - d[:, None]) ** 2)


# ---------------------------------------------------------------- labels
def test_encode_is_place_value_channel0_most_significant():
    digits = torch.tensor([[1, 2, 3], [9, 0, 7], [0, 0, 0]])
    assert encode_labels(digits).tolist() == [123, 907, 0]
    assert encode_labels(torch.tensor([[4, 0, 5, 9]])).tolist() == [4059]


@pytest.mark.parametrize("n_stack", [1, 3, 4])
def test_label_round_trip(n_stack):
    labels = torch.arange(10**n_stack)
    digits = decode_labels(labels, n_stack)
    assert digits.shape == (10**n_stack, n_stack) and int(digits.max()) == 9
    assert torch.equal(encode_labels(digits), labels)


# ---------------------------------------------------------------- data
@pytest.fixture
def tiny_root(tmp_path):
    write_constant_digits(tmp_path, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1])
    return tmp_path


def test_sample_shape_range_and_labels_match_images(tiny_root):
    data = StackedMNIST(n_stack=3, root=tiny_root)
    assert data.shape == (3, 28, 28) and data.n_modes == 1000 and len(data) == 12
    torch.manual_seed(0)
    x, labels = data.sample_with_labels(500)
    assert x.shape == (500, 3, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    digits_from_pixels = torch.round((x[:, :, 0, 0] + 1) * 4.5).long()
    assert torch.equal(encode_labels(digits_from_pixels), labels)
    # channels are independent: all 3 channels differ somewhere, and the stub classifier agrees
    assert torch.equal(classify_stacks(StubClassifier(), x), labels)


def test_sample_uses_global_rng(tiny_root):
    data = StackedMNIST(n_stack=3, root=tiny_root)
    torch.manual_seed(5)
    a = data.sample(50)
    torch.manual_seed(5)
    assert torch.equal(a, data.sample(50))
    assert not torch.equal(a, data.sample(50))


def test_channel_digit_frequencies_follow_pool(tiny_root):
    data = StackedMNIST(n_stack=3, root=tiny_root)
    torch.manual_seed(1)
    _, labels = data.sample_with_labels(8000)
    digits = decode_labels(labels, 3)
    share_of_ones = (digits == 1).double().mean(dim=0)
    assert torch.allclose(share_of_ones, torch.full((3,), 3 / 12, dtype=torch.float64), atol=0.02)  # 4 sd
    p = data.label_distribution()
    assert p.shape == (1000,) and math.isclose(float(p.sum()), 1.0)
    assert math.isclose(float(p[111]), (3 / 12) ** 3) and math.isclose(float(p[123]), (3 / 12) * (1 / 12) ** 2)


def test_pool_size_is_a_seeded_subset(tiny_root):
    a = StackedMNIST(root=tiny_root, pool_size=5, seed=3)
    b = StackedMNIST(root=tiny_root, pool_size=5, seed=3)
    assert len(a) == 5 and torch.equal(a.pool_digits, b.pool_digits)
    with pytest.raises(MegeError, match="pool_size=13 but 12 MNIST images"):
        StackedMNIST(root=tiny_root, pool_size=13)


def test_real_stacked_mnist_on_shared_test_split():
    if not (SHARED / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"shared MNIST test split not found at {SHARED}")
    data = StackedMNIST(n_stack=3, root=SHARED)
    assert len(data) == 10000 and data.splits == ("test",)
    assert (data.digit_frequencies() * 10000).round().long().tolist() == COUNTS
    f = np.array(COUNTS) / 10000
    kl_data_vs_uniform = 3 * float(np.sum(f * np.log(10 * f)))  # 0.00521
    p = data.label_distribution().numpy()
    assert math.isclose(float(np.sum(p * np.log(1000 * p))), kl_data_vs_uniform, rel_tol=1e-9)


# ---------------------------------------------------------------- counting
def test_count_uniform_over_1000_is_kl_zero():
    labels = torch.arange(1000).repeat(26)
    out = count_modes(labels, 1000, data_distribution=torch.ones(1000))
    assert out["modes"] == 1000 and out["n_samples"] == 26000
    assert abs(out["reverse_kl"]) < 1e-12 and abs(out["reverse_kl_data"]) < 1e-12


def test_count_one_mode_is_ln_1000():
    out = count_modes(torch.full((26000,), 417), 1000)
    assert out["modes"] == 1
    assert math.isclose(out["reverse_kl"], math.log(1000), rel_tol=1e-12)
    assert "reverse_kl_data" not in out


def test_count_hand_case():
    # p̂ = (1/2, 1/4, 0, 1/4) over 4 cells
    out = count_modes(torch.tensor([0, 0, 1, 3]), 4, data_distribution=torch.tensor([4.0, 2.0, 1.0, 1.0]))
    assert out["modes"] == 3
    assert math.isclose(out["reverse_kl"], 0.5 * math.log(2))  # ½ ln(4·½) + ¼ ln 1 + ¼ ln 1
    assert math.isclose(out["reverse_kl_data"], 0.25 * math.log(2))  # vs (½, ¼, ⅛, ⅛)
    assert count_modes(torch.tensor([2]), 4, data_distribution=torch.tensor([1.0, 1.0, 0.0, 1.0]))["reverse_kl_data"] == math.inf
    with pytest.raises(MegeError, match=r"labels must lie in \[0, 4\)"):
        count_modes(torch.tensor([4]), 4)


def test_perfect_sampling_floor_matches_exact_binomial_sum():
    floor = toy.perfect_sampling_floor(torch.ones(1000), 26000)  # the one floor: an exact binomial sum
    exact = 0.019340
    assert abs(floor - 0.0194) < 3e-4 and abs(floor - exact) < 2e-4


def test_exact_uniform_samples_sit_on_the_floor():
    torch.manual_seed(0)
    kls = [count_modes(torch.randint(1000, (26000,)), 1000)["reverse_kl"] for _ in range(20)]
    assert abs(np.mean(kls) - 0.01934) < 1e-3


def make_generate(digits: torch.Tensor):
    """generate(n) -> constant-image stacks for the given (n, n_stack) digits."""
    def generate(n):
        assert n == len(digits)
        return digit_value(digits)[:, :, None, None].expand(-1, -1, 28, 28).contiguous()
    return generate


def test_metric_forces_eval_mode_and_restores_train_mode(tiny_root):
    torch.manual_seed(0)
    digits = torch.randint(10, (300, 3))
    clf = StubClassifier()
    clf.train()  # a caller forgot to switch it off
    metric = StackedMNISTMetrics(classifier=clf, card={"heldout_accuracy": 1.0, "content_hash": "stub", "is_reference": False}, n_samples=300, batch_size=64)
    out = metric(make_generate(digits), StackedMNIST(n_stack=3, root=tiny_root))
    assert clf.modes_seen and not any(clf.modes_seen)  # every forward ran in eval mode
    assert clf.training  # the caller's mode is restored afterwards
    truth = count_modes(encode_labels(digits), 1000)
    assert out["modes"] == truth["modes"] and math.isclose(out["reverse_kl"], truth["reverse_kl"])
    card = out["protocol"]
    assert card["n_samples"] == 300 and card["log_base"] == "e" and card["classifier_content_hash"] == "stub"
    assert "KL(p_gen || uniform)" in card["kl"] and card["n_modes"] == 1000


def test_threaded_classification_matches_and_restores_threads(tiny_root):
    data = StackedMNIST(n_stack=3, root=tiny_root)
    torch.manual_seed(2)
    x, labels = data.sample_with_labels(100)
    clf = StubClassifier().train()
    threads = torch.get_num_threads()
    assert torch.equal(classify_stacks(clf, x, batch_size=7, workers=2), labels)
    assert torch.equal(classify_stacks(clf, x, batch_size=7, workers=1), labels)
    assert torch.get_num_threads() == threads and clf.training and not any(clf.modes_seen)


class SkewedStackedMNIST(StackedMNIST):
    """Stacked MNIST whose label distribution is p(label) ∝ 1 + label: not symmetric under a
    permutation of the channels (p(123) = 124/500 500, p(321) = 322/500 500), so the KL to it can
    tell the channel order apart (the product of identical pool frequencies cannot)."""

    def label_distribution(self):
        p = torch.arange(1, self.n_modes + 1, dtype=torch.float64)
        return p / p.sum()


def test_metric_channel_order_and_default_sample_count(tiny_root):
    data = SkewedStackedMNIST(n_stack=3, root=tiny_root)
    digits = torch.tensor([[1, 2, 3]]).repeat(26000, 1)
    out = StackedMNISTMetrics(classifier=StubClassifier())(make_generate(digits), data)  # default n = 26 000
    assert out["modes"] == 1 and out["n_samples"] == 26000
    # all mass on label 123 (channel 0 most significant): KL = −ln p(123); channels read in reverse give −ln p(321)
    assert math.isclose(out["reverse_kl_data"], -math.log(124 / 500500), rel_tol=1e-9)
    # an asymmetric histogram: 3/4 on 123, 1/4 on 700 (reversed: 321 and 7)
    mixed = torch.cat([torch.tensor([[1, 2, 3]]).repeat(300, 1), torch.tensor([[7, 0, 0]]).repeat(100, 1)])
    out = StackedMNISTMetrics(classifier=StubClassifier(), n_samples=400)(make_generate(mixed), data)
    expected = 0.75 * math.log(0.75 / (124 / 500500)) + 0.25 * math.log(0.25 / (701 / 500500))
    assert out["modes"] == 2 and math.isclose(out["reverse_kl_data"], expected, rel_tol=1e-9)


def test_metric_rejects_wrong_shapes(tiny_root):
    metric = StackedMNISTMetrics(classifier=StubClassifier(), n_samples=10)
    with pytest.raises(MegeError, match=r"must make \(n, 3, 28, 28\)"):
        metric(lambda n: torch.zeros(n, 1, 28, 28), StackedMNIST(n_stack=3, root=tiny_root))


def test_metric_missing_classifier_file_names_the_fix(tmp_path, tiny_root):
    metric = StackedMNISTMetrics(classifier_path=tmp_path / "none.pt", n_samples=10)
    with pytest.raises(MegeError, match="mege classifier train --out"):
        metric(lambda n: torch.zeros(n, 3, 28, 28), StackedMNIST(root=tiny_root))


@pytest.mark.parametrize("experiment", ["stacked_mnist", "stacked_mnist_cpu", "stacked_mnist4", "stacked_mnist4_paper"])
def test_experiment_configs_train_end_to_end(experiment, tmp_path, tiny_root, single_thread):
    """Every Stacked MNIST experiment config composes and trains a few steps with tiny widths on
    tiny IDX data, writing Stacked MNIST metrics with their protocol card and a sample grid."""
    import json

    from hydra import compose, initialize_config_dir

    from mege.config import config_dir
    from mege.metrics.classifier import DigitClassifier, save_classifier
    from mege.train import Trainer

    save_classifier(DigitClassifier(width=2, hidden=8), {"arch": {"width": 2, "hidden": 8, "dropout": 0.3}, "heldout_accuracy": 0.1}, tmp_path / "c.pt")
    overrides = [f"experiment={experiment}", "name=test", "device=cpu", f"data.root={tiny_root}", f"metric.classifier_path={tmp_path / 'c.pt'}",
                 "metric.n_samples=40", "generator.width=2", "energy.width=2", "z_dim=4", "entropy.hidden=8",
                 "train.steps=2", "train.eval_every=2", "train.ckpt_every=2", "train.progress=false", "train.plot_samples=64"]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=False)
    n_stack = 4 if "mnist4" in experiment else 3
    assert cfg.x_dim == n_stack * 784 and cfg.train.batch_size == 64 and cfg.data.n_stack == n_stack
    assert cfg.energy.n_channels == cfg.generator.n_channels == n_stack
    summary = Trainer(cfg, tmp_path / "run").fit()
    assert summary["status"] == "completed"
    metrics = summary["metrics"]
    assert 1 <= metrics["modes"] <= 40 and metrics["n_modes"] == 10**n_stack and metrics["protocol"]["log_base"] == "e"
    assert metrics["protocol"]["classifier_is_reference"] is False and len(metrics["protocol"]["classifier_content_hash"]) == 64
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    assert (tmp_path / "run" / "landscape.png").is_file()


def test_reference_row_counts_real_stacks_once_and_leaves_training_rng(tiny_root):
    """The reference block is the real data through the same classifier: with the stub, exactly the
    count of the true labels of the seeded real draw; computed once per metric object."""
    data = StackedMNIST(n_stack=3, root=tiny_root)
    clf = StubClassifier()
    metric = StackedMNISTMetrics(classifier=clf, n_samples=500, seed=3, reference=True)
    torch.manual_seed(3)
    _, true_labels = data.sample_with_labels(500)
    truth = count_modes(true_labels, 1000, data.label_distribution())
    torch.manual_seed(11)
    before = torch.rand(1)
    torch.manual_seed(11)
    out = metric(make_generate(torch.zeros(500, 3, dtype=torch.long)), data)
    assert torch.equal(torch.rand(1), before)  # the training RNG did not move
    assert out["modes"] == 1
    assert {k: out["reference"][k] for k in ("modes", "reverse_kl", "reverse_kl_data")} == {
        k: truth[k] for k in ("modes", "reverse_kl", "reverse_kl_data")}
    # the stub reads every digit with top-class probability ≈ 0.57 (logits 100, 99, 99, 96, …): nothing is HQ
    assert out["reference"]["hq_fraction"] == 0.0 and out["reference"]["assigned_kl"] == truth["reverse_kl_data"]
    calls = len(clf.modes_seen)
    metric(make_generate(torch.zeros(500, 3, dtype=torch.long)), data)
    assert len(clf.modes_seen) - calls == calls // 2  # the second call counts only the generated samples
    assert "reference" not in StackedMNISTMetrics(classifier=clf, n_samples=500)(make_generate(torch.zeros(500, 3, dtype=torch.long)), data)


# ---------------------------------------------------------------- HQ fraction and assigned KL
class ConfidenceClassifier(nn.Module):
    """Reads the digit off pixel (0, 0) (digit_value) and the top-class probability p off pixel
    (27, 27) (value 2p − 1): logits ln p for the digit and ln((1 − p)/9) for the other nine, so
    softmax gives the digit exactly probability p."""

    def forward(self, x):
        digit = torch.round((x[:, 0, 0, 0] + 1) * 4.5).long()
        p = ((x[:, 0, 27, 27] + 1) / 2).double()
        logits = torch.log((1 - p) / 9)[:, None].repeat(1, 10)
        logits[torch.arange(len(x)), digit] = torch.log(p)
        return logits.float()


def confident_stacks(digits, probs):
    """(n, n_stack, 28, 28) stacks: channel j of stack i shows digits[i][j] read with probability probs[i][j]."""
    digits, probs = torch.as_tensor(digits), torch.as_tensor(probs, dtype=torch.float32)
    x = digit_value(digits)[:, :, None, None].expand(-1, -1, 28, 28).clone()
    x[:, :, 27, 27] = 2 * probs - 1
    return x


def test_classify_stacks_confidence_is_the_least_confident_channel():
    x = confident_stacks([[1, 2, 3], [4, 5, 6]], [[0.95, 0.5, 0.99], [0.97, 0.93, 0.91]])
    labels, confidence = classify_stacks(ConfidenceClassifier(), x, batch_size=1, workers=2, confidence=True)
    assert labels.tolist() == [123, 456] and torch.equal(classify_stacks(ConfidenceClassifier(), x), labels)
    assert torch.allclose(confidence, torch.tensor([0.5, 0.91]), atol=1e-5)


def test_hq_fraction_assigned_kl_and_floor_by_hand(tiny_root):
    class Controlled(SkewedStackedMNIST):  # p_data(label) = (1 + label) / 500 500; "real" stacks 456, 456, 000, 000
        def sample(self, n):
            return confident_stacks([[4, 5, 6], [4, 5, 6], [0, 0, 0], [0, 0, 0]] * (n // 4),
                                    [[0.99] * 3, [0.95, 0.5, 0.95], [0.91] * 3, [1.0] * 3] * (n // 4))

    data = Controlled(n_stack=3, root=tiny_root)
    # 8 stacks: 5 × 123 and 3 × 700; stacks 0, 3 and 6 have one channel at 0.85 (< 0.9), the rest are HQ
    digits = [[1, 2, 3]] * 5 + [[7, 0, 0]] * 3
    probs = [[0.99, 0.95, 0.99] for _ in range(8)]
    for i, channel in ((0, 0), (3, 2), (6, 1)):
        probs[i][channel] = 0.85
    probs[1] = [0.91, 0.92, 0.93]  # just above on every channel: HQ
    x = confident_stacks(digits, probs)
    metric = StackedMNISTMetrics(classifier=ConfidenceClassifier(), n_samples=8, reference=True)
    out = metric(lambda n: x, data)
    assert HQ_CONFIDENCE == 0.9
    assert out["hq_fraction"] == 5 / 8
    expected = 5 / 8 * math.log(5 / 8 / (124 / 500500)) + 3 / 8 * math.log(3 / 8 / (701 / 500500))
    assert math.isclose(out["assigned_kl"], expected, rel_tol=1e-9) and out["assigned_kl"] == out["reverse_kl_data"]
    assert out["assigned_kl_floor"] == toy.perfect_sampling_floor(data.label_distribution(), 8)
    assert out["assigned_kl_floor"] != toy.perfect_sampling_floor(torch.ones(1000), 8)  # p_data's floor, not uniform's
    assert "n_hq" not in out  # report.write.pooled_p would read it as reverse_kl's sample count
    card = out["protocol"]
    assert card["hq_confidence"] == 0.9 and "hq_confidence" in card["hq_fraction"]
    assert "same number as reverse_kl_data" in card["assigned_kl"] and "pool digit" in card["assigned_kl_p_data"]
    # the reference row: the "real" stacks (data.sample) through the same classifier and endpoints
    ref = out["reference"]
    assert ref["hq_fraction"] == 3 / 4 and ref["modes"] == 2
    assert math.isclose(ref["assigned_kl"], 0.5 * math.log(0.5 / (457 / 500500)) + 0.5 * math.log(0.5 / (1 / 500500)),
                        rel_tol=1e-9)


def test_assigned_kl_falls_back_to_uniform_without_a_data_distribution():
    class Plain:  # a data object with no label distribution
        n_stack, shape = 3, (3, 28, 28)
    x = confident_stacks([[1, 2, 3], [1, 2, 3], [4, 5, 6], [7, 8, 9]], [[0.95] * 3] * 4)
    out = StackedMNISTMetrics(classifier=ConfidenceClassifier(), n_samples=4)(lambda n: x, Plain())
    assert out["hq_fraction"] == 1.0 and "reverse_kl_data" not in out
    assert math.isclose(out["assigned_kl"], 0.5 * math.log(500) + 2 * 0.25 * math.log(250)) and out["assigned_kl"] == out["reverse_kl"]
    assert out["assigned_kl_floor"] == toy.perfect_sampling_floor(np.ones(1000), 4)
    assert out["protocol"]["assigned_kl_p_data"].startswith("uniform")


def test_meg_protocol_keeps_its_keys(tiny_root):
    from mege.metrics.meg_classifier import MEGDigitNet
    out = StackedMNISTMetrics(classifier=MEGDigitNet(), card={}, n_samples=20, protocol="meg")(
        make_generate(torch.zeros(20, 3, dtype=torch.long)), StackedMNIST(n_stack=3, root=tiny_root))
    assert not {"hq_fraction", "assigned_kl", "assigned_kl_floor"} & set(out)
