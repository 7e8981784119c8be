r"""MEG's Stacked MNIST digit classifier, rebuilt: their architecture, their recipe, our data.

The MEG authors (Kumar et al. 2019, ``ritheshkumar95/energy_based_generative_models``) count
Stacked MNIST modes with the classifier of ``scripts/train/classifier_mnist.py``; this module
reimplements it (written from a reading of that file, no code copied) so mege can count the way
they count (``metric.protocol=meg``, :mod:`mege.metrics.protocols`).

**Architecture** (:class:`MEGDigitNet`, 21 840 parameters): conv5 1→10, max-pool 2, ReLU; conv5
10→20, channel dropout (``Dropout2d``, p = 0.5), max-pool 2, ReLU; fc 320→50, ReLU, dropout
(p = 0.5, active whenever the module is in train mode); fc 50→10; log-softmax. Inputs are in
[0, 1] there (``ToTensor`` for training, ``G(z)·0.5 + 0.5`` for counting, no standardisation);
here ``forward`` takes mege's [−1, 1] digits and applies the same ``x·0.5 + 0.5`` inside.

**Recipe** (:func:`train_meg_classifier`, their script's defaults): SGD, learning rate 0.01,
momentum 0.5, no weight decay, batch 64 reshuffled every epoch, NLL of the log-softmax, no
augmentation, ``torch.manual_seed(1)``; after each epoch the held-out accuracy is measured in
eval mode and the weights of the best epoch so far (strictly better) are kept. Their 10 epochs
of 60 000 images are 9 380 updates; on our 8 000 images the same number of updates is **75
epochs** (9 375), the default here — 10 epochs of 8 000 (1 250 updates) stop at 91.9 % held-out
accuracy, still climbing (``--epochs 10`` gives that classifier).
**Data** (what we have): their script trains on the 60 000-image train split and selects on the
test split; these machines hold only the test split, so — like mege's reference classifier —
it trains on 8 000 test images and holds out 2 000 (:func:`mege.metrics.classifier.split_data`,
``randperm`` seed 0: the same held-out images as the reference), selecting the epoch on those.
One CPU thread with deterministic algorithms: ``mege classifier train --arch meg`` reproduces
the committed ``mege/assets/mnist_classifier_meg.pt`` bit for bit on the same CPU type.

**Counting** (:func:`classify_stacks_meg`): batches of 1 000 stacks, every channel through the
classifier, label = argmax, in **train mode** by default (both dropouts on, as their counter
never calls ``eval()``), the dropout masks drawn from ``torch.manual_seed(seed)`` at the start of
the count (caller's RNG untouched).
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from mege.data.stacked_mnist import encode_labels
from mege.errors import MegeError, check
from mege.metrics.classifier import content_hash, data_hash, deterministic_cpu, split_data

#: The committed MEG-architecture classifier (``metric.protocol=meg`` counts with it).
MEG_PATH = Path(__file__).resolve().parent.parent / "assets" / "mnist_classifier_meg.pt"
#: Where ``mege classifier train --arch meg`` writes by default (never over the committed asset).
MEG_DEFAULT_OUT = Path("~/.cache/mege/mnist_classifier_meg.pt")
MEG_FORMAT = "mege-meg-classifier-1"
#: Stacks per classifier call in MEG's counter (``count_modes``: 26 batches of 1 000).
MEG_BATCH = 1000


class MEGDigitNet(nn.Module):
    """MEG's ``Net``: two 5×5 convolutions (the second with ``Dropout2d``), fc 320→50→10.

    ``forward(x)``: digits (n, 1, 28, 28) or (n, 28, 28) in [−1, 1] → log-probabilities (n, 10);
    maps x ↦ x·0.5 + 0.5 first (MEG's input range [0, 1]). Both dropouts act in train mode only.
    """

    arch = "meg"

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            x = rearrange(x, "n h w -> n 1 h w")
        x = x * 0.5 + 0.5                                                    # [−1, 1] → [0, 1]
        x = F.relu(F.max_pool2d(self.conv1(x), 2))                           # 28 → 24 → 12
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))          # 12 → 8 → 4
        x = F.relu(self.fc1(rearrange(x, "n c h w -> n (c h w)")))           # 20·4·4 = 320
        x = F.dropout(x, p=0.5, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Held-out accuracy in eval mode (as their ``test()``), the model's mode restored."""
    was = model.training
    model.eval()
    with torch.no_grad():
        correct = torch.cat([model(c).argmax(1) for c in x.split(1000)]).eq(y).float().mean().item()
    model.train(was)
    return correct


def train_meg_classifier(out: str | os.PathLike | None = MEG_DEFAULT_OUT, seed: int = 1, root=None,
                         epochs: int = 75, batch_size: int = 64, lr: float = 0.01, momentum: float = 0.5,
                         holdout: int = 2000, split_seed: int = 0, max_steps: int | None = None,
                         log=print) -> tuple[MEGDigitNet, dict]:
    """Train MEG's classifier with their script's recipe (module docstring) and save it with a card.

    One CPU thread, deterministic algorithms, ``torch.manual_seed(seed)`` inside a forked RNG
    (the caller's RNG is left as it was). ``max_steps`` stops early (tests). Returns the model
    (in eval mode, best epoch's weights) and its card; ``out=None`` does not save.
    """
    with torch.random.fork_rng(devices=[]), deterministic_cpu():
        torch.manual_seed(seed)
        tx, ty, hx, hy, where = split_data(root, split_seed, holdout, ("test",))
        model = MEGDigitNet()
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        start, step, best_acc, best_state, best_epoch, history = time.perf_counter(), 0, -1.0, None, 0, []
        for epoch in range(1, epochs + 1):
            model.train()
            for batch in torch.randperm(len(tx)).split(batch_size):
                if max_steps is not None and step >= max_steps:
                    break
                loss = F.nll_loss(model(tx[batch]), ty[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            acc = _accuracy(model, hx, hy)
            history.append(round(acc, 5))
            if acc > best_acc:  # their script saves only on a strict improvement
                best_acc, best_state, best_epoch = acc, copy.deepcopy(model.state_dict()), epoch
            if log is not None:
                log(f"epoch {epoch}/{epochs}  loss {loss.item():.4f}  held-out acc {acc:.4f}  {time.perf_counter() - start:.0f}s")
            if max_steps is not None and step >= max_steps:
                break
        model.load_state_dict(best_state)
        model.eval()
    card = {
        "format": MEG_FORMAT,
        "arch": "meg: conv5(1→10)-maxpool2-relu, conv5(10→20)-Dropout2d(0.5)-maxpool2-relu, fc(320→50)-relu-dropout(0.5), fc(50→10), log_softmax",
        "source": "architecture and recipe of scripts/train/classifier_mnist.py in ritheshkumar95/energy_based_generative_models (reimplemented)",
        "input": "[-1, 1] digits, mapped inside forward to x*0.5+0.5 in [0, 1] (their ToTensor / G(z)*.5+.5); no standardisation",
        "recipe": {"optimizer": "SGD", "lr": lr, "momentum": momentum, "weight_decay": 0.0, "batch_size": batch_size,
                   "epochs": epochs, "their_epochs": "10 epochs of 60 000 images at batch 64 = 9 380 updates; "
                   "75 epochs of our 8 000 = 9 375", "loss": "nll_loss(log_softmax)", "augmentation": None, "seed": seed,
                   "selection": "weights of the epoch with the best held-out accuracy (strict improvement)",
                   "threads": 1, "deterministic_algorithms": True, "device": "cpu"},
        "data": where,
        "differs_from_theirs": "they train on the 60 000-image train split and select on the 10 000-image test split; "
                               "we have only the test split (8 000 train / 2 000 held out, the reference classifier's split)",
        "heldout_accuracy": best_acc,
        "heldout_size": len(hx),
        "best_epoch": best_epoch,
        "heldout_accuracy_by_epoch": history,
        "steps": step,
        "train_data_sha256": data_hash(tx, ty),
        "torch": str(torch.__version__),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "content_hash": content_hash(model.state_dict()),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    if log is not None:
        log(f"held-out accuracy {best_acc:.4f} (epoch {best_epoch}) on {len(hx)} images; content hash {card['content_hash']}")
    if out is not None:
        path = Path(out).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"state_dict": model.state_dict(), "card": card}, tmp)
        tmp.replace(path)
    return model, card


def load_meg_classifier(path: str | os.PathLike | None = None) -> tuple[MEGDigitNet, dict]:
    """(model in eval mode, card) from ``path`` (None = the committed ``mnist_classifier_meg.pt``);
    the card's ``content_hash`` is recomputed from the loaded weights, ``path`` and
    ``is_committed`` (same weights as the committed asset) are added."""
    path = MEG_PATH if path is None else Path(path).expanduser()
    if not path.is_file():
        raise MegeError(f"no MEG-architecture classifier at {path}; train one with `mege classifier train --arch meg --out {path}`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        card = dict(blob["card"])
        check(card.get("format") == MEG_FORMAT, "wrong format")
        model = MEGDigitNet()
        model.load_state_dict(blob["state_dict"])
    except Exception as err:  # corrupt or foreign file
        raise MegeError(f"{path} is not a MEG-architecture classifier ({type(err).__name__}: {err}); "
                        f"retrain with `mege classifier train --arch meg --out {path}`") from err
    card["content_hash"] = content_hash(model.state_dict())
    card["path"] = str(path)
    committed = MEG_PATH.is_file() and (path == MEG_PATH or content_hash(
        torch.load(MEG_PATH, map_location="cpu", weights_only=True)["state_dict"]) == card["content_hash"])
    card["is_committed"] = bool(committed)
    return model.eval(), card


def classify_stacks_meg(classifier: nn.Module, x: Tensor, dropout: bool = True, seed: int | None = 0,
                        batch_size: int = MEG_BATCH) -> Tensor:
    """Labels (n,) of stacks (n, n_stack, 28, 28) the way MEG's counter labels them.

    Each batch of ``batch_size`` stacks is flattened to digits, classified, and the argmax digits
    are encoded (channel 0 most significant). ``dropout=True`` runs the classifier in train mode
    (both dropouts on, as in their ``count_modes``); ``False`` in eval mode. The dropout masks come
    from ``torch.manual_seed(seed)`` inside a forked RNG (None = the caller's RNG, advanced).
    The classifier's previous mode is restored.
    """
    check(x.dim() == 4 and tuple(x.shape[2:]) == (28, 28),
          f"Stacked MNIST samples must be (n, n_stack, 28, 28), got {tuple(x.shape)}; use a generator that makes 28×28 images")
    was = classifier.training
    cuda = [x.device.index or 0] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda, enabled=seed is not None), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            classifier.train(dropout)
            classifier.to(x.device)
            labels = []
            for chunk in x.split(batch_size):
                digits = rearrange(chunk, "b c h w -> (b c) 1 h w")
                pred = classifier(digits).argmax(dim=1)
                labels.append(encode_labels(rearrange(pred, "(b c) -> b c", c=chunk.shape[1])))
    finally:
        classifier.train(was)
    return torch.cat(labels).cpu()
