r"""Generators ``x = G(z)``, ``z ~ N(0, I)``; the noisy wrapper ``x = G(z) + σε`` (weight EMA: :mod:`mege.ema`)."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from mege.nets import mlp
from mege.errors import check


class Generator(nn.Module):
    """Base: ``latent_dim`` and a standard-normal latent sampler."""

    latent_dim: int

    def sample_latent(self, n: int, device: torch.device | str | None = None,
                      generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator)
        return z.to(device) if device is not None else z


class MLPGenerator(Generator):
    """``G(z) = MLP(z)`` reshaped to the sample shape ``(x_dim,)``."""

    def __init__(self, z_dim: int, x_dim: int, hidden: int = 512, depth: int = 3, activation: str = "leaky_relu"):
        super().__init__()
        self.latent_dim = z_dim
        self.net = mlp(z_dim, hidden, depth, x_dim, activation)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class NoisyGenerator(Generator):
    r"""``x = G(z) + σ ε``, ε ~ N(0, I): a generator with a finite entropy (docs/design.md §1).

    The type estimators ask for with ``needs_noisy_generator`` (:mod:`mege.entropy.term`) and that
    latent MCMC samples as u = (z, ε) (:func:`mege.sampling.latent_map`): ``base`` (z ↦ G(z)),
    ``sigma``, ``mean(z)``. σ is fixed, or learned and clamped to ``[min_sigma, max_sigma]``.
    """

    def __init__(self, base: Generator, sigma: float = 0.1, learn_sigma: bool = False,
                 min_sigma: float = 1e-3, max_sigma: float = 1.0):
        super().__init__()
        check(0 < min_sigma <= sigma <= max_sigma,
              f"NoisyGenerator needs 0 < min_sigma ≤ sigma ≤ max_sigma (got {min_sigma}, {sigma}, {max_sigma}).")
        self.base, self.latent_dim = base, base.latent_dim
        self.min_sigma, self.max_sigma = min_sigma, max_sigma
        log_sigma = torch.tensor(math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @property
    def sigma(self) -> Tensor:
        return self.log_sigma.exp().clamp(self.min_sigma, self.max_sigma)

    def mean(self, z: Tensor) -> Tensor:
        return self.base(z)

    def forward(self, z: Tensor) -> Tensor:
        mean = self.base(z)
        return mean + self.sigma * torch.randn_like(mean)


class DCGANGenerator(Generator):
    r"""DCGAN-style generator for 28×28 images with ``n_channels`` channels (Stacked MNIST).

    ``z (z_dim) → linear → 2×2×8w seed → [BN, ReLU, 5×5 transposed conv, stride 2]×4 → tanh``,
    spatial 2 → 4 → 7 → 14 → 28 and widths 8w → 4w → 2w → w → n_channels; outputs in [−1, 1].
    Profiles (configs/generator/dcgan_{paper,cpu}.yaml): ``paper`` w = 64 (seed 2×2×512), latent 128.
    """

    def __init__(self, z_dim: int = 128, n_channels: int = 3, width: int = 64):
        super().__init__()
        self.latent_dim, self.n_channels, self.width = z_dim, n_channels, width
        widths = [8 * width, 4 * width, 2 * width, width]
        self.seed = nn.Linear(z_dim, widths[0] * 2 * 2)
        layers = []
        for c_in, c_out, extra in zip(widths, [*widths[1:], n_channels], (1, 0, 1, 1)):  # 2→4→7→14→28
            layers += [nn.BatchNorm2d(c_in), nn.ReLU(),
                       nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=extra)]
        self.net = nn.Sequential(*layers, nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(rearrange(self.seed(z), "b (c h w) -> b c h w", h=2, w=2))
