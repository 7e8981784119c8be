r"""Bandwidth rules for Gaussian kernels, the one module that holds them (KDE, Stein, SSGE).

A rule is a module ``forward(x (n, d)) -> h`` (0-d tensor, differentiable w.r.t. x): Scott's and
Silverman's factors times the root mean variance, the median heuristic of SVGD
(``h² = median ‖x_i − x_j‖² / 2 ln(n + 1)``, :class:`MedianBandwidth`), the median distance of the
Stein estimators (``h² = median ‖x_i − x_j‖² / 2``, :class:`MedianDistanceBandwidth`), a fixed h,
or Scott's times a learned factor.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mege.errors import check


def median_bandwidth(x: Tensor) -> Tensor:
    """Median heuristic: ``h² = median_{i<j} ‖x_i − x_j‖² / (2 ln(n + 1))`` (as in SVGD)."""
    n = x.shape[0]
    sq = torch.cdist(x, x).pow(2)
    off_diagonal = sq[~torch.eye(n, dtype=torch.bool, device=x.device)]
    return (off_diagonal.median() / (2 * math.log(n + 1))).clamp_min(1e-12).sqrt()


def squared_distances(x: Tensor) -> Tensor:
    """``‖x_i − x_j‖²`` (n, n) via the Gram matrix of the centred samples: smooth at i = j (no sqrt)."""
    x = x - x.mean(dim=0)
    norms = x.pow(2).sum(dim=1)
    return (norms[:, None] + norms[None, :] - 2 * x @ x.T).clamp_min(0)


def _root_mean_variance(x: Tensor) -> Tensor:
    """``s = sqrt(mean_d var_d)`` with the unbiased variance (1 for whitened samples)."""
    return x.var(dim=0).mean().clamp_min(1e-24).sqrt()


class Bandwidth(nn.Module):
    """A bandwidth rule: ``forward(x (n, d)) -> h`` (0-d tensor, differentiable w.r.t. x)."""

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError


class ScottBandwidth(Bandwidth):
    """Scott's rule ``h = s · n^{−1/(d+4)}``."""

    def forward(self, x: Tensor) -> Tensor:
        n, d = x.shape
        return _root_mean_variance(x) * n ** (-1.0 / (d + 4))


class SilvermanBandwidth(Bandwidth):
    """Silverman's rule ``h = s · (n (d+2) / 4)^{−1/(d+4)}``."""

    def forward(self, x: Tensor) -> Tensor:
        n, d = x.shape
        return _root_mean_variance(x) * (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))


class MedianBandwidth(Bandwidth):
    """Median heuristic (see :func:`median_bandwidth`)."""

    def forward(self, x: Tensor) -> Tensor:
        return median_bandwidth(x)


class MedianDistanceBandwidth(Bandwidth):
    """``h = scale · sqrt(median_{i≠j} ‖x_i − x_j‖² / 2)``: the kernel is e^{−1/2·scale⁻²} at the median distance/√2."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        sq = squared_distances(x)
        off_diagonal = sq[~torch.eye(n, dtype=torch.bool, device=x.device)]
        return self.scale * (off_diagonal.median() / 2).clamp_min(1e-24).sqrt()


class FixedBandwidth(Bandwidth):
    """A constant h."""

    def __init__(self, h: float):
        super().__init__()
        check(float(h) > 0, f"bandwidth h must be positive, got {h}")
        self.h = float(h)

    def forward(self, x: Tensor) -> Tensor:
        return x.new_tensor(self.h)


class LearnedBandwidth(Bandwidth):
    """``h = exp(a) · Scott(x)`` with a learnable log-factor ``a`` (init ``log init_factor``).

    The owning estimator returns ``aux_loss = −(1/n) Σ_i log p̂_{−i}(x_i)`` on detached samples,
    so the entropy term fits ``a`` by maximum leave-one-out likelihood.
    """

    def __init__(self, init_factor: float = 1.0):
        super().__init__()
        self.log_factor = nn.Parameter(torch.tensor(math.log(init_factor)))
        self.scott = ScottBandwidth()

    def forward(self, x: Tensor) -> Tensor:
        return self.log_factor.exp().to(x.dtype) * self.scott(x)


def as_rule(bandwidth: Bandwidth | float | None) -> Bandwidth:
    if bandwidth is None:
        return MedianBandwidth()
    if isinstance(bandwidth, Bandwidth):
        return bandwidth
    return FixedBandwidth(float(bandwidth))
