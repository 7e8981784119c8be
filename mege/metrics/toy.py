r"""Toy mode metrics (PacGAN / VEEGAN protocol).

For samples ``x_i`` and mixture centres ``μ_k`` with std ``σ`` and weights ``w_k``:

* nearest centre ``c(i) = argmin_k ‖x_i − μ_k‖``; sample i is high-quality (HQ) when
  ``‖x_i − μ_{c(i)}‖ ≤ hq_std · σ``;
* ``modes`` = number of centres that are the nearest centre of at least one HQ sample;
* ``hq_fraction`` = #HQ / n;
* with ``q_k`` the share of HQ samples whose nearest centre is k,
  ``reverse_kl = KL(q ‖ w) = Σ_k q_k ln(q_k / w_k)`` (natural log, 0 ln 0 = 0) and
  ``js = ½ KL(q ‖ m) + ½ KL(w ‖ m)``, ``m = (q + w) / 2``. Both are nan without HQ samples;
* ``assigned_kl = KL(a ‖ w)`` with ``a_k`` the share of ALL samples whose nearest centre is k
  (no HQ filter): a blur that spreads evenly scores low here but has a low ``hq_fraction``.

Even exact samples from the data give a KL > 0 because the histogram is a finite multinomial
draw: :func:`perfect_sampling_floor` computes that floor exactly (0.00481 for 25 equal modes and
0.00140 for 8 at 2 500 samples; ≈ 0.18 for 25 modes at 67 samples). Each KL is reported beside
the floor *at the number of samples that entered its histogram*: ``reverse_kl_floor`` at the
HQ count, ``assigned_kl_floor`` at n. A KL within 2× its floor is close to it but may still be
told from a perfect sampler: the test is the exact-sampling G-test (:mod:`mege.metrics.goodness_of_fit`,
G = 2·n·KL ~ χ²(K − 1)), whose p-value ``mege report`` prints beside each toy KL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from einops import rearrange
from scipy.special import rel_entr
from scipy.stats import binom
from torch import Tensor

from mege.errors import MegeError, check


def _histogram_divergences(q: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """``(KL(q ‖ w), JS(q, w))`` in nats for probability vectors q, w."""
    m = 0.5 * (q + w)
    kl = float(rel_entr(q, w).sum())
    js = float(0.5 * rel_entr(q, m).sum() + 0.5 * rel_entr(w, m).sum())
    return kl, js


def mode_metrics(samples: Tensor, centres: Tensor, std: float, weights: Tensor | None = None,
                 hq_std: float = 3.0) -> dict:
    """Mode count, HQ fraction, reverse KL and JS of ``samples`` (n, d) against a mixture.

    See the module docstring for the definitions. Distances are exact (float64, no matmul trick).
    """
    centres = torch.as_tensor(centres).detach().to("cpu", torch.float64)
    samples = torch.as_tensor(samples).detach().to("cpu", torch.float64)
    samples = rearrange(samples, "n ... -> n (...)")
    k, d = centres.shape
    check(samples.shape[1] == d or samples.shape[0] == 0,
          f"samples have {samples.shape[1]} coordinates but the centres have {d}; generate data of the mixture's dimension")
    if weights is None:
        w = np.full(k, 1.0 / k)
    else:
        w = torch.as_tensor(weights).detach().to("cpu", torch.float64).numpy()
        w = w / w.sum()
    n = samples.shape[0]
    if n == 0:
        hq_count, counts = 0, np.zeros(k, dtype=np.int64)
    else:
        distances = torch.cdist(samples, centres, compute_mode="donot_use_mm_for_euclid_dist")
        nearest_distance, nearest = distances.min(dim=1)
        hq = nearest_distance <= hq_std * std
        hq_count = int(hq.sum())
        counts = torch.bincount(nearest[hq], minlength=k).numpy()
        assigned = torch.bincount(nearest, minlength=k).numpy()
    if hq_count > 0:
        reverse_kl, js = _histogram_divergences(counts / hq_count, w)
    else:
        reverse_kl, js = float("nan"), float("nan")
    reverse_floor = perfect_sampling_floor(w, hq_count) if hq_count > 0 else float("nan")
    if n > 0:
        assigned_kl, _ = _histogram_divergences(assigned / n, w)
        assigned_floor = perfect_sampling_floor(w, n)
    else:
        assigned_kl, assigned_floor = float("nan"), float("nan")
    return {
        "modes": int((counts > 0).sum()),
        "n_modes": int(k),
        "hq_fraction": hq_count / n if n > 0 else float("nan"),
        "reverse_kl": reverse_kl,
        "reverse_kl_floor": reverse_floor,
        "assigned_kl": assigned_kl,
        "assigned_kl_floor": assigned_floor,
        "js": js,
        "n_hq": int(hq_count),
        "n_samples": int(n),
    }


def perfect_sampling_floor(weights, n_samples: int) -> float:
    r"""Expected ``KL(q ‖ w)`` when the histogram q comes from ``n_samples`` exact draws from w.

    With counts ``C_k ~ Binomial(n, w_k)`` and ``q_k = C_k / n``, linearity of expectation gives
    the exact value

        E KL(q ‖ w) = Σ_k Σ_c P(C_k = c) · (c/n) ln(c / (n w_k)),

    summed here over c within ±12 sd of ``n w_k`` (the rest has negligible mass); it is
    ≈ (k − 1) / (2n) for large n. Every sample counts as HQ (the toy protocol's 3σ filter
    drops about 1 % of exact 2-D samples, which moves the floor by about as much).
    """
    return expected_divergence(weights, n_samples, "kl")


def expected_divergence(weights, n_samples: int, divergence: str) -> float:
    """E[Σ_k g(C_k/n, w_k)] over exact multinomial histograms (C_k ~ Binomial(n, w_k)), for the cell
    term g of ``divergence``: "kl" (q ln q/w) or "js" (Jensen–Shannon, :func:`mege.metrics.protocols.jsd_floor`)."""
    w = torch.as_tensor(weights, dtype=torch.float64).detach().cpu().numpy()
    check(w.ndim == 1 and w.size > 0 and bool(np.all(w >= 0)) and w.sum() > 0,
          "weights must be a non-empty vector of non-negative numbers with a positive sum")
    check(int(n_samples) == n_samples and n_samples > 0, f"n_samples must be a positive int, got {n_samples}")
    return _floor(tuple(np.round(w / w.sum(), 15)), int(n_samples), divergence)


def _cell_term(q: np.ndarray, weight: float, divergence: str) -> np.ndarray:
    if divergence == "kl":
        return rel_entr(q, weight)
    m = 0.5 * (q + weight)
    return 0.5 * rel_entr(q, m) + 0.5 * rel_entr(weight, m)


@functools.lru_cache(maxsize=4096)
def _floor(w: tuple, n: int, divergence: str = "kl") -> float:
    """Cached core of :func:`expected_divergence` (every evaluation asks for the same few)."""
    w = np.asarray(w, dtype=np.float64)
    floor = 0.0
    for weight, multiplicity in zip(*np.unique(w[w > 0], return_counts=True)):
        spread = 12 * np.sqrt(n * weight * (1 - weight)) + 40
        c = np.arange(max(0, int(n * weight - spread)), min(n, int(np.ceil(n * weight + spread))) + 1)
        floor += multiplicity * float(np.sum(binom.pmf(c, n, weight) * _cell_term(c / n, weight, divergence)))
    return floor


class ToyModeMetrics:
    """``metric(generate, data)``: mode metrics of ``generate(n_samples)`` against a Gaussian mixture.

    protocol: "mege" (default, this module) or "pacgan" (PacGAN's MetricLogger: its JSD column
        beside its floor; :mod:`mege.metrics.protocols`).
    """

    def __init__(self, n_samples: int = 2500, hq_std: float = 3.0, protocol: str = "mege"):
        from mege.metrics.protocols import check_protocol
        check(int(n_samples) == n_samples and n_samples > 0, f"n_samples must be a positive int, got {n_samples}")
        check(hq_std > 0, f"hq_std must be positive, got {hq_std}")
        self.n_samples = int(n_samples)
        self.hq_std = float(hq_std)
        self.protocol = check_protocol(protocol, "toy")

    def check_data(self, data) -> None:
        """Raise the one-line fix when ``data`` has no mixture centres (the composition root calls this at start-up)."""
        if not hasattr(data, "centres"):
            raise MegeError(
                f"toy mode metrics need a Gaussian mixture with centres, not {type(data).__name__}; "
                "use data=ring8, data=grid25 or data=custom, or drop metric=toy"
            )

    def __call__(self, generate: Callable[[int], Tensor], data) -> dict:
        self.check_data(data)
        with torch.no_grad():
            samples = generate(self.n_samples).detach().to("cpu", torch.float32)
        if hasattr(data, "to_data_units"):  # networks may see standardised data; metrics use the data's units
            samples = data.to_data_units(samples)
        if self.protocol == "pacgan":
            from mege.metrics.protocols import pacgan_toy_metrics
            return pacgan_toy_metrics(samples, data.centres, float(data.std), self.hq_std)
        result = mode_metrics(samples, data.centres, data.std, data.weights, self.hq_std)
        result["protocol"] = {
            "name": "PacGAN/VEEGAN toy mode count",
            "n_samples": self.n_samples,
            "n_modes": int(data.centres.shape[0]),
            "std": float(data.std),
            "hq_threshold": f"{self.hq_std:g} std of nearest centre",
            "kl": "KL(p_gen_HQ || p_data) over mode histogram",
            "assigned_kl": "KL(p_gen || p_data) over all samples by nearest centre",
            "log_base": "e",
            "perfect_sampling_floor": perfect_sampling_floor(data.weights, self.n_samples),
            "floors": "reverse_kl_floor at the HQ count, assigned_kl_floor at n_samples (perfect sampler)",
        }
        return result
