"""The Stacked MNIST digit classifier: normalisation inside forward, cache round trip with
card and content hash, the committed reference and its bit-for-bit retraining, the held-out split, augmentation, and a small classifier trained here on the shared
MNIST test split that must count real Stacked MNIST samples as a perfect sampler."""

import hashlib
import struct

import numpy as np
import pytest
import torch

from mege.data import mnist
from mege.errors import MegeError
from mege import reproducibility
from mege.metrics.classifier import (
    REFERENCE_CONTENT_HASH, REFERENCE_PATH, RETRAINED_CONTENT_HASHES, DigitClassifier, content_hash, load_classifier,
    random_affine, retrained_hash_here, save_classifier, split_data, train_classifier,
)

SHARED = mnist.REPO_ROOT.parent / "shared" / "data" / "mnist"


def write_split(folder, split="test", n=12, seed=0):
    stems = {"test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")}[split]
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    head = lambda magic, shape: struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in shape)  # noqa: E731
    (folder / stems[0]).write_bytes(head(2051, images.shape) + images.tobytes())
    (folder / stems[1]).write_bytes(head(2049, labels.shape) + labels.tobytes())
    return images, labels


def test_normalisation_is_applied_inside_forward():
    torch.manual_seed(0)
    plain = DigitClassifier(mean=0.0, std=1.0).eval()
    shifted = DigitClassifier(mean=-0.7, std=0.6).eval()
    shifted.load_state_dict({**plain.state_dict(), "mean": torch.tensor(-0.7), "std": torch.tensor(0.6)})
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert torch.allclose(shifted(x), plain((x + 0.7) / 0.6), atol=1e-5)
    assert torch.allclose(shifted(x[:, 0]), shifted(x), atol=1e-6)  # (n, 28, 28) accepted too


def test_save_load_round_trip_with_card_and_content_hash(tmp_path):
    torch.manual_seed(0)
    model = DigitClassifier(width=8, hidden=32, mean=-0.5, std=0.7).eval()
    path = save_classifier(model, {"heldout_accuracy": 0.99, "seed": 3, "arch": dict(model.arch)}, tmp_path / "c.pt")
    loaded, card = load_classifier(path)
    assert not loaded.training
    assert card["content_hash"] == content_hash(model.state_dict()) and card["seed"] == 3
    assert card["is_reference"] is False
    assert float(loaded.mean) == pytest.approx(-0.5) and float(loaded.std) == pytest.approx(0.7)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert torch.equal(loaded(x), model(x))
    torch.load(path, weights_only=True)  # plain tensors and builtins only


def test_content_hash_is_of_the_weights_not_the_file(tmp_path):
    """Same weights under another card and path: same hash (the file's sha256 differs); one
    changed value, a renamed tensor or a changed dtype: another hash. Checked against a sha256
    computed by hand over the documented layout."""
    torch.manual_seed(0)
    model = DigitClassifier(width=4, hidden=8)
    a = save_classifier(model, {"arch": dict(model.arch), "note": "first"}, tmp_path / "a.pt")
    b = save_classifier(model, {"arch": dict(model.arch), "note": "second, elsewhere"}, tmp_path / "sub" / "b.pt")
    assert hashlib.sha256(a.read_bytes()).hexdigest() != hashlib.sha256(b.read_bytes()).hexdigest()
    assert load_classifier(a)[1]["content_hash"] == load_classifier(b)[1]["content_hash"]
    sd = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    by_hand = hashlib.sha256()
    by_hand.update(b"n|torch.int64|()|" + (3).to_bytes(8, "little"))
    by_hand.update(b"w|torch.float32|(2,)|" + torch.tensor([1.0, 2.0]).numpy().tobytes())
    assert content_hash(sd) == by_hand.hexdigest()
    assert content_hash({**sd, "w": torch.tensor([1.0, 2.0000002])}) != content_hash(sd)
    assert content_hash({"v": sd["w"], "n": sd["n"]}) != content_hash(sd)
    assert content_hash({**sd, "w": sd["w"].double()}) != content_hash(sd)


