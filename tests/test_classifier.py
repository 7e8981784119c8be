"""The Stacked MNIST digit classifier: normalisation inside forward, cache round trip with
card and sha256, the held-out split, augmentation. (No full training here: two steps at most.)"""

import hashlib
import math
import struct

import numpy as np
import pytest
import torch

from mege.errors import MegeError
from mege.metrics import classifier as clf_mod
from mege.metrics.classifier import DigitClassifier, load_classifier, random_affine, save_classifier, split_data, train_classifier


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


def test_save_load_round_trip_with_card_and_sha256(tmp_path):
    torch.manual_seed(0)
    model = DigitClassifier(width=8, hidden=32, mean=-0.5, std=0.7).eval()
    path = save_classifier(model, {"heldout_accuracy": 0.99, "seed": 3, "arch": dict(model.arch)}, tmp_path / "c.pt")
    loaded, card = load_classifier(path)
    assert not loaded.training
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and card["seed"] == 3
    assert float(loaded.mean) == pytest.approx(-0.5) and float(loaded.std) == pytest.approx(0.7)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert torch.equal(loaded(x), model(x))
    torch.load(path, weights_only=True)  # plain tensors and builtins only


def test_load_errors_name_the_fix(tmp_path):
    with pytest.raises(MegeError, match="mege classifier train --out"):
        load_classifier(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MegeError, match="not a mege digit classifier"):
        load_classifier(tmp_path / "junk.pt")


def test_split_holds_out_a_seeded_slice_when_one_split(tmp_path):
    images, labels = write_split(tmp_path, "test", n=12)
    tx, ty, hx, hy, where = split_data(tmp_path, seed=1, holdout=4)
    assert len(tx) == 8 and len(hx) == 4 and "only the test split" in where and "seed 1" in where
    assert sorted(ty.tolist() + hy.tolist()) == sorted(labels.tolist())
    assert float(tx.min()) >= -1 and float(tx.max()) <= 1 and tx.shape[1:] == (1, 28, 28)
    again = split_data(tmp_path, seed=1, holdout=4)
    assert torch.equal(hy, again[3])


def test_split_uses_train_and_test_when_both(tmp_path):
    write_split(tmp_path, "test", n=6, seed=1)
    write_split(tmp_path, "train", n=10, seed=2)
    tx, _, hx, _, where = split_data(tmp_path)
    assert (len(tx), len(hx)) == (10, 6) and "held out the test split" in where


def test_train_two_steps_writes_card(tmp_path):
    write_split(tmp_path, "test", n=40)
    model, card = train_classifier(out=tmp_path / "clf.pt", root=tmp_path, holdout=10, epochs=1, batch_size=8,
                                   max_steps=2, width=4, log=None)
    assert card["steps"] == 2 and not model.training
    assert 0.0 <= card["heldout_accuracy"] <= 1.0 and card["heldout_size"] == 10
    tx = split_data(tmp_path, holdout=10)[0]
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


def test_cached_classifier_meets_accuracy_target():
    path = clf_mod.DEFAULT_PATH.expanduser()
    if not path.is_file():
        pytest.skip(f"no cached classifier at {path} (make one with `mege classifier train`)")
    _, card = load_classifier(path)
    assert card["heldout_accuracy"] >= 0.985 and card["heldout_size"] >= 1000
    assert math.isfinite(card["normalisation"]["mean"])
