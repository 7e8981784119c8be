r"""Stacked MNIST mode counting (the MEG / PacGAN / VEEGAN protocol, stated in full).

Each generated sample (n_stack, 28, 28) in [−1, 1] is classified channel by channel with the
cached digit classifier (:mod:`mege.metrics.classifier`), always in eval mode and without
gradients; the digits give the label ``Σ_j digit_j·10^(n_stack−1−j)`` (channel 0 most
significant, as in :func:`mege.data.stacked_mnist.encode_labels`). With ``p̂`` the label
histogram of N samples over K = 10^n_stack cells:

* ``modes`` = number of non-empty cells;
* ``reverse_kl`` = KL(p̂ ‖ uniform) = Σ_k p̂_k ln(K p̂_k)   (nats, 0 ln 0 = 0);
* ``reverse_kl_data`` = KL(p̂ ‖ p_data) = Σ_k p̂_k ln(p̂_k / p_data,k), p_data the data's label
  distribution (for :class:`~mege.data.stacked_mnist.StackedMNIST`, the product of the pool's
  digit frequencies); +inf when p̂ puts mass where p_data has none.

The ``mege`` protocol also gives the toy protocol's quality endpoint and assigned KL
(:mod:`mege.metrics.toy`), so the study's selection rule, ``mege report --confirm`` (coverage =
``modes``, quality = ``hq_fraction``) and the G-test column read Stacked MNIST runs as toy runs:

* with ``conf_i = min_j max_c softmax(f(x_ij))_c`` (the smallest, over the stack's channels j, of
  the classifier's top-class probability), sample i is high quality (HQ) when
  ``conf_i ≥ HQ_CONFIDENCE`` (0.9): every digit is read with confidence;
  ``hq_fraction`` = #HQ / N;
* ``assigned_kl`` = KL(p̂ ‖ p_data) over ALL N samples, each assigned to its classified label (the
  toy's "every sample to its nearest mode"): the same number as ``reverse_kl_data`` (KL to uniform,
  ``reverse_kl``, when the data gives no label distribution; the card says which);
* ``assigned_kl_floor`` = E KL(q ‖ p_data) of a perfect sampler's histogram q of N draws from
  p_data (:func:`mege.metrics.toy.perfect_sampling_floor`).

Exact samples from the uniform distribution still give KL > 0: :func:`mege.metrics.toy.perfect_sampling_floor`
(0.0194 for K = 1 000, N = 26 000).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from scipy.special import rel_entr
from torch import Tensor, nn

from mege.data.mnist import N_CLASSES
from mege.data.stacked_mnist import encode_labels
from mege.errors import MegeError, check
from mege.metrics.classifier import load_classifier
from mege.metrics.toy import perfect_sampling_floor
from mege.utils import eval_mode

SAMPLES_PER_MODE = 26  # 26 000 samples for 1 000 modes, 260 000 for 10 000
HQ_CONFIDENCE = 0.9
"""A stack is high quality when every channel's top-class softmax probability is ≥ this."""


def count_modes(labels: Tensor, n_modes: int, data_distribution: Tensor | np.ndarray | None = None) -> dict:
    """Modes and KLs (see module docstring) of integer ``labels`` (N,) in [0, n_modes).

    ``data_distribution`` (n_modes,): probabilities or counts of the data labels; when given,
    ``reverse_kl_data`` is added.
    """
    labels = torch.as_tensor(labels).detach().long().cpu()
    check(labels.numel() > 0, "count_modes got no labels; generate at least one sample")
    check(int(labels.min()) >= 0 and int(labels.max()) < n_modes,
          f"labels must lie in [0, {n_modes}); got [{int(labels.min())}, {int(labels.max())}]")
    counts = torch.bincount(labels, minlength=n_modes).double().numpy()
    p = counts / counts.sum()
    out = {
        "modes": int((counts > 0).sum()),
        "n_modes": int(n_modes),
        "reverse_kl": float(rel_entr(p, np.full(n_modes, 1.0 / n_modes)).sum()),
        "n_samples": int(labels.numel()),
    }
    if data_distribution is not None:
        q = torch.as_tensor(data_distribution, dtype=torch.float64).cpu().numpy()
        check(q.shape == (n_modes,) and bool(np.all(q >= 0)) and q.sum() > 0,
              f"data_distribution must be {n_modes} non-negative numbers with a positive sum")
        out["reverse_kl_data"] = float(rel_entr(p, q / q.sum()).sum())
    return out


