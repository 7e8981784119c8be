"""Data sources. A data object has ``shape`` (one sample's shape) and ``sample(n) -> Tensor (n, *shape)``.

Toy 2-D sets live in :mod:`mege.data.mixtures` (ring, grid, custom Gaussian mixtures, swiss roll).
"""