def test_reference_classifier_is_committed_with_its_card():
    """The committed file's weights hash to the constant written in code (not to a hash recomputed
    from the same file): replacing the asset with any other weights fails here."""
    model, card = load_classifier()  # None = the committed reference
    assert card["path"] == str(REFERENCE_PATH) and card["is_reference"] is True
    blob = torch.load(REFERENCE_PATH, weights_only=True)
    assert content_hash(blob["state_dict"]) == REFERENCE_CONTENT_HASH
    assert blob["card"]["content_hash"] == REFERENCE_CONTENT_HASH  # the hash written at training time
    assert card["heldout_accuracy"] > 0.99 and card["recipe"]["threads"] == 1 and card["recipe"]["splits"] == ["test"]
    assert RETRAINED_CONTENT_HASHES[0] == ({"torch": card["torch"], "cpu_capability": card["cpu_capability"],
                                            "cpu_vendor": None}, REFERENCE_CONTENT_HASH)  # the platform it was made on


def test_is_reference_is_decided_by_content_hash_not_path(tmp_path):
    """A copy of the reference elsewhere is the reference; other weights saved at a path are not."""
    blob = torch.load(REFERENCE_PATH, weights_only=True)
    copy = tmp_path / "copy.pt"
    torch.save(blob, copy)
    assert load_classifier(copy)[1]["is_reference"] is True
    model, card = load_classifier()
    with torch.no_grad():
        model.head[-1].bias.add_(1e-3)
    other = save_classifier(model, {k: v for k, v in card.items() if k not in ("path", "is_reference")}, tmp_path / "other.pt")
    assert load_classifier(other)[1]["is_reference"] is False


