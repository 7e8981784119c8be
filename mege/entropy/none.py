"""No entropy term: the plain energy GAN (λ_H·H = 0)."""

from __future__ import annotations

from torch import Tensor, nn

from mege.entropy.base import EntropyEstimator, EntropyResult


class NoEntropy(EntropyEstimator):
    """Surrogate identically zero, so the generator objective is ``E_z U(G(z))``."""

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        return EntropyResult(surrogate=x.new_zeros(()))
