"""MNIST from the standard IDX files (gzipped or raw), verified.

IDX layout (big-endian): a 4-byte magic ``0x00 0x00 <dtype> <ndim>`` — 2051 for images
(unsigned bytes, 3 axes) and 2049 for labels (unsigned bytes, 1 axis) — then ``ndim``
int32 sizes, then ``prod(sizes)`` bytes of data.

Every check that fails raises :class:`~mege.errors.MegeError` naming the file and the fix:
magic, dimensions (28×28 images, labels 0–9), byte count against the header (truncated or
trailing data), image/label counts, and for the four published ``.gz`` file names their
published MD5.

Where the data lives: ``root`` argument, else ``$MEGE_DATA_DIR`` (the folder holding the
IDX files), else ``<repo>/../shared/data/mnist`` and ``~/.cache/mege/mnist``. Whichever
splits are present are used (these machines hold only the test split).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mege.errors import MegeError

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SIZE = 28
N_CLASSES = 10

#: MD5 of the four published (gzipped) files.
PUBLISHED_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: split -> (images stem, labels stem); a stem is found as ``<stem>.gz`` or raw ``<stem>``.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

ENV_VAR = "MEGE_DATA_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path("~/.cache/mege/mnist")
REDOWNLOAD = "re-download it with `mege data mnist --dest DIR`"


@dataclass
class MNISTSplit:
    """One split: ``images`` uint8 (n, 28, 28), ``labels`` int64 (n,), and the files read."""

    images: Tensor
    labels: Tensor
    files: tuple[Path, Path]


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 pixels in [0, 255] -> float32 in [−1, 1]:  x = p / 127.5 − 1.

    The one scaling used by Stacked MNIST and by the mode classifier's training data.
    """
    return images.float() / 127.5 - 1.0


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_md5(path: str | os.PathLike) -> None:
    """For a published file name, check the file's MD5 against the published one."""
    path = Path(path)
    expected = PUBLISHED_MD5.get(path.name)
    if expected is None:
        return
    actual = md5sum(path)
    if actual != expected:
        raise MegeError(
            f"{path}: MD5 {actual} does not match the published {expected}; the file is corrupt, {REDOWNLOAD}"
        )


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (EOFError, OSError, gzip.BadGzipFile) as err:
            raise MegeError(f"{path}: not a complete gzip file ({err}); {REDOWNLOAD}") from err
    return path.read_bytes()


def read_idx(path: str | os.PathLike, magic: int) -> Tensor:
    """Read one IDX file of unsigned bytes with the given magic; returns a uint8 tensor."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise MegeError(f"{path}: truncated ({len(raw)} bytes, no IDX header); {REDOWNLOAD}")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise MegeError(f"{path}: IDX magic {found}, expected {magic}; wrong or corrupt file, {REDOWNLOAD}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MegeError(f"{path}: truncated inside the IDX header; {REDOWNLOAD}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    body = len(raw) - header
    if body < expected:
        raise MegeError(f"{path}: truncated ({body} of {expected} data bytes for shape {dims}); {REDOWNLOAD}")
    if body > expected:
        raise MegeError(f"{path}: {body - expected} bytes after the data for shape {dims}; corrupt file, {REDOWNLOAD}")
    array = np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def read_images(path: str | os.PathLike) -> Tensor:
    """IDX image file -> uint8 (n, 28, 28)."""
    images = read_idx(path, IMAGE_MAGIC)
    if tuple(images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise MegeError(f"{path}: images of shape {tuple(images.shape[1:])}, expected (28, 28); {REDOWNLOAD}")
    return images


def read_labels(path: str | os.PathLike) -> Tensor:
    """IDX label file -> int64 (n,) with values 0–9."""
    labels = read_idx(path, LABEL_MAGIC).long()
    if labels.numel() and int(labels.max()) >= N_CLASSES:
        raise MegeError(f"{path}: label {int(labels.max())} outside 0–9; corrupt file, {REDOWNLOAD}")
    return labels


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def read_split(root: str | os.PathLike, split: str) -> MNISTSplit | None:
    """Read and verify one split from ``root``; None when neither of its files is there."""
    root = Path(root).expanduser()
    if split not in SPLIT_FILES:
        raise MegeError(f"unknown MNIST split {split!r}; use one of {sorted(SPLIT_FILES)}")
    image_stem, label_stem = SPLIT_FILES[split]
    image_file, label_file = _find(root, image_stem), _find(root, label_stem)
    if image_file is None and label_file is None:
        return None
    if image_file is None or label_file is None:
        missing = image_stem if image_file is None else label_stem
        raise MegeError(f"{root}: {split} split has no {missing}[.gz] beside its other file; {REDOWNLOAD}")
    for file in (image_file, label_file):
        verify_md5(file)
    images, labels = read_images(image_file), read_labels(label_file)
    if len(images) != len(labels):
        raise MegeError(f"{image_file}: {len(images)} images but {len(labels)} labels in {label_file.name}; {REDOWNLOAD}")
    return MNISTSplit(images, labels, (image_file, label_file))


def candidate_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Where to look, in order: the argument, else ``$MEGE_DATA_DIR``, else the defaults."""
    if root is not None:
        return [Path(root).expanduser()]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR]).expanduser()]
    return [(REPO_ROOT / ".." / "shared" / "data" / "mnist").resolve(), CACHE_DIR.expanduser()]


def load_mnist(root: str | os.PathLike | None = None, splits=("train", "test")) -> dict[str, MNISTSplit]:
    """Load whichever of ``splits`` are present at the first root that has any of them.

    Returns {split: MNISTSplit} for the present splits only; raises MegeError listing every
    place it looked when none is present.
    """
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    looked = candidate_roots(root)
    for where in looked:
        found = {s: part for s in splits if (part := read_split(where, s)) is not None}
        if found:
            return found
    places = ", ".join(str(p) for p in looked)
    raise MegeError(
        f"no MNIST {'/'.join(splits)} IDX files found (looked in {places}); "
        f"run `mege data mnist --dest DIR` and set {ENV_VAR}=DIR, or pass root"
    )


def download_mnist(dest: str | os.PathLike, mirrors=MIRRORS) -> list[Path]:
    """Download the four published files into ``dest`` and verify their MD5.

    Files already present with the right MD5 are kept. Tries each mirror in turn.
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for name, expected in PUBLISHED_MD5.items():
        target = dest / name
        if target.is_file() and md5sum(target) == expected:
            done.append(target)
            continue
        errors = []
        for mirror in mirrors:
            with tempfile.NamedTemporaryFile(dir=dest, suffix=".part", delete=False) as tmp:
                part = Path(tmp.name)
            try:
                with urllib.request.urlopen(mirror + name, timeout=60) as response, open(part, "wb") as out:
                    shutil.copyfileobj(response, out)
                got = md5sum(part)
                if got != expected:
                    raise MegeError(f"MD5 {got} != published {expected}")
                part.replace(target)
                break
            except (OSError, MegeError) as err:
                errors.append(f"{mirror}: {err}")
            finally:
                part.unlink(missing_ok=True)
        else:
            raise MegeError(f"could not download {name} ({'; '.join(errors)}); check the network or copy the file into {dest}")
        done.append(target)
    return done
