r"""MLP energy critic U(x): one scalar per sample, low on data.

Optional random Fourier input features (Tancik et al. 2020),
``φ(x) = [x, sin(2π Bx), cos(2π Bx)]`` with a fixed ``B ~ N(0, s²)``, let a small MLP resolve
pits much narrower than the data's extent: an MLP on raw coordinates learns low frequencies
first and digs the 25 pits of grid-25 (std 0.05) only after very long training.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mege.entropy.base import flatten
from mege.nets import mlp


class FourierFeatures(nn.Module):
    """``x ↦ [x, sin(2π Bx), cos(2π Bx)]``, B fixed (a buffer, saved with the checkpoint)."""

    def __init__(self, in_dim: int, n_features: int, scale: float):
        super().__init__()
        self.register_buffer("B", torch.randn(in_dim, n_features) * scale)
        self.out_dim = in_dim + 2 * n_features

    def forward(self, x: Tensor) -> Tensor:
        phase = 2 * math.pi * x @ self.B
        return torch.cat([x, phase.sin(), phase.cos()], dim=1)


class MLPCritic(nn.Module):
    """``U(x) = MLP(φ(flatten(x)))``, shape (n,); φ is the identity unless ``fourier_features > 0``."""

    def __init__(self, x_dim: int, hidden: int = 512, depth: int = 3,
                 fourier_features: int = 0, fourier_scale: float = 0.5, activation: str = "leaky_relu"):
        super().__init__()
        self.embed = FourierFeatures(x_dim, fourier_features, fourier_scale) if fourier_features else nn.Identity()
        self.net = mlp(self.embed.out_dim if fourier_features else x_dim, hidden, depth, 1, activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.embed(flatten(x))).squeeze(1)