def channel_logits(classifier: nn.Module, chunk: Tensor) -> Tensor:
    """(b, n_stack, 10): the classifier's outputs for each channel of (b, n_stack, 28, 28) stacks, one digit each."""
    digits = rearrange(chunk, "b c h w -> (b c) 1 h w").contiguous(memory_format=torch.channels_last)
    return rearrange(classifier(digits), "(b c) k -> b c k", c=chunk.shape[1])


def _classify_chunk(classifier: nn.Module, chunk: Tensor, one_thread: bool = False,
                    confidence: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    if one_thread:  # a worker thread: one intra-op thread each (the setting is per thread)
        torch.set_num_threads(1)
    with torch.inference_mode():  # grad mode is per thread too
        logits = channel_logits(classifier, chunk)
        labels = encode_labels(logits.argmax(dim=2))
        if not confidence:
            return labels
        return labels, logits.float().softmax(dim=2).amax(dim=2).amin(dim=1)


def classify_stacks(classifier: nn.Module, x: Tensor, batch_size: int = 128, workers: int | None = None,
                    confidence: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Labels (n,) of stacked samples (n, n_stack, 28, 28), each channel classified on its own;
    with ``confidence=True``, ``(labels, confidence)``: confidence (n,) the smallest over the
    stack's channels of the top-class softmax probability (a stack is HQ when it is ≥ HQ_CONFIDENCE;
    the classifier's outputs are logits or log-probabilities, whose softmax is the class probabilities).

    Runs the classifier in eval mode (its previous mode is restored on return) under
    ``torch.inference_mode``, on the device of ``x``. On CPU the batches are spread over
    ``workers`` threads (default ``torch.get_num_threads()``) each running single-threaded ops:
    no per-op barrier between threads, which on a shared machine is several times faster than
    intra-op threading (the process's thread setting is restored afterwards).
    """
    check(x.dim() == 4 and tuple(x.shape[2:]) == (28, 28),
          f"Stacked MNIST samples must be (n, n_stack, 28, 28), got {tuple(x.shape)}; use a generator that makes 28×28 images")
    workers = torch.get_num_threads() if workers is None else int(workers)
    chunks = x.split(batch_size)
    with eval_mode(classifier):
        classifier.to(x.device)
        if x.device.type != "cpu" or workers <= 1 or len(chunks) == 1:
            parts = [_classify_chunk(classifier, chunk, confidence=confidence) for chunk in chunks]
        else:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(workers) as pool:
                    parts = list(pool.map(functools.partial(_classify_chunk, classifier, one_thread=True,
                                                            confidence=confidence), chunks))
            finally:
                torch.set_num_threads(threads)
    if not confidence:
        return torch.cat(parts)
    labels, top = zip(*parts)
    return torch.cat(labels), torch.cat(top)


def quality_endpoints(row: dict, confidence: Tensor, data_distribution: Tensor | np.ndarray | None) -> dict:
    """``hq_fraction``, ``assigned_kl`` and ``assigned_kl_floor`` (module docstring) of a
    :func:`count_modes` row and its samples' ``confidence`` (n,); p_data uniform when
    ``data_distribution`` is None."""
    confidence = torch.as_tensor(confidence).detach().cpu()
    n = int(row["n_samples"])
    check(confidence.shape == (n,), f"confidence must be one value per sample ({n}), got {tuple(confidence.shape)}")
    weights = np.ones(row["n_modes"]) if data_distribution is None else data_distribution
    return {
        "hq_fraction": float((confidence >= HQ_CONFIDENCE).double().mean()),
        "assigned_kl": row["reverse_kl"] if data_distribution is None else row["reverse_kl_data"],
        "assigned_kl_floor": float(perfect_sampling_floor(weights, n)),
    }


class StackedMNISTMetrics:
    r"""``metric(generate, data)``: modes, KLs and HQ fraction of ``n_samples`` generated Stacked MNIST samples.

    Keys (module docstring): ``modes``, ``n_modes``, ``n_samples``, ``reverse_kl`` (to uniform),
    ``reverse_kl_data`` (to p_data) and, on the ``mege`` protocol, the toy's endpoints:

    * ``hq_fraction`` = (1/N) Σ_i 1[min_j max_c softmax(f(x_ij))_c ≥ 0.9] (``HQ_CONFIDENCE``): the
      share of stacks whose every channel is classified with top-class probability ≥ 0.9;
    * ``assigned_kl`` = KL(p̂ ‖ p_data) = Σ_k p̂_k ln(p̂_k / p_data,k), p̂ the label histogram of
      all N samples (no HQ filter), each at its classified label: the same number as
      ``reverse_kl_data`` under the toy's name (p_data uniform, the same as ``reverse_kl``, when
      the data gives no label distribution; the card says which);
    * ``assigned_kl_floor`` = E KL(q ‖ p_data), q the histogram of N exact draws from p_data.

    classifier_path: None = the committed reference classifier (the same weights for every user;
        :mod:`mege.metrics.classifier`); or a user's own file, whose content hash is printed and
        carried in the card. Loaded on the first call. Or pass ``classifier`` (a module) and
        optionally ``card``.
    n_samples: None = 26 per mode (26 000 for 3 stacks, 260 000 for 4).
    batch_size: samples classified per batch (each gives n_stack digits); small batches keep the
        activations in cache (on CPU, 64–256 stacks count about twice as fast per digit as 2 000).
    seed: torch seed set (inside a forked RNG, so training RNG is untouched) before calling
        ``generate``; None leaves the RNG alone.

    reference: also count ``n_samples`` *real* stacks (``data.sample``, same seed) through the same
        pipeline, once per metric object, and add them as ``result["reference"]`` (modes and KLs):
        the reference row every Stacked MNIST table carries (``mege report`` shows it as
        ``reference/*`` columns), with ``hq_fraction`` and ``assigned_kl`` on the ``mege``
        protocol (real data's quality beside the generator's). Costs one extra count (a few
        CPU-seconds) per run.

    ``generate`` is called once with ``n_samples``: a generate that restarts its latents on each
    call (as the trainer's does) would repeat samples if called per batch.
    The classifier is switched to eval mode for the count and its previous mode is restored.

    protocol: "mege" (default, as above) or "meg": MEG's counter — the committed MEG-architecture
        classifier (``classifier_path`` may name another file of that kind) in train mode (dropout
        on, masks seeded by ``seed``), KL to uniform only, its own card
        (:mod:`mege.metrics.protocols`); the reference row is counted the same way.
    """

    def __init__(self, classifier_path: str | Path | None = None, n_samples: int | None = None,
                 batch_size: int = 128, seed: int | None = 0, classifier: nn.Module | None = None,
                 card: dict | None = None, reference: bool = False, protocol: str = "mege"):
        from mege.metrics.protocols import check_protocol
        check(n_samples is None or int(n_samples) > 0, f"n_samples must be a positive int or null, got {n_samples}")
        check(int(batch_size) > 0, f"batch_size must be positive, got {batch_size}")
        self.classifier_path = None if classifier_path is None else Path(classifier_path).expanduser()
        self.n_samples = None if n_samples is None else int(n_samples)
        self.batch_size = int(batch_size)
        self.seed = seed
        self.classifier = classifier
        self.card = dict(card or {})
        self.reference = bool(reference)
        self._reference_row: dict | None = None
        self.protocol = check_protocol(protocol, "stacked_mnist")

    def load(self) -> tuple[nn.Module, dict]:
        if self.classifier is None and self.protocol == "meg":
            from mege.metrics.meg_classifier import load_meg_classifier
            self.classifier, self.card = load_meg_classifier(self.classifier_path)
        if self.classifier is None:
            model, self.card = load_classifier(self.classifier_path)
            self.classifier = model.to(memory_format=torch.channels_last)
            if not self.card["is_reference"]:
                print(f"counting with {self.card['path']}, content hash {self.card['content_hash']} (not the reference classifier)")
        return self.classifier, self.card

    def __call__(self, generate: Callable[[int], Tensor], data) -> dict:
        classifier, card = self.load()
        n_stack = int(getattr(data, "n_stack", data.shape[0]))
        n_modes = N_CLASSES**n_stack
        n = self.n_samples if self.n_samples is not None else SAMPLES_PER_MODE * n_modes
        cuda = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=cuda):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            with torch.no_grad():
                x = generate(n).detach()
        if self.reference and self._reference_row is None:
            self._reference_row = self.reference_row(data, n)
        if x.shape[0] != n or x.shape[1] != n_stack:
            raise MegeError(f"generate({n}) returned {tuple(x.shape)}; the generator must make (n, {n_stack}, 28, 28) samples")
        if self.protocol == "meg":
            return self._count_meg(x, n_stack)
        start = time.perf_counter()
        labels, confidence = classify_stacks(classifier, x, self.batch_size, confidence=True)
        seconds = time.perf_counter() - start
        data_distribution = data.label_distribution() if hasattr(data, "label_distribution") else None
        result = count_modes(labels, n_modes, data_distribution)
        result.update(quality_endpoints(result, confidence, data_distribution))
        p_data = ("the data's label distribution (StackedMNIST: product of pool digit frequencies)"
                  if data_distribution is not None else "uniform (the data gives no label distribution)")
        result["protocol"] = {
            "name": "Stacked MNIST mode count",
            "n_samples": n,
            "n_stack": n_stack,
            "n_modes": n_modes,
            "seed": self.seed,
            "label": "sum_j digit_j * 10^(n_stack-1-j), channel 0 most significant",
            "modes": "non-empty cells of the label histogram",
            "kl": "reverse_kl = KL(p_gen || uniform); reverse_kl_data = KL(p_gen || p_data), p_data = product of pool digit frequencies",
            "hq_confidence": HQ_CONFIDENCE,
            "hq_fraction": "fraction of the n_samples stacks whose every channel has top-class softmax probability >= hq_confidence",
            "assigned_kl": "KL(p_gen || p_data) over all samples, each assigned to its classified label "
                           "(the toy's 'every sample to its nearest mode'; the same number as reverse_kl_data)",
            "assigned_kl_p_data": p_data,
            "log_base": "e",
            "perfect_sampling_floor": perfect_sampling_floor(np.ones(n_modes), n),
            "floors": "perfect_sampling_floor: uniform at n_samples; assigned_kl_floor: p_data at n_samples (perfect sampler)",
            "classifier_mode": "eval (forced during the count, previous mode restored)",
            "classifier_heldout_accuracy": card.get("heldout_accuracy"),
            "classifier_heldout": card.get("data"),
            "classifier_content_hash": card.get("content_hash"),
            "classifier_is_reference": card.get("is_reference"),
            "classifier_path": card.get("path"),
            "classify_seconds": round(seconds, 3),
        }
        if self._reference_row is not None:
            result["reference"] = dict(self._reference_row)
        return result

    def _count_meg(self, x: Tensor, n_stack: int) -> dict:
        """The ``meg`` protocol's count of samples ``x`` (dropout on, masks from ``self.seed``)."""
        from mege.metrics.meg_classifier import classify_stacks_meg
        from mege.metrics.protocols import meg_stacked_card
        classifier, card = self.load()
        start = time.perf_counter()
        labels = classify_stacks_meg(classifier, x, dropout=True, seed=self.seed)
        result = count_modes(labels, N_CLASSES**n_stack)
        result["protocol"] = meg_stacked_card(len(x), n_stack, True, self.seed, card)
        result["protocol"]["classify_seconds"] = round(time.perf_counter() - start, 3)
        if self._reference_row is not None:
            result["reference"] = dict(self._reference_row)
        return result

    def reference_row(self, data, n: int) -> dict:
        """Modes and KLs (and, on the ``mege`` protocol, ``hq_fraction`` and ``assigned_kl``) of ``n``
        real stacks (``data.sample``, seeded like the generated ones; the training RNG is untouched)."""
        classifier, _ = self.load()
        n_stack = int(getattr(data, "n_stack", data.shape[0]))
        with torch.random.fork_rng(devices=[]):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            x = data.sample(n)
        if self.protocol == "meg":
            from mege.metrics.meg_classifier import classify_stacks_meg
            row = count_modes(classify_stacks_meg(classifier, x, dropout=True, seed=self.seed), N_CLASSES**n_stack)
            return {k: row[k] for k in ("modes", "reverse_kl")}
        labels, confidence = classify_stacks(classifier, x, self.batch_size, confidence=True)
        dist = data.label_distribution() if hasattr(data, "label_distribution") else None
        row = count_modes(labels, N_CLASSES**n_stack, dist)
        row.update(quality_endpoints(row, confidence, dist))
        return {k: row[k] for k in ("modes", "reverse_kl", "reverse_kl_data", "hq_fraction", "assigned_kl") if k in row}
