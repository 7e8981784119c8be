r"""Counting protocols: the same samples counted the way each paper's code counts them.

``metric.protocol`` picks one (also ``mege eval <run> metric.protocol=…``); ``mege`` is the
default and its output is unchanged. Each protocol's result carries a card that states every
choice that changes the number.

* ``mege`` — :mod:`mege.metrics.toy` and :mod:`mege.metrics.stacked_mnist` (docs/design.md §3).
* ``meg`` (Stacked MNIST; Kumar et al. 2019, ``scripts/evals.py`` ``ModeCollapseEval.count_modes``):
  MEG's classifier architecture trained with their recipe on the data we have
  (:mod:`mege.metrics.meg_classifier`), run in **train mode** (dropout on: their counter never
  calls ``eval()``), 26·10^n_stack samples in batches of 1 000, label = argmax per channel,
  modes = non-empty cells, ``reverse_kl = KL(p̂ ‖ uniform) = Σ_k p̂_k ln(K p̂_k)`` (nats). Their
  counter reports no KL to the data's label histogram, so this protocol does not either.
* ``pacgan`` (2-D mixtures; Lin et al. 2018, ``pacgan/extensions.py`` ``MetricLogger``):
  each sample goes to the centre of smallest standardised distance
  ``d_j = sqrt(Σ_d (x_d − μ_jd)² / σ_jd²)`` (diagonal variances); it is high quality when
  ``d < 3`` (strict); ``c_k`` = HQ samples of centre k; ``modes`` = #{k: c_k > 0};
  ``hq_fraction`` = Σ c / n; the "JSD" column is

      JSD(q ‖ u) = ½ KL(q ‖ m) + ½ KL(u ‖ m),  q = c / Σ c,  u_k = 1/K,  m = (q + u)/2   (nats),

  always against the **uniform** vector (not the mixture weights), over the HQ histogram; their
  logger also writes ``entropy_of_coverage`` = −Σ q_k ln q_k. Their paper's tables head this
  metric's column "reverse KL"; see experiments/protocol_drift/ for how the two differ.
  Their sample count is 2 500 (``num_log_figure_sample``), as mege's.

Every divergence is printed beside its perfect-sampler floor at the count that entered its
histogram: :func:`mege.metrics.toy.perfect_sampling_floor` for a KL, :func:`jsd_floor` for the JSD.
"""

from __future__ import annotations


import numpy as np
import torch
from einops import rearrange
from scipy.special import rel_entr
from torch import Tensor

from mege.errors import MegeError, check
from mege.metrics.toy import expected_divergence, perfect_sampling_floor

#: protocol → what it counts.
PROTOCOLS = {"mege": ("toy", "stacked_mnist"), "meg": ("stacked_mnist",), "pacgan": ("toy",)}


def check_protocol(protocol: str, kind: str) -> str:
    """``protocol`` if it is known and counts ``kind`` ("toy" or "stacked_mnist"); else a one-line fix."""
    if protocol not in PROTOCOLS:
        raise MegeError(f"unknown metric.protocol={protocol!r}; known: {', '.join(PROTOCOLS)}")
    if kind not in PROTOCOLS[protocol]:
        fits = [p for p, kinds in PROTOCOLS.items() if kind in kinds]
        what = "2-D mixtures" if kind == "toy" else "Stacked MNIST"
        raise MegeError(f"metric.protocol={protocol} does not count {what}; use metric.protocol={' or '.join(fits)}")
    return protocol


def js_divergence(q, w) -> float:
    """``JS(q, w) = ½ KL(q ‖ m) + ½ KL(w ‖ m)``, ``m = (q + w)/2``, natural log (≤ ln 2)."""
    q, w = np.asarray(q, dtype=np.float64), np.asarray(w, dtype=np.float64)
    m = 0.5 * (q + w)
    return float(0.5 * rel_entr(q, m).sum() + 0.5 * rel_entr(w, m).sum())


def jsd_floor(weights, n_samples: int) -> float:
    r"""Expected ``JS(q, w)`` (nats) when q is the histogram of ``n_samples`` exact draws from w.

    JS is a sum over cells of ``g(q_k, w_k) = ½ q_k ln(2q_k/(q_k+w_k)) + ½ w_k ln(2w_k/(q_k+w_k))``,
    so with ``C_k ~ Binomial(n, w_k)`` its expectation is exactly ``Σ_k Σ_c P(C_k = c) g(c/n, w_k)``
    (c within ±12 sd of n·w_k, as :func:`~mege.metrics.toy.perfect_sampling_floor`); ≈ (K − 1)/(8n).
    """
    return expected_divergence(weights, n_samples, "js")


def jsd_max(n_modes: int) -> float:
    """The largest ``JS(q, u)`` against the uniform u over K cells (q a point mass): a published
    number above it cannot be this JSD."""
    u = np.full(n_modes, 1.0 / n_modes)
    q = np.zeros(n_modes)
    q[0] = 1.0
    return js_divergence(q, u)


