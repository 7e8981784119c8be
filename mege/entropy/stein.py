r"""Kernel score estimators from Stein's identity: gradients only, no entropy value.

Both use the RBF kernel ``k(x, y) = exp(−‖x − y‖² / 2h²)`` on the batch, K_ij = k(x_i, x_j),
with a bandwidth rule from :mod:`mege.entropy.bandwidth` (default: ``h² = median ‖x_i − x_j‖² / 2``).

**Stein gradient estimator** (Li & Turner 2018). Stein's identity
``E_q[k(x, ·) ∇log q(x) + ∇_x k(x, ·)] = 0`` at the samples, ridge-regularised, gives

    Ĝ = −(K + η I)⁻¹ ⟨∇, K⟩,   ⟨∇, K⟩_i = Σ_j ∇_{x_j} k(x_i, x_j) = Σ_j K_ij (x_i − x_j) / h²,

with η = ``eta`` · mean eigenvalue of K (scale free).

**Spectral Stein gradient estimator** (SSGE, Shi, Sun & Zhu 2018). With the eigenpairs
``K u_j = λ_j u_j`` (largest first) the Nyström eigenfunctions are
``ψ_j(x) = (√n/λ_j) Σ_m u_jm k(x, x_m)``; the score is expanded as ``ĝ(x) = Σ_{j≤J} β_j ψ_j(x)``
with ``β_j = −(1/n) Σ_i ∇ψ_j(x_i)``. At the samples ``ψ_j(x_i) = √n u_ij``. J is the smallest
number of eigenvalues whose sum reaches the fraction ``energy`` of the trace (or ``n_eigen``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mege.entropy.base import ScoreEstimator
from mege.entropy.bandwidth import Bandwidth, MedianDistanceBandwidth, squared_distances  # noqa: F401 — re-exported for configs
from mege.errors import check


def rbf_kernel(x: Tensor, h: Tensor) -> Tensor:
    """K_ij = exp(−‖x_i − x_j‖² / 2h²)."""
    return torch.exp(-squared_distances(x) / (2 * h**2))


class SteinScore(ScoreEstimator):
    """Stein gradient estimator ``Ĝ = −(K + ηI)⁻¹ ⟨∇, K⟩`` (Li & Turner 2018)."""

    def __init__(self, bandwidth: Bandwidth | None = None, eta: float = 0.01):
        super().__init__()
        self.bandwidth = MedianDistanceBandwidth() if bandwidth is None else bandwidth
        check(eta > 0, f"eta must be positive, got {eta}")
        self.eta = float(eta)

    def score(self, x: Tensor) -> Tensor:
        xd = x.double()
        h = self.bandwidth(xd)
        kernel = rbf_kernel(xd, h)
        n = x.shape[0]
        div = (kernel.sum(dim=1, keepdim=True) * xd - kernel @ xd) / h**2
        ridge = self.eta * kernel.diagonal().mean() * torch.eye(n, dtype=xd.dtype, device=x.device)
        return -torch.linalg.solve(kernel + ridge, div).to(x.dtype)


class SSGEScore(ScoreEstimator):
    """Spectral Stein gradient estimator (Shi et al. 2018) evaluated at the samples."""

    def __init__(self, bandwidth: Bandwidth | None = None, energy: float = 0.99, n_eigen: int | None = None):
        super().__init__()
        self.bandwidth = MedianDistanceBandwidth() if bandwidth is None else bandwidth
        check(0 < energy <= 1, f"energy must be in (0, 1], got {energy}")
        self.energy, self.n_eigen = float(energy), n_eigen

    def score(self, x: Tensor) -> Tensor:
        xd = x.double()
        n = x.shape[0]
        h = self.bandwidth(xd)
        kernel = rbf_kernel(xd, h)
        eigenvalues, eigenvectors = torch.linalg.eigh(kernel)
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
        if self.n_eigen is None:
            cumulative = torch.cumsum(eigenvalues.clamp_min(0), 0) / eigenvalues.clamp_min(0).sum()
            count = int((cumulative < self.energy).sum()) + 1
        else:
            count = int(self.n_eigen)
        count = max(1, min(count, n))
        lam, u = eigenvalues[:count], eigenvectors[:, :count]  # (J,), (n, J)
        # Σ_i ∇ψ_j(x_i) = −(√n / (λ_j h²)) [Xᵀ K u_j − Xᵀ (K1 ⊙ u_j)]
        stein = xd.T @ (kernel @ u) - xd.T @ (kernel.sum(dim=1, keepdim=True) * u)  # (d, J)
        beta = stein / (math.sqrt(n) * lam * h**2)  # β_j = −(1/n) Σ_i ∇ψ_j(x_i), (d, J)
        return (math.sqrt(n) * u @ beta.T).to(x.dtype)
