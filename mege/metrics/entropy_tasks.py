r"""Ground-truth entropy tasks: distributions whose differential entropy (nats) is known.

Each task has ``shape`` (one sample's shape), ``sample(n) -> Tensor (n, d)`` float32 on CPU drawn
with torch's global RNG (like the data objects in :mod:`mege.data`), ``entropy`` (the true H in
nats, a float), ``entropy_se`` (its Monte-Carlo standard error; 0 for closed forms) and, where it
is known in closed form, ``score(x) = ∇_x log p(x)``.

Closed forms used:

* Gaussian ``N(μ, Σ)``:  ``H = ½ log det(2πe Σ)``.
* Uniform box ``∏_d [a_d, b_d]``:  ``H = Σ_d log(b_d − a_d)``.
* Student-t with ν degrees of freedom and shape ``s² I`` (scipy's ``multivariate_t.entropy``):
  ``H = d log s + log[(νπ)^{d/2} Γ(ν/2)/Γ((ν+d)/2)] + (ν+d)/2 [ψ((ν+d)/2) − ψ(ν/2)]``.
* Linear-Gaussian generator ``x = A z + σ ε`` (z ~ N(0, I_k), ε ~ N(0, I_d)): x ~ N(0, C) with
  ``C = A Aᵀ + σ² I``, so ``H = ½ log det(2πe C)`` and ``∇_A H = C⁻¹ A``.
* Gaussian mixture: no closed form; ``H = −E log p(x)`` by a large Monte-Carlo sample with a
  fixed seed (``entropy_se`` is its standard error).
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn

from mege.data.mixtures import GaussianMixture
from mege.errors import check
from mege.generators import NoisyGenerator

LOG_2PI_E = math.log(2 * math.pi * math.e)


def _random_rotation(d: int, seed: int) -> Tensor:
    """A Haar-random orthogonal (d, d) matrix in float64 from a private generator."""
    generator = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


class EntropyTask:
    """A distribution with a known entropy. Subclasses set ``name``, ``shape``, ``entropy``."""

    name: str
    shape: tuple[int, ...]
    entropy: float
    entropy_se: float = 0.0

    @property
    def dim(self) -> int:
        return int(np.prod(self.shape))

    def sample(self, n: int) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, H={self.entropy:.4f})"


class GaussianTask(EntropyTask):
    """``N(μ, Σ)`` with ``H = ½ log det(2πe Σ)`` and score ``−Σ⁻¹(x − μ)``."""

    def __init__(self, cov: Tensor, mean: Tensor | None = None, name: str = "gaussian"):
        cov = torch.as_tensor(cov, dtype=torch.float64)
        check(cov.dim() == 2 and cov.shape[0] == cov.shape[1], "cov must be a square (d, d) matrix")
        d = cov.shape[0]
        self.cov = cov
        self.mean = torch.zeros(d, dtype=torch.float64) if mean is None else torch.as_tensor(mean, dtype=torch.float64)
        self.cholesky = torch.linalg.cholesky(cov)
        self.precision = torch.cholesky_inverse(self.cholesky)
        self.name, self.shape = name, (d,)
        self.entropy = 0.5 * (d * LOG_2PI_E + 2 * float(torch.log(torch.diagonal(self.cholesky)).sum()))

    def sample(self, n: int) -> Tensor:
        eps = torch.randn(n, self.dim)
        return (self.mean + eps.double() @ self.cholesky.T).float()

    def score(self, x: Tensor) -> Tensor:
        return -((x.double() - self.mean) @ self.precision).to(x.dtype)


def isotropic_gaussian(d: int, std: float = 1.0) -> GaussianTask:
    """``N(0, std² I_d)``: ``H = (d/2) log(2πe std²)``."""
    return GaussianTask(std**2 * torch.eye(d, dtype=torch.float64), name=f"gauss-iso-d{d}")


def anisotropic_gaussian(d: int, condition: float = 100.0, seed: int = 0) -> GaussianTask:
    """``N(0, R Λ Rᵀ)``: variances log-spaced over ``[1/√condition, √condition]``, random rotation R."""
    variances = torch.logspace(-0.5 * math.log10(condition), 0.5 * math.log10(condition), d, dtype=torch.float64)
    rotation = _random_rotation(d, seed) if d > 1 else torch.ones(1, 1, dtype=torch.float64)
    return GaussianTask(rotation @ torch.diag(variances) @ rotation.T, name=f"gauss-aniso-d{d}")


class UniformBoxTask(EntropyTask):
    """Uniform on ``∏_d [low_d, high_d]``: ``H = Σ_d log(high_d − low_d)``."""

    def __init__(self, low: Tensor, high: Tensor, name: str = "uniform"):
        self.low = torch.as_tensor(low, dtype=torch.float64)
        self.high = torch.as_tensor(high, dtype=torch.float64)
        check(bool((self.high > self.low).all()), "every high_d must exceed low_d")
        self.name, self.shape = name, tuple(self.low.shape)
        self.entropy = float(torch.log(self.high - self.low).sum())

    def sample(self, n: int) -> Tensor:
        return (self.low + (self.high - self.low) * torch.rand(n, self.dim, dtype=torch.float64)).float()


def uniform_box(d: int, width: float = 2.0) -> UniformBoxTask:
    """Uniform on ``[−w/2, w/2]^d``: ``H = d log w``."""
    half = torch.full((d,), width / 2, dtype=torch.float64)
    return UniformBoxTask(-half, half, name=f"uniform-d{d}")


class StudentTTask(EntropyTask):
    """Multivariate Student-t, ν degrees of freedom, shape ``s² I``; H from scipy's closed form.

    Samples: ``x = s · g / √(c/ν)`` with g ~ N(0, I_d), c ~ χ²_ν.
    """

    def __init__(self, d: int, df: float = 5.0, scale: float = 1.0):
        self.df, self.scale = float(df), float(scale)
        self.name, self.shape = f"student-t{df:g}-d{d}", (d,)
        self.entropy = float(stats.multivariate_t(loc=np.zeros(d), shape=scale**2 * np.eye(d), df=df).entropy())

    def sample(self, n: int) -> Tensor:
        g = torch.randn(n, self.dim, dtype=torch.float64)
        chi2 = torch.distributions.Chi2(torch.tensor(self.df, dtype=torch.float64)).sample((n, 1))
        return (self.scale * g / torch.sqrt(chi2 / self.df)).float()


class MixtureTask(EntropyTask):
    """A Gaussian mixture (:class:`mege.data.mixtures.GaussianMixture`); H by Monte Carlo.

    ``H = −(1/m) Σ_i log p(x_i)`` over ``m`` samples from a private generator (seed fixed, so the
    truth does not depend on the global RNG), computed on first use; ``entropy_se`` is the MC
    standard error.
    """

    def __init__(self, mixture: GaussianMixture, name: str = "mixture", mc_samples: int = 1_000_000, seed: int = 0):
        self.mixture, self.name, self.shape = mixture, name, mixture.shape
        self.mc_samples, self.seed = mc_samples, seed

    @cached_property
    def _monte_carlo(self) -> tuple[float, float]:
        """(H, standard error), computed on first use."""
        generator = torch.Generator().manual_seed(self.seed)
        centres, weights = self.mixture.centres.double(), self.mixture.weights.double()
        log_p = []
        for start in range(0, self.mc_samples, 100_000):
            m = min(100_000, self.mc_samples - start)
            component = torch.multinomial(weights, m, replacement=True, generator=generator)
            x = centres[component] + self.mixture.std * torch.randn(m, self.dim, generator=generator, dtype=torch.float64)
            log_p.append(self.log_prob(x))
        log_p = torch.cat(log_p)
        return float(-log_p.mean()), float(log_p.std() / math.sqrt(self.mc_samples))

    @property
    def entropy(self) -> float:
        return self._monte_carlo[0]

    @property
    def entropy_se(self) -> float:
        return self._monte_carlo[1]

    def log_prob(self, x: Tensor) -> Tensor:
        """``log Σ_k w_k N(x; μ_k, σ² I)`` in float64."""
        x, centres, std = x.double(), self.mixture.centres.double(), self.mixture.std
        sq = torch.cdist(x, centres).pow(2)
        log_components = -sq / (2 * std**2) - 0.5 * self.dim * math.log(2 * math.pi * std**2)
        return torch.logsumexp(log_components + self.mixture.weights.double().log(), dim=1)

    def score(self, x: Tensor) -> Tensor:
        xd = x.double().detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.log_prob(xd).sum(), xd)
        return grad.to(x.dtype)

    def sample(self, n: int) -> Tensor:
        return self.mixture.sample(n)


def ring_mixture(d: int = 2, modes: int = 8, radius: float = 2.0, std: float = 0.5, mc_samples: int = 1_000_000) -> MixtureTask:
    """``modes`` equal-weight modes on a circle in the first two axes of R^d, std ``std`` (overlapping)."""
    angle = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    centres = torch.zeros(modes, d, dtype=torch.float64)
    centres[:, 0], centres[:, 1] = radius * angle.cos(), radius * angle.sin()
    return MixtureTask(GaussianMixture(centres.float(), std), name=f"mixture{modes}-d{d}", mc_samples=mc_samples)


class LinearNoisyGenerator(NoisyGenerator):
    """``x = A z + σ ε``: a :class:`~mege.generators.NoisyGenerator` with ``base`` z ↦ Az and a fixed σ."""

    def __init__(self, weight: Tensor, sigma: float):
        nn.Module.__init__(self)
        d, k = weight.shape
        self.latent_dim = k
        self.shape = (d,)
        self.base = nn.Linear(k, d, bias=False)
        with torch.no_grad():
            self.base.weight.copy_(weight)
        self.register_buffer("fixed_sigma", torch.tensor(float(sigma)))

    @property
    def sigma(self) -> Tensor:
        return self.fixed_sigma

    @property
    def A(self) -> Tensor:
        return self.base.weight

    def sample_latent(self, n: int, device=None) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device)

    def mean(self, z: Tensor) -> Tensor:
        return self.base(z)

    def forward(self, z: Tensor) -> Tensor:
        mean = self.mean(z)
        return mean + self.sigma * torch.randn_like(mean)


class LinearGaussianTask(EntropyTask):
    r"""The linear-Gaussian generator ``x = A z + σ ε``, A (d, k) with N(0, 1/k) entries (fixed seed).

    ``C = A Aᵀ + σ² I``;  ``H = ½ log det(2πe C)``;  ``∇_A H = C⁻¹ A``;  score ``−C⁻¹ x``.
    ``generator`` is a :class:`LinearNoisyGenerator` whose ``A`` carries gradients, so an
    estimator's surrogate can be differentiated w.r.t. A and compared with :meth:`true_gradient`.
    """

    def __init__(self, d: int, k: int | None = None, sigma: float = 0.5, seed: int = 0):
        k = d if k is None else k
        weight = torch.randn(d, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / math.sqrt(k)
        self.generator = LinearNoisyGenerator(weight.float(), sigma)
        self.name, self.shape, self.sigma = f"linear-gauss-d{d}", (d,), sigma
        self.entropy = 0.5 * float(torch.logdet(2 * math.pi * math.e * self.covariance()))

    def covariance(self) -> Tensor:
        a = self.generator.A.detach().double()
        return a @ a.T + self.sigma**2 * torch.eye(a.shape[0], dtype=torch.float64)

    def true_gradient(self) -> Tensor:
        """``∇_A H = C⁻¹ A`` (d, k), float64."""
        return torch.linalg.solve(self.covariance(), self.generator.A.detach().double())

    def score(self, x: Tensor) -> Tensor:
        return -torch.linalg.solve(self.covariance(), x.double().T).T.to(x.dtype)

    def sample(self, n: int) -> Tensor:
        with torch.no_grad():
            return self.generator(self.generator.sample_latent(n))


def value_tasks(dims: tuple[int, ...] = (2, 10, 100)) -> list[EntropyTask]:
    """The value benchmark: Gaussians (iso/aniso), mixtures, uniform box, Student-t, linear-Gaussian."""
    tasks: list[EntropyTask] = []
    for d in dims:
        tasks += [isotropic_gaussian(d), anisotropic_gaussian(d)]
    for d in dims:
        if d <= 10:
            tasks += [ring_mixture(d), uniform_box(d), StudentTTask(d)]
    tasks += [LinearGaussianTask(d) for d in dims]
    return tasks
