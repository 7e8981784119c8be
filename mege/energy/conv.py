"""DCGAN-style convolutional energy critic for 28×28 images (Stacked MNIST).

Four 5×5 stride-2 convolutions (padding 2) take 28 → 14 → 7 → 4 → 2 with widths
``w, 2w, 4w, 8w`` and LeakyReLU(0.2), then a linear head on the 2×2×8w features:
``U(x) = wᵀ φ(x) + b``, one energy per sample. No batch-norm: the gradient penalty is a
per-sample quantity and batch statistics would couple the samples.

Profiles (configs/energy/dcgan_{paper,cpu}.yaml): ``paper`` w = 64, ``cpu`` w = 16.
The matching generator is :class:`mege.generators.DCGANGenerator`.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from mege.errors import check

IMAGE_SIZE = 28


class DCGANCritic(nn.Module):
    """``forward(x) -> (n,)`` for images (n, c, 28, 28) or their flattening (n, c·28·28)."""

    def __init__(self, n_channels: int = 3, width: int = 64, slope: float = 0.2):
        super().__init__()
        self.n_channels = n_channels
        widths = [n_channels, width, 2 * width, 4 * width, 8 * width]
        layers = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 5, stride=2, padding=2), nn.LeakyReLU(slope)]
        self.features = nn.Sequential(*layers)  # 28 → 14 → 7 → 4 → 2
        self.head = nn.Linear(8 * width * 2 * 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            size = self.n_channels * IMAGE_SIZE * IMAGE_SIZE
            check(x.shape[1] == size,
                  f"DCGANCritic takes 28×28 images with {self.n_channels} channels ({size} values per sample) but got "
                  f"samples of {x.shape[1]} values; choose a critic for this data (energy=mlp for points and vectors) "
                  f"or image data for this critic (data=stacked_mnist)")
            x = rearrange(x, "b (c h w) -> b c h w", c=self.n_channels, h=IMAGE_SIZE, w=IMAGE_SIZE)
        check(tuple(x.shape[1:]) == (self.n_channels, IMAGE_SIZE, IMAGE_SIZE),
              f"DCGANCritic expects (n, {self.n_channels}, 28, 28) images, got {tuple(x.shape)}; set energy.n_channels to the data's channels")
        features = rearrange(self.features(x), "b c h w -> b (c h w)")
        return rearrange(self.head(features), "b 1 -> b")
