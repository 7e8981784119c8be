"""MLP energy critic U(x): one scalar per sample, low on data."""

from __future__ import annotations

from torch import Tensor, nn

from mege.entropy.base import flatten


def mlp(in_dim: int, hidden: int, depth: int, out_dim: int) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` with LeakyReLU(0.2), then a linear head."""
    layers, width = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, out_dim))


class MLPCritic(nn.Module):
    """``U(x) = MLP(flatten(x))``, shape (n,)."""

    def __init__(self, x_dim: int, hidden: int = 512, depth: int = 3):
        super().__init__()
        self.net = mlp(x_dim, hidden, depth, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(flatten(x)).squeeze(1)
