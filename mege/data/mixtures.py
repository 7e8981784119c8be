r"""Toy 2-D (or d-D) data: Gaussian mixtures with known modes, and the swiss roll.

A mixture with centres ``μ_k``, weights ``w_k`` and one isotropic std ``σ`` has density

    p(x) = Σ_k w_k · N(x; μ_k, σ² I).

``scale`` standardises what the networks see, as MEG's and the WGAN-GP toy code do: ``sample``
returns ``x / scale`` (grid-25 uses 2.828, so the grid spans [−1.41, 1.41]²), while ``centres``
and ``std`` stay in the data's own units and :meth:`GaussianMixture.to_data_units` maps generated
samples back (``x · scale``) before any metric is computed.

Samples use torch's global RNG (``torch.multinomial`` for the component, ``torch.randn`` for
the noise), so ``torch.manual_seed`` makes them reproducible.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mege.errors import MegeError, check


def _nested_floats(values):
    """Nested lists of floats from anything iterable (lists, tuples, arrays, hydra ListConfig)."""
    if isinstance(values, str):
        raise TypeError(f"got the string {values!r}")
    if hasattr(values, "__iter__"):
        return [_nested_floats(v) for v in values]
    return float(values)


def _as_float_tensor(values, name: str) -> Tensor:
    """A float32 CPU tensor from a tensor, array or (hydra) nested list."""
    if isinstance(values, Tensor):
        return values.detach().to(device="cpu", dtype=torch.float32)
    try:
        return torch.tensor(_nested_floats(values), dtype=torch.float32)
    except (TypeError, ValueError) as error:
        raise MegeError(f"{name} must be numbers or a list of equal-length lists of numbers ({error})") from None


def _check_count(n: int) -> int:
    check(isinstance(n, int) and not isinstance(n, bool) and n >= 0, f"sample(n) needs a non-negative int n, got {n!r}")
    return n


class GaussianMixture:
    """Mixture of isotropic Gaussians ``Σ_k w_k N(μ_k, σ² I)``.

    Attributes: ``centres`` (k, d) float32, ``std`` σ, ``weights`` (k,) summing to 1, ``shape`` (d,).
    """

    def __init__(self, centres, std: float, weights=None, scale: float = 1.0):
        scale = float(scale)
        check(math.isfinite(scale) and scale > 0, f"scale must be a positive number, got {scale}; use scale=1 for raw units")
        self.scale: float = scale
        centres = _as_float_tensor(centres, "centres")
        check(centres.dim() == 2 and centres.shape[0] > 0 and centres.shape[1] > 0,
              f"centres must be a non-empty (k, d) list of points, got shape {tuple(centres.shape)}")
        check(bool(torch.isfinite(centres).all()), "centres must be finite numbers")
        std = float(std)
        check(math.isfinite(std) and std > 0, f"std must be a positive number, got {std}")
        k = centres.shape[0]
        if weights is None:
            weights = torch.full((k,), 1.0 / k)
        else:
            weights = _as_float_tensor(weights, "weights").to(torch.float64)
            check(weights.dim() == 1 and weights.shape[0] == k,
                  f"weights needs one entry per centre ({k}), got shape {tuple(weights.shape)}")
            check(bool(torch.isfinite(weights).all()) and bool((weights >= 0).all()),
                  "weights must be finite and non-negative")
            check(float(weights.sum()) > 0, "weights must have a positive sum")
            weights = (weights / weights.sum()).to(torch.float32)
        self.centres: Tensor = centres
        self.std: float = std
        self.weights: Tensor = weights
        self.shape: tuple[int, ...] = (centres.shape[1],)

    def sample(self, n: int) -> Tensor:
        """``n`` draws, shape (n, d), float32 on CPU."""
        n = _check_count(n)
        if n == 0:
            return torch.empty(0, *self.shape)
        component = torch.multinomial(self.weights, n, replacement=True)
        x = self.centres[component] + self.std * torch.randn(n, *self.shape)
        return x if self.scale == 1.0 else x / self.scale

    def to_data_units(self, x: Tensor) -> Tensor:
        """Network-space samples (what :meth:`sample` returns) in the units of ``centres``: ``x · scale``."""
        return x if self.scale == 1.0 else x * self.scale

    def __repr__(self) -> str:
        return f"GaussianMixture(k={self.centres.shape[0]}, d={self.shape[0]}, std={self.std}, scale={self.scale})"


def ring8(radius: float = 1.0, std: float = 0.01, n_modes: int = 8, scale: float = 1.0) -> GaussianMixture:
    """``n_modes`` equal-weight modes on a circle: ``μ_k = r (cos 2πk/n, sin 2πk/n)``, k = 0..n−1."""
    check(int(n_modes) == n_modes and n_modes >= 1, f"n_modes must be a positive int, got {n_modes}")
    check(float(radius) > 0, f"radius must be positive, got {radius}")
    angle = 2 * math.pi * torch.arange(int(n_modes), dtype=torch.float64) / int(n_modes)
    centres = float(radius) * torch.stack([angle.cos(), angle.sin()], dim=1)
    return GaussianMixture(centres.to(torch.float32), std, scale=scale)


def grid25(spacing: float = 2.0, std: float = 0.05, scale: float = 1.0) -> GaussianMixture:
    """25 equal-weight modes on the grid ``{−2s, −s, 0, s, 2s}²`` (s = 2 gives {−4,−2,0,2,4}²)."""
    check(float(spacing) > 0, f"spacing must be positive, got {spacing}")
    axis = float(spacing) * torch.arange(-2, 3, dtype=torch.float32)
    centres = torch.cartesian_prod(axis, axis)
    return GaussianMixture(centres, std, scale=scale)


def custom(centres, std: float, weights=None, scale: float = 1.0) -> GaussianMixture:
    """Any mixture: ``centres`` (k, d) list of points, one ``std``, optional ``weights`` (k,)."""
    return GaussianMixture(centres, std, weights, scale)


class SwissRoll:
    r"""2-D swiss roll (sklearn's curve): ``t = 1.5π(1 + 2u)``, u ~ U(0, 1),

        x = scale · (t cos t, t sin t) + noise · ε,   ε ~ N(0, I).

    With the default ``scale = 1/7`` the roll spans about [−1.4, 1.8] × [−1.6, 2.0]; ``noise`` is
    in those scaled units. It has no discrete modes, so mode-count metrics do not apply.
    """

    def __init__(self, noise: float = 0.05, scale: float = 1.0 / 7.0):
        check(float(noise) >= 0, f"noise must be non-negative, got {noise}")
        check(float(scale) > 0, f"scale must be positive, got {scale}")
        self.noise = float(noise)
        self.scale = float(scale)
        self.shape: tuple[int, ...] = (2,)

    def sample(self, n: int) -> Tensor:
        """``n`` draws, shape (n, 2), float32 on CPU."""
        n = _check_count(n)
        t = 1.5 * math.pi * (1 + 2 * torch.rand(n))
        curve = torch.stack([t * t.cos(), t * t.sin()], dim=1)
        return self.scale * curve + self.noise * torch.randn(n, 2)

    def __repr__(self) -> str:
        return f"SwissRoll(noise={self.noise}, scale={self.scale})"
