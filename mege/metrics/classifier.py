"""The MNIST digit classifier that labels Stacked MNIST channels.

A small CNN (about 2 M multiply-adds per digit, so 26 000 three-channel samples count in a
few seconds on 2 CPU cores). Inputs are digits in [−1, 1] — the scale of
:func:`mege.data.mnist.to_unit_range`, which both the training data and Stacked MNIST use —
and the standardisation ``(x − mean) / std`` is a buffer applied inside ``forward``, saved
with the weights, so training and counting cannot normalise differently.

**The reference classifier** (``mege/assets/mnist_classifier.pt``, committed with its card) is
what counting uses by default, so every user labels stacks with the same weights. It is trained
by :func:`train_classifier` with its defaults: the MNIST test split only (the split every machine
has; 8 000 images for training, 2 000 held out by ``randperm`` seed 0), seed 0, one CPU thread
and deterministic algorithms, so ``mege classifier train`` reproduces it bit for bit on CPU.
Its identity is :func:`content_hash`, a sha256 over the weight tensors in sorted-name order
(name, dtype, shape, bytes) — unlike a file hash it does not change with the card's contents,
the file's path or the time it was written.

With ``splits=("train", "test")`` and both present a classifier trains on "train" and holds
out "test"; with one split, a seeded slice of it is held out (the card says which). The file
holds the weights and a card (held-out accuracy, seed, normalisation, architecture, data,
content hash); :func:`load_classifier` recomputes the content hash from the loaded weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from mege.data.mnist import load_mnist, to_unit_range
from mege.errors import MegeError

#: The committed reference classifier; counting uses it unless told otherwise.
REFERENCE_PATH = Path(__file__).resolve().parent.parent / "assets" / "mnist_classifier.pt"
#: Where `mege classifier train` writes by default (never over the committed reference).
DEFAULT_PATH = Path("~/.cache/mege/mnist_classifier.pt")
FORMAT_VERSION = 2
#: The reference classifier's identity: :func:`content_hash` of its weights, written once here and checked
#: against the committed file by a test. ``is_reference`` is decided by this hash, never by path.
REFERENCE_CONTENT_HASH = "445e232cbc1f6277f4c02a49cefcffb00bb5fdbdb444fc4cb46f1718956d6482"
#: What ``mege classifier train`` with its defaults gives, per platform (:mod:`mege.reproducibility`):
#: the reference on the AVX2 machine that made it; another classifier on an AMD AVX-512 machine
#: (measured, same held-out accuracy band). Bit-identity of retraining is promised only on these.
RETRAINED_CONTENT_HASHES = [
    ({"torch": "2.13.0+cpu", "cpu_capability": "AVX2", "cpu_vendor": None}, REFERENCE_CONTENT_HASH),
    ({"torch": "2.13.0+cpu", "cpu_capability": "AVX512", "cpu_vendor": "AuthenticAMD"},
     "e6bc1a37e6a460a06deb02de87f10ecd421a257da2a68d9ae66e48583a0670a7"),
]


class DigitClassifier(nn.Module):
    """Three blocks conv → max-pool → batch-norm → ReLU (conv5 1→c, conv3 c→2c, conv3 2c→4c;
    28→14→7→3), then fc(→hidden)–ReLU–fc(→10) with dropout. Pooling before the
    normalisation keeps the element-wise work at quarter resolution (counting speed).

    ``forward(x)`` takes (n, 1, 28, 28) or (n, 28, 28) digits in [−1, 1] and returns logits
    (n, 10); it standardises with the stored ``mean``/``std`` buffers first.
    """

    def __init__(self, width: int = 16, hidden: int = 128, dropout: float = 0.3, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.arch = {"width": width, "hidden": hidden, "dropout": dropout}
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))
        c = width

        def block(c_in, c_out, k):
            return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(*block(1, c, 5), *block(c, 2 * c, 3), *block(2 * c, 4 * c, 3))  # 28→14→7→3
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * c * 3 * 3, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 10)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            x = rearrange(x, "n h w -> n 1 h w")
        return self.head(self.features((x - self.mean) / self.std))

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 4096) -> Tensor:
        """Digits (n, ...) -> predicted classes (n,), in eval mode, batched."""
        return torch.cat([self(chunk).argmax(dim=1) for chunk in x.split(batch_size)])


def random_affine(x: Tensor, max_shift: float = 2.0, max_rotate_deg: float = 10.0, max_scale: float = 0.1) -> Tensor:
    """Augment digits (n, 1, 28, 28) in [−1, 1] with a random shift (pixels), rotation and
    scale per image, via one ``affine_grid``/``grid_sample`` call; background stays −1."""
    n, _, h, w = x.shape
    angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(max_rotate_deg)
    scale = 1 + (torch.rand(n, device=x.device) * 2 - 1) * max_scale
    shift = (torch.rand(n, 2, device=x.device) * 2 - 1) * max_shift * 2 / torch.tensor([w, h], device=x.device)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def split_data(root=None, seed: int = 0, holdout: int = 2000, splits=("test",)):
    """(train_x, train_y, held_x, held_y, description). Digits as float (n, 1, 28, 28) in [−1, 1].

    ``splits``: which MNIST splits to read; the reference classifier uses the test split only."""
    parts = load_mnist(root, splits)
    if "train" in parts and "test" in parts:
        train, held = parts["train"], parts["test"]
        tx, ty, hx, hy = train.images, train.labels, held.images, held.labels
        where = f"trained on the train split ({len(tx)}), held out the test split ({len(hx)})"
    else:
        name, part = next(iter(parts.items()))  # "test" unless asked otherwise
        if not 0 < holdout < len(part.images):
            raise MegeError(f"holdout={holdout} with {len(part.images)} images in the {name} split; use 0 < holdout < {len(part.images)}")
        order = torch.randperm(len(part.images), generator=torch.Generator().manual_seed(seed))
        held_i, train_i = order[:holdout], order[holdout:]
        tx, ty, hx, hy = part.images[train_i], part.labels[train_i], part.images[held_i], part.labels[held_i]
        where = (
            f"MNIST {name} split only: trained on {len(tx)} of its {len(part.images)} images, held out {len(hx)} "
            f"(torch.randperm with seed {seed}, first {holdout})"
        )
    unit = lambda images: rearrange(to_unit_range(images), "n h w -> n 1 h w")  # noqa: E731
    return unit(tx), ty, unit(hx), hy, where


def content_hash(state_dict: dict[str, Tensor]) -> str:
    """sha256 over the tensors in sorted-name order: name, dtype, shape, then the raw bytes.

    The identity of a classifier's weights, independent of the file (card, path, write time)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def data_hash(x: Tensor, y: Tensor) -> str:
    """sha256 of the training images and labels (as read), so the card names its data exactly."""
    digest = hashlib.sha256()
    for t in (x, y):
        digest.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def deterministic_cpu(threads: int = 1):
    """One intra-op thread and deterministic algorithms for the block; both restored after.

    With a fixed seed this makes CPU training bit-reproducible on one machine type (different
    thread counts split float reductions differently; that changed the weights before)."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    was_training = model.training
    model.eval()
    correct = (model.predict(x) == y).float().mean().item()
    model.train(was_training)
    return correct


def train_classifier(
    out: str | os.PathLike | None = DEFAULT_PATH,
    seed: int = 0,
    root=None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 3e-3,
    holdout: int = 2000,
    width: int = 16,
    max_steps: int | None = None,
    splits=("test",),
    log=print,
) -> tuple[DigitClassifier, dict]:
    """Train the digit classifier and save it (with its card) to ``out`` (None = don't save).

    AdamW with a one-cycle learning-rate schedule, random-affine augmentation, on CPU with one
    thread and deterministic algorithms (:func:`deterministic_cpu`) from ``seed``; the caller's
    RNG state is left as it was. The defaults are the reference classifier's recipe.
    ``max_steps`` stops early (for tests). Returns the model in eval mode and its card.
    """
    with torch.random.fork_rng(devices=[]), deterministic_cpu():
        torch.manual_seed(seed)
        return _train(out, seed, root, epochs, batch_size, lr, holdout, width, max_steps, tuple(splits), log)


def _train(out, seed, root, epochs, batch_size, lr, holdout, width, max_steps, splits, log):
    tx, ty, hx, hy, where = split_data(root, seed, holdout, splits)
    train_data = data_hash(tx, ty)
    mean, std = tx.mean().item(), tx.std().item()
    model = DigitClassifier(width=width, mean=mean, std=std).to(memory_format=torch.channels_last)  # faster convs on CPU
    steps_per_epoch = math.ceil(len(tx) / batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    start, step = time.perf_counter(), 0
    model.train()
    for epoch in range(epochs):
        for batch in torch.randperm(len(tx)).split(batch_size):
            if step == total:
                break
            loss = F.cross_entropy(model(random_affine(tx[batch])), ty[batch], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        if step == total:
            break
        if log is not None and (epoch + 1) % 5 == 0:
            log(f"epoch {epoch + 1}/{epochs}  loss {loss.item():.4f}  held-out acc {accuracy(model, hx, hy):.4f}  {time.perf_counter() - start:.0f}s")
    model.eval()
    card = {
        "heldout_accuracy": accuracy(model, hx, hy),
        "heldout_size": len(hx),
        "data": where,
        "seed": seed,
        "steps": step,
        "epochs": epochs,
        "input_range": "[-1, 1] = pixel / 127.5 - 1 (mege.data.mnist.to_unit_range)",
        "normalisation": {"mean": mean, "std": std, "applied": "inside forward: (x - mean) / std"},
        "arch": dict(model.arch),
        "recipe": {"batch_size": batch_size, "lr": lr, "holdout": holdout, "splits": list(splits),
                   "threads": 1, "deterministic_algorithms": True, "device": "cpu"},
        "train_data_sha256": train_data,
        "torch": str(torch.__version__),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "content_hash": content_hash(model.state_dict()),
        "train_seconds": time.perf_counter() - start,
        "format_version": FORMAT_VERSION,
    }
    if log is not None:
        log(f"held-out accuracy {card['heldout_accuracy']:.4f} on {len(hx)} images ({where}); content hash {card['content_hash']}")
    if out is not None:
        save_classifier(model, card, out)
    return model, card


def save_classifier(model: DigitClassifier, card: dict, path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"state_dict": model.state_dict(), "card": card}, tmp)
    tmp.replace(path)
    return path


def load_classifier(path: str | os.PathLike | None = None) -> tuple[DigitClassifier, dict]:
    """Load a classifier (None = the committed reference): (model in eval mode, card with
    ``content_hash`` recomputed from the loaded weights, ``path`` and ``is_reference`` added)."""
    path = REFERENCE_PATH if path is None else Path(path).expanduser()
    if not path.is_file():
        fix = ("reinstall mege (the reference classifier ships in mege/assets/)" if path == REFERENCE_PATH
               else f"train one with `mege classifier train --out {path}`, or drop classifier_path to use the reference")
        raise MegeError(f"no digit classifier at {path}; {fix}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        card = dict(blob["card"])
        model = DigitClassifier(**card["arch"])
        model.load_state_dict(blob["state_dict"])
    except Exception as err:  # corrupt or foreign file
        raise MegeError(f"{path} is not a mege digit classifier ({type(err).__name__}: {err}); retrain with `mege classifier train --out {path}`") from err
    card["content_hash"] = content_hash(model.state_dict())
    card["path"] = str(path)
    card["is_reference"] = card["content_hash"] == REFERENCE_CONTENT_HASH
    return model.eval(), card


def retrained_hash_here() -> str | None:
    """The content hash retraining with the defaults gives on this platform, where that is recorded (else None)."""
    from mege.reproducibility import promised
    return next((h for p, h in RETRAINED_CONTENT_HASHES if promised([p])), None)
