r"""k-nearest-neighbour entropy: the Kozachenko–Leonenko (KL) estimator and a bias-corrected blend.

With ``ρ_k(i)`` the Euclidean distance from ``x_i`` to its k-th nearest neighbour among the other
n − 1 samples and ``V_d = π^{d/2} / Γ(d/2 + 1)`` the volume of the unit d-ball,

    Ĥ_k = ψ(n) − ψ(k) + log V_d + (d/n) Σ_i log ρ_k(i).

The value is differentiable through the distances (``∂Ĥ/∂x_i`` pulls each sample away from its
k-th neighbour). Neighbours are found without gradient in row chunks, so memory is
O(chunk · n) rather than O(n²); the chosen distances are then recomputed with the graph, O(n d).

:class:`WeightedKLEntropy` is the weighted estimator of Berrett, Samworth & Yuan (2019):
``Ĥ_w = Σ_j w_j Ĥ_j`` with weights chosen (minimum norm) so that ``Σ_j w_j = 1`` and
``Σ_j w_j Γ(j + 2l/d)/Γ(j) = 0`` for ``l = 1..L``, which cancels the leading bias terms of order
``(k/n)^{2l/d}``. The paper takes ``L = ⌊d/4⌋``; here ``L = min(⌊d/4⌋, max_orders)`` because in high d
the exact weights grow to hundreds and the variance swamps the bias (experiments/entropy_accuracy).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import digamma, gammaln
from torch import Tensor, nn

from mege.entropy.base import EntropyEstimator, EntropyResult, flatten
from mege.errors import check


def log_unit_ball_volume(d: int) -> float:
    """``log V_d = (d/2) log π − log Γ(d/2 + 1)``."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)


@torch.no_grad()
def nearest_neighbours(x: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """Indices (n, k) of each row's k nearest other rows (self excluded), ascending distance."""
    n = x.shape[0]
    check(k < n, f"k-NN entropy needs more samples than neighbours: got n = {n}, k = {k}; lower k or enlarge the batch.")
    out = []
    for start in range(0, n, chunk):
        rows = x[start : start + chunk]
        sq = torch.cdist(rows, x).pow_(2)
        sq[torch.arange(rows.shape[0], device=x.device), torch.arange(start, start + rows.shape[0], device=x.device)] = float("inf")
        out.append(sq.topk(k, dim=1, largest=False).indices)
    return torch.cat(out)


def neighbour_log_distances(x: Tensor, k: int, chunk: int = 1024, floor: float = 1e-12) -> Tensor:
    """``log ρ_j(i)`` for j = 1..k, shape (n, k), differentiable w.r.t. x; distances floored at ``floor``."""
    index = nearest_neighbours(x.detach(), k, chunk)
    diff = x.unsqueeze(1) - x[index]  # (n, k, d)
    return 0.5 * diff.pow(2).sum(-1).clamp_min(floor**2).log()


def kl_entropy(x: Tensor, k: int = 1, chunk: int = 1024) -> Tensor:
    """Kozachenko–Leonenko estimate (nats) from samples (n, d); see the module docstring."""
    n, d = x.shape
    log_rho = neighbour_log_distances(x, k, chunk)[:, k - 1]
    return float(digamma(n) - digamma(k)) + log_unit_ball_volume(d) + d * log_rho.mean()


class KLEntropy(EntropyEstimator):
    """Kozachenko–Leonenko k-NN entropy; the value (nats, no guaranteed side) is the surrogate."""

    gives_value = True

    def __init__(self, k: int = 1, chunk: int = 1024):
        super().__init__()
        check(int(k) == k and k >= 1, f"k must be a positive int, got {k}")
        self.k, self.chunk = int(k), int(chunk)

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        value = kl_entropy(flatten(x), self.k, self.chunk)
        return EntropyResult(surrogate=value, value=value)


def bias_cancelling_weights(d: int, k: int, orders: int) -> np.ndarray:
    """Minimum-norm weights w (k,) with ``Σ w_j = 1`` and ``Σ w_j Γ(j+2l/d)/Γ(j) = 0``, l = 1..orders."""
    j = np.arange(1, k + 1, dtype=np.float64)
    rows = [np.ones(k)] + [np.exp(gammaln(j + 2 * l / d) - gammaln(j)) for l in range(1, orders + 1)]
    check(len(rows) <= k, f"cancelling {orders} bias orders needs k > {orders}; raise k or lower max_orders.")
    constraints = np.stack(rows)
    target = np.zeros(len(rows))
    target[0] = 1.0
    return np.linalg.lstsq(constraints, target, rcond=None)[0]


class WeightedKLEntropy(EntropyEstimator):
    """Berrett–Samworth–Yuan weighted KL estimator ``Σ_j w_j Ĥ_j`` (bias-cancelling weights, j = 1..k)."""

    gives_value = True

    def __init__(self, k: int = 8, max_orders: int = 2, chunk: int = 1024):
        super().__init__()
        check(int(k) == k and k >= 1, f"k must be a positive int, got {k}")
        self.k, self.max_orders, self.chunk = int(k), int(max_orders), int(chunk)

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        x = flatten(x)
        n, d = x.shape
        weights = torch.as_tensor(bias_cancelling_weights(d, self.k, min(d // 4, self.max_orders)), dtype=x.dtype, device=x.device)
        log_rho = neighbour_log_distances(x, self.k, self.chunk)  # (n, k)
        offsets = digamma(n) - digamma(np.arange(1, self.k + 1)) + log_unit_ball_volume(d)
        per_k = torch.as_tensor(offsets, dtype=x.dtype, device=x.device) + d * log_rho.mean(0)
        value = (weights * per_k).sum()
        return EntropyResult(surrogate=value, value=value, info={"max_abs_weight": float(weights.abs().max())})
