r"""Kernel density estimators with a Gaussian kernel.

``p̂(x) = (1/n) Σ_j N(x; x_j, h² I)``, whose score at a sample is a softmax-weighted mean shift

    ŝ(x_i) = Σ_j w_ij (x_j − x_i) / h²,   w_ij = softmax_j(−‖x_i − x_j‖² / 2h²).

The entropy value is the plug-in ``Ĥ = −(1/n) Σ_i log p̂(x_i)``, either by resubstitution
(``x_i`` is in its own sum, as scipy's ``gaussian_kde(x).logpdf(x)``) or leave-one-out
(``p̂_{−i}(x_i) = 1/(n−1) Σ_{j≠i} N(x_i; x_j, h² I)``). With ``whiten=True`` the kernel covariance is
``h² Σ̂`` (Σ̂ the sample covariance, as in scipy): the samples are whitened by the Cholesky factor
L of Σ̂, y = L⁻¹x, and ``log p̂_x(x) = log p̂_y(y) − log |det L|``.

Bandwidth rules are small modules ``rule(y) -> h`` on the (whitened or raw) samples, chosen by
``_target_``: Scott ``h = s·n^{−1/(d+4)}``, Silverman ``h = s·(n(d+2)/4)^{−1/(d+4)}`` (s = root mean
variance, 1 after whitening; these are scipy's factors), the median heuristic, a fixed h, or a
learned ``h = e^{a}·(Scott)`` with ``a`` fitted by maximising the leave-one-out likelihood.
Everything is differentiable w.r.t. the samples, the bandwidth included.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mege.entropy.base import EntropyEstimator, EntropyResult, ScoreEstimator, flatten
from mege.errors import check
from mege.entropy.bandwidth import (  # noqa: F401 — rules re-exported for configs
    Bandwidth, FixedBandwidth, LearnedBandwidth, MedianBandwidth, ScottBandwidth, SilvermanBandwidth, as_rule,
    median_bandwidth, squared_distances)


def kde_log_density(x: Tensor, rule: Bandwidth, leave_one_out: bool = False, whiten: bool = False) -> Tensor:
    """``log p̂(x_i)`` (n,) of the Gaussian KDE of the samples at the samples themselves."""
    n, d = x.shape
    log_det = x.new_zeros(())
    if whiten:
        check(n > d, f"KDE whitening needs more samples than dimensions (n = {n}, d = {d}); set whiten=false or enlarge the batch.")
        centred = x - x.mean(dim=0)
        chol = torch.linalg.cholesky(centred.T @ centred / (n - 1))
        x = torch.linalg.solve_triangular(chol, centred.T, upper=False).T
        log_det = torch.log(torch.diagonal(chol)).sum()
    h = rule(x)
    logits = -squared_distances(x) / (2 * h**2)
    count = n
    if leave_one_out:
        check(n > 1, "leave-one-out KDE needs at least 2 samples")
        logits = logits.masked_fill(torch.eye(n, dtype=torch.bool, device=x.device), float("-inf"))
        count = n - 1
    return torch.logsumexp(logits, dim=1) - math.log(count) - 0.5 * d * torch.log(2 * math.pi * h**2) - log_det


class KDEEntropy(EntropyEstimator):
    """Plug-in KDE entropy ``−(1/n) Σ log p̂(x_i)`` (nats; resubstitution or leave-one-out).

    Resubstitution is biased low (each sample sits on its own kernel); leave-one-out is the
    less biased default. Neither has a guaranteed side. The value is the surrogate.
    """

    gives_value = True

    def __init__(self, bandwidth: Bandwidth | float | None = None, leave_one_out: bool = True, whiten: bool = True):
        super().__init__()
        self.bandwidth = ScottBandwidth() if bandwidth is None else as_rule(bandwidth)
        self.leave_one_out, self.whiten = leave_one_out, whiten

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        x = flatten(x)
        value = -kde_log_density(x, self.bandwidth, self.leave_one_out, self.whiten).mean()
        aux = None
        if any(p.requires_grad for p in self.parameters()):
            aux = -kde_log_density(x.detach(), self.bandwidth, True, self.whiten).mean()
        return EntropyResult(surrogate=value, value=value, aux_loss=aux)


class KDEScore(ScoreEstimator):
    """Score of a Gaussian KDE of the batch, median-heuristic bandwidth unless ``bandwidth`` is set.

    ``bandwidth`` is a float (fixed h), None (median heuristic) or a :class:`Bandwidth` rule.
    """

    def __init__(self, bandwidth: Bandwidth | float | None = None):
        super().__init__()
        self.bandwidth = bandwidth

    def score(self, x: Tensor) -> Tensor:
        if isinstance(self.bandwidth, Bandwidth):
            h = self.bandwidth(x)
        elif self.bandwidth is None:
            h = median_bandwidth(x)
        else:
            h = torch.as_tensor(self.bandwidth, dtype=x.dtype, device=x.device)
        weights = torch.softmax(-squared_distances(x) / (2 * h**2), dim=1)
        return (weights @ x - x) / h**2
