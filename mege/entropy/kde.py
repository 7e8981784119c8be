r"""Kernel density estimators with a Gaussian kernel.

``p̂(x) = (1/n) Σ_j N(x; x_j, h² I)``, whose score at a sample is a softmax-weighted mean shift

    ŝ(x_i) = Σ_j w_ij (x_j − x_i) / h²,   w_ij = softmax_j(−‖x_i − x_j‖² / 2h²).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mege.entropy.base import ScoreEstimator


def median_bandwidth(x: Tensor) -> Tensor:
    """Median heuristic: ``h² = median_{i<j} ‖x_i − x_j‖² / (2 ln(n + 1))`` (as in SVGD)."""
    n = x.shape[0]
    sq = torch.cdist(x, x).pow(2)
    off_diagonal = sq[~torch.eye(n, dtype=torch.bool, device=x.device)]
    return (off_diagonal.median() / (2 * math.log(n + 1))).clamp_min(1e-12).sqrt()


class KDEScore(ScoreEstimator):
    """Score of a Gaussian KDE of the batch, median-heuristic bandwidth unless ``bandwidth`` is set."""

    def __init__(self, bandwidth: float | None = None):
        super().__init__()
        self.bandwidth = bandwidth

    def score(self, x: Tensor) -> Tensor:
        h = median_bandwidth(x) if self.bandwidth is None else torch.as_tensor(self.bandwidth, dtype=x.dtype)
        weights = torch.softmax(-torch.cdist(x, x).pow(2) / (2 * h**2), dim=1)
        return (weights @ x - x) / h**2
