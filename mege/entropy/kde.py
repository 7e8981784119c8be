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
    so the trainer fits ``a`` by maximum leave-one-out likelihood.
    """

    def __init__(self, init_factor: float = 1.0):
        super().__init__()
        self.log_factor = nn.Parameter(torch.tensor(math.log(init_factor)))
        self.scott = ScottBandwidth()

    def forward(self, x: Tensor) -> Tensor:
        return self.log_factor.exp().to(x.dtype) * self.scott(x)


def _as_rule(bandwidth: Bandwidth | float | None) -> Bandwidth:
    if bandwidth is None:
        return MedianBandwidth()
    if isinstance(bandwidth, Bandwidth):
        return bandwidth
    return FixedBandwidth(float(bandwidth))


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
        self.bandwidth = ScottBandwidth() if bandwidth is None else _as_rule(bandwidth)
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
