"""MNIST IDX reader: tiny files written here (good raw/gzip, truncated, wrong magic, wrong
checksum under a published name, missing files), plus the real test split when present."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from mege.data import mnist
from mege.data.mnist import (PUBLISHED_MD5, load_mnist, read_images, read_labels, read_split, to_unit_range,
                             verify_md5)
from mege.errors import MegeError

SHARED = mnist.REPO_ROOT.parent / "shared" / "data" / "mnist"


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.astype(np.uint8).tobytes()


def write_split(folder: Path, n: int = 5, gz: bool = False, stems=("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    for stem, payload in zip(stems, (idx_bytes(images, 2051), idx_bytes(labels, 2049))):
        if gz:
            with gzip.open(folder / f"{stem}.gz", "wb") as f:
                f.write(payload)
        else:
            (folder / stem).write_bytes(payload)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_reads_good_files(tmp_path, gz):
    # Raw names have no published md5; gzipped ones written under a *non*-published name.
    stems = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte") if not gz else ("my-images-idx3-ubyte", "my-labels-idx1-ubyte")
    images, labels = write_split(tmp_path, n=7, gz=gz, stems=stems)
    suffix = ".gz" if gz else ""
    got_images = read_images(tmp_path / (stems[0] + suffix))
    got_labels = read_labels(tmp_path / (stems[1] + suffix))
    assert got_images.dtype == torch.uint8 and got_images.shape == (7, 28, 28)
    assert np.array_equal(got_images.numpy(), images)
    assert np.array_equal(got_labels.numpy(), labels.astype(np.int64))


def test_load_mnist_uses_present_split_from_root(tmp_path):
    images, labels = write_split(tmp_path, n=4)
    parts = load_mnist(tmp_path)
    assert list(parts) == ["test"]
    assert np.array_equal(parts["test"].images.numpy(), images)


def test_truncated_file_names_file_and_fix(tmp_path):
    write_split(tmp_path, n=3)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(MegeError, match=r"t10k-images-idx3-ubyte: truncated \(2342 of 2352.*mege data mnist --dest DIR"):
        read_images(path)


def test_truncated_gzip(tmp_path):
    write_split(tmp_path, n=3, gz=True, stems=("a-idx3", "b-idx1"))
    path = tmp_path / "a-idx3.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(MegeError, match="a-idx3.gz.*mege data mnist"):
        read_images(path)


def test_trailing_bytes_rejected(tmp_path):
    write_split(tmp_path, n=3)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(MegeError, match="1 bytes after the data"):
        read_labels(path)


def test_wrong_magic(tmp_path):
    write_split(tmp_path, n=3)
    # a label file handed to the image reader
    with pytest.raises(MegeError, match="IDX magic 2049, expected 2051"):
        read_images(tmp_path / "t10k-labels-idx1-ubyte")


def test_wrong_image_size_and_label_range(tmp_path):
    (tmp_path / "img").write_bytes(idx_bytes(np.zeros((2, 27, 28)), 2051))
    with pytest.raises(MegeError, match=r"\(27, 28\), expected \(28, 28\)"):
        read_images(tmp_path / "img")
    (tmp_path / "lab").write_bytes(idx_bytes(np.array([3, 10]), 2049))
    with pytest.raises(MegeError, match="label 10 outside"):
        read_labels(tmp_path / "lab")


def test_count_mismatch(tmp_path):
    write_split(tmp_path, n=3)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([1, 2]), 2049))
    with pytest.raises(MegeError, match="3 images but 2 labels"):
        read_split(tmp_path, "test")


def test_wrong_checksum_under_published_name(tmp_path):
    write_split(tmp_path, n=3, gz=True)  # valid IDX content, but not the published bytes
    with pytest.raises(MegeError, match="t10k-images-idx3-ubyte.gz: MD5 [0-9a-f]{32} does not match the published 9fb629c4"):
        load_mnist(tmp_path)


def test_verify_md5_accepts_matching_file(tmp_path, monkeypatch):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"hello")
    monkeypatch.setitem(PUBLISHED_MD5, path.name, "5d41402abc4b2a76b9719d911017c592")  # md5("hello")
    verify_md5(path)  # no error
    verify_md5(tmp_path / "unpublished-name.gz")  # unknown names are not checked


def test_missing_files_list_every_place(tmp_path, monkeypatch):
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    monkeypatch.setattr(mnist, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(mnist, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(MegeError) as err:
        load_mnist()
    message = str(err.value)
    assert str(tmp_path / "shared" / "data" / "mnist") in message and str(tmp_path / "cache") in message
    assert "mege data mnist --dest DIR" in message and "\n" not in message


def test_env_var_root(tmp_path, monkeypatch):
    write_split(tmp_path, n=2)
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path))
    assert len(load_mnist()["test"].labels) == 2


def test_half_split_is_an_error(tmp_path):
    write_split(tmp_path, n=2)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MegeError, match="no t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_unit_range():
    x = to_unit_range(torch.tensor([0, 255, 51], dtype=torch.uint8))
    assert torch.allclose(x, torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))


def test_shared_test_split():
    if not (SHARED / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"shared MNIST test split not found at {SHARED}")
    parts = load_mnist(SHARED)  # also verifies the published md5s
    assert list(parts) == ["test"]
    test = parts["test"]
    assert test.images.shape == (10000, 28, 28)
    # the published test-split digit counts
    assert torch.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int(test.images.max()) == 255 and int(test.images.min()) == 0


def test_download_from_a_local_mirror_verifies_md5(tmp_path, monkeypatch):
    """download_mnist over file:// URLs (no network): good files land in dest, a corrupt mirror
    is rejected with a one-line error naming the file."""
    import hashlib

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    fake = {}
    for name in PUBLISHED_MD5:
        payload = f"fake {name}".encode()
        (mirror / name).write_bytes(payload)
        fake[name] = hashlib.md5(payload).hexdigest()
    monkeypatch.setattr(mnist, "PUBLISHED_MD5", fake)
    got = mnist.download_mnist(tmp_path / "dest", mirrors=(mirror.as_uri() + "/",))
    assert sorted(p.name for p in got) == sorted(fake) and all(p.read_bytes().startswith(b"fake") for p in got)
    assert not list((tmp_path / "dest").glob("*.part"))
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(b"corrupt")
    (tmp_path / "dest" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MegeError, match=r"could not download t10k-labels-idx1-ubyte.gz \(.*MD5"):
        mnist.download_mnist(tmp_path / "dest", mirrors=(mirror.as_uri() + "/",))