@pytest.fixture(scope="module")
def retrained():
    """`mege classifier train` with its defaults (test split, seed 0, one thread, deterministic
    algorithms; about 100 s), run with 2 threads around it to show the caller's thread count does not matter."""
    if not (SHARED / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the MNIST test split is not at {SHARED} (these tests retrain the reference recipe on it)")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model, card = train_classifier(out=None, root=SHARED, log=None)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(threads)
    return model, card


def test_retraining_is_bit_identical_where_promised(retrained):
    """Bit for bit only on a platform recorded in RETRAINED_CONTENT_HASHES (same torch, ATen capability,
    CPU vendor): on the AVX2 machine that made it, the reference itself; elsewhere skipped with the reason."""
    expected = retrained_hash_here()
    if expected is None:
        made = "; ".join(reproducibility.describe(p) for p, _ in RETRAINED_CONTENT_HASHES)
        pytest.skip(f"retraining is promised bit for bit on {made}, not on this machine "
                    f"({reproducibility.describe(reproducibility.platform())}); "
                    "test_retraining_matches_the_reference_within_kernel_tolerance guards it here")
    assert retrained[1]["content_hash"] == expected, f"retrained weights differ from this platform's record ({expected[:8]}…)"


def test_retraining_matches_the_reference_within_kernel_tolerance(retrained):
    """On every machine: retraining gives the reference's held-out accuracy within 0.003 (kernel
    differences measured 0.9935 → 0.9940 / 0.9945 on AVX-512 machines, 10 / 20 of 2 000 images) and
    the same label as the reference on at least 99 % of the 2 000 held-out digits. A changed recipe
    (another seed, augmentation, normalisation, split) moves these; last-bit kernel differences do not."""
    model, card = retrained
    reference, ref_card = load_classifier()
    assert abs(card["heldout_accuracy"] - ref_card["heldout_accuracy"]) <= 0.003
    held = split_data(SHARED, seed=0, holdout=2000)[2]
    agreement = float((model.predict(held) == reference.predict(held)).float().mean())
    assert agreement >= 0.99, f"retrained and reference classifiers agree on {agreement:.4f} of held-out digits"


def test_load_errors_name_the_fix(tmp_path):
    with pytest.raises(MegeError, match="mege classifier train --out"):
        load_classifier(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MegeError, match="not a mege digit classifier"):
        load_classifier(tmp_path / "junk.pt")


def test_split_holds_out_a_seeded_slice_when_one_split(tmp_path):
    images, labels = write_split(tmp_path, "test", n=12)
    tx, ty, hx, hy, where = split_data(tmp_path, seed=1, holdout=4)
    assert len(tx) == 8 and len(hx) == 4 and "test split only" in where and "seed 1" in where
    assert sorted(ty.tolist() + hy.tolist()) == sorted(labels.tolist())
    assert float(tx.min()) >= -1 and float(tx.max()) <= 1 and tx.shape[1:] == (1, 28, 28)
    again = split_data(tmp_path, seed=1, holdout=4)
    assert torch.equal(hy, again[3])


def test_split_uses_train_and_test_when_both(tmp_path):
    write_split(tmp_path, "test", n=6, seed=1)
    write_split(tmp_path, "train", n=10, seed=2)
    tx, _, hx, _, where = split_data(tmp_path, splits=("train", "test"))
    assert (len(tx), len(hx)) == (10, 6) and "held out the test split" in where
    tx, _, hx, _, where = split_data(tmp_path, holdout=2)  # default: the test split only (the reference recipe)
    assert (len(tx), len(hx)) == (4, 2) and "test split only" in where


def test_train_two_steps_writes_card(tmp_path):
    write_split(tmp_path, "test", n=40)
    model, card = train_classifier(out=tmp_path / "clf.pt", root=tmp_path, holdout=10, epochs=1, batch_size=8,
                                   max_steps=2, width=4, log=None)
    assert card["steps"] == 2 and not model.training
    tx, _, hx, hy, _ = split_data(tmp_path, holdout=10)
    assert card["heldout_size"] == 10
    assert card["heldout_accuracy"] == pytest.approx(float((model.predict(hx) == hy).float().mean()))
    assert card["normalisation"]["mean"] == pytest.approx(float(tx.mean()), abs=1e-6)
    assert card["normalisation"]["std"] == pytest.approx(float(tx.std()), abs=1e-6)
    loaded, loaded_card = load_classifier(tmp_path / "clf.pt")
    assert float(loaded.mean) == pytest.approx(card["normalisation"]["mean"])
    assert loaded_card["heldout_accuracy"] == card["heldout_accuracy"]


def test_random_affine_identity_and_range():
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    same = random_affine(x, max_shift=0.0, max_rotate_deg=0.0, max_scale=0.0)
    assert torch.allclose(same, x, atol=1e-5)
    moved = random_affine(x)
    assert moved.shape == x.shape and float(moved.min()) >= -1 - 1e-5 and float(moved.max()) <= 1 + 1e-5
    # a blank (all −1) image stays blank: background fills with −1
    assert torch.allclose(random_affine(-torch.ones(3, 1, 28, 28)), -torch.ones(3, 1, 28, 28))


def test_small_classifier_trained_here_counts_real_stacks_at_the_floor():
    """A small classifier (width 8, 4 epochs, about 10 s on one core) trained on 8 000 images of the
    shared MNIST test split, held-out accuracy measured 0.981 on the other 2 000. Stacked MNIST
    built from exactly those 2 000 held-out images (StackedMNIST's seeded pool is the same
    permutation as split_data's hold-out), 26 000 real stacks counted through it (about 9 s):
    measured 1 000 modes and KL(p̂ ‖ p_data) = 0.0184 against the perfect-sampling floor 0.0193 —
    real data scores as a perfect sampler, as the protocol requires. A channel-order, label or
    eval-mode bug in the count, or a classifier that does not learn, moves these far off."""
    from mege.data.stacked_mnist import StackedMNIST
    from mege.metrics.stacked_mnist import StackedMNISTMetrics
    from mege.metrics.toy import perfect_sampling_floor

    if not (SHARED / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the shared MNIST test split is not at {SHARED} (this test trains a classifier on it)")
    model, card = train_classifier(out=None, root=SHARED, holdout=2000, epochs=4, width=8, log=None)
    assert card["heldout_accuracy"] >= 0.97 and card["heldout_size"] == 2000
    held_digits = split_data(SHARED, seed=0, holdout=2000)[3]
    data = StackedMNIST(n_stack=3, root=SHARED, pool_size=2000, seed=0)
    assert torch.equal(data.pool_digits, held_digits)  # the stacks are made of held-out digits only
    torch.manual_seed(0)
    out = StackedMNISTMetrics(classifier=model, card=card, n_samples=26000)(data.sample, data)
    floor = perfect_sampling_floor(torch.ones(1000), 26000)  # 0.0193
    assert out["modes"] >= 995
    assert out["reverse_kl_data"] <= 1.5 * floor
    p = data.label_distribution().numpy()
    data_kl = float(np.sum(p * np.log(1000 * p)))  # KL(p_data ‖ uniform) of this pool
    assert out["reverse_kl"] <= data_kl + 1.5 * floor