def pacgan_toy_metrics(samples: Tensor, centres: Tensor, std: float, threshold: float = 3.0) -> dict:
    """PacGAN's ``MetricLogger`` columns (module docstring) for samples (n, d) in data units.

    ``std``: the mixture's per-coordinate standard deviation (their diagonal variance is std²).
    Returns modes, hq_fraction, jsd (nats, against uniform; nan without HQ samples) beside
    ``jsd_floor`` at the HQ count, entropy_of_coverage, n_hq, n_samples and the card.
    """
    centres = torch.as_tensor(centres).detach().to("cpu", torch.float64)
    x = rearrange(torch.as_tensor(samples).detach().to("cpu", torch.float64), "n ... -> n (...)")
    k = centres.shape[0]
    check(x.shape[1] == centres.shape[1], f"samples have {x.shape[1]} coordinates but the centres have "
                                          f"{centres.shape[1]}; generate data of the mixture's dimension")
    n = x.shape[0]
    coverage = np.zeros(k, dtype=np.int64)
    if n > 0:
        distance = torch.cdist(x / std, centres / std, compute_mode="donot_use_mm_for_euclid_dist")
        nearest_distance, nearest = distance.min(dim=1)
        hq = nearest_distance < threshold  # strict, as theirs
        coverage = torch.bincount(nearest[hq], minlength=k).numpy()
    n_hq = int(coverage.sum())
    uniform = np.full(k, 1.0 / k)
    if n_hq > 0:
        q = coverage / n_hq
        jsd, entropy, floor = js_divergence(q, uniform), float(-rel_entr(q, 1.0).sum()), jsd_floor(uniform, n_hq)
    else:
        jsd = entropy = floor = float("nan")
    return {
        "modes": int((coverage > 0).sum()),
        "n_modes": int(k),
        "hq_fraction": n_hq / n if n else float("nan"),
        "jsd": jsd,
        "jsd_floor": floor,
        "entropy_of_coverage": entropy,
        "n_hq": n_hq,
        "n_samples": int(n),
        "protocol": pacgan_toy_card(n, k, std, threshold),
    }


def pacgan_toy_card(n: int, k: int, std: float, threshold: float) -> dict:
    """The card of the ``pacgan`` toy protocol: every choice of their MetricLogger that changes a number."""
    return {
        "name": "PacGAN synthetic-data MetricLogger (fjxmlzn/PacGAN, pacgan/extensions.py)",
        "protocol": "pacgan",
        "n_samples": int(n),
        "n_modes": int(k),
        "std": float(std),
        "assignment": "nearest centre by standardised distance sqrt(sum_d (x_d - mu_d)^2 / var_d), diagonal variances",
        "hq_threshold": f"standardised distance < {threshold:g} (strict)",
        "modes": "centres with at least one HQ sample",
        "jsd": "JSD(q || uniform) over the HQ coverage histogram q, = 0.5 KL(q||m) + 0.5 KL(u||m), m = (q+u)/2; "
               "against the uniform vector 1/K, not the mixture weights; headed 'reverse KL' in the paper's tables",
        "log_base": "e",
        "jsd_floor": "perfect sampler at the HQ count (mege.metrics.protocols.jsd_floor)",
        "entropy_of_coverage": "-sum_k q_k ln q_k (scipy.stats.entropy)",
        "not_computed": "their loglikelihood and variance-of-coverage columns",
    }


def meg_stacked_card(n: int, n_stack: int, dropout: bool, seed, classifier_card: dict) -> dict:
    """The card of the ``meg`` Stacked MNIST protocol (module docstring)."""
    n_modes = 10**n_stack
    return {
        "name": "Stacked MNIST mode count, MEG protocol (ritheshkumar95/energy_based_generative_models, scripts/evals.py)",
        "protocol": "meg",
        "n_samples": int(n),
        "n_stack": int(n_stack),
        "n_modes": int(n_modes),
        "label": "sum_j digit_j * 10^(n_stack-1-j), channel 0 most significant; digit = argmax of the classifier",
        "modes": "non-empty cells of the label histogram",
        "kl": "reverse_kl = KL(p_gen || uniform) (their KLD); no KL to the data histogram",
        "log_base": "e",
        "perfect_sampling_floor": perfect_sampling_floor(np.ones(n_modes), int(n)),
        "classifier": "MEG architecture (mege.metrics.meg_classifier.MEGDigitNet), their training recipe",
        "classifier_mode": ("train: Dropout2d(0.5) after conv2 and dropout(0.5) after fc1 active, as their count_modes "
                            "never calls eval()") if dropout else "eval (dropout off; NOT how their counter runs)",
        "dropout_seed": seed,
        "batch": "1 000 stacks per classifier call",
        "input": "x*0.5+0.5 in [0, 1], as their G(z)*.5+.5",
        "classifier_heldout_accuracy": classifier_card.get("heldout_accuracy"),
        "classifier_data": classifier_card.get("data"),
        "classifier_content_hash": classifier_card.get("content_hash"),
        "classifier_is_committed": classifier_card.get("is_committed"),
        "classifier_path": classifier_card.get("path"),
        "differs_from_theirs": "classifier trained on 8 000 MNIST test images (they use the 60 000 train images); "
                               "samples from mege's fixed evaluation latents (they draw fresh z per batch)",
    }
