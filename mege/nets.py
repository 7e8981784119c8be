"""The one MLP builder, shared by critics, generators and the MI pair networks."""

from __future__ import annotations

from torch import nn

from mege.errors import check

ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}


def mlp(in_dim: int, hidden: int, depth: int, out_dim: int, activation: str = "leaky_relu") -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` with ``activation`` (LeakyReLU(0.2) or ReLU), then a linear head."""
    check(activation in ACTIVATIONS, f"activation must be one of {', '.join(ACTIVATIONS)} (got {activation!r}).")
    layers, width = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, out_dim))
