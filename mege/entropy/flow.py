r"""Flow-based entropy: a normalising flow q fitted online to the generated samples.

For any density q, the cross-entropy upper-bounds the entropy:

    H(p) ≤ H(p, q) = −E_{x~p} log q(x),   with equality iff q = p (the gap is KL(p ‖ q)).

So ``value = −(1/n) Σ_i log q(x_i)`` is an upper bound on H (in expectation) *when the x_i are
fresh*, i.e. were not used to fit q. The entropy term (mege.entropy.term) fits q on the same batch (``fit_steps`` steps of
``aux_loss = −mean log q(x.detach())`` before the joint step), which makes the logged value
slightly optimistic; the accuracy study evaluates on fresh samples.

The entropy gradient uses the flow's score ``ŝ(x) = ∇_x log q(x)`` (autograd through the flow,
no gradient into the flow's parameters) in the score surrogate of :mod:`mege.entropy.base`.

The flow is pyro's coupling transforms (affine or spline), alternating with reversals of the
coordinates, on top of a fixed whitening ``y = L⁻¹(x − μ)`` by running estimates of the mean
and covariance (Cholesky factor L; per-coordinate std when ``whiten=False``), so that the inputs
of the couplings are standardised and the splines' ``[−bound, bound]`` box holds the bulk.
Every coupling starts as the identity (its hypernetwork's last layer zeroed; splines with
uniform bins and unit knot slopes), so the initial q is the Gaussian of the running moments and
training only adds what the whitening misses. A Gaussian p is fitted exactly by the whitening alone.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import pyro.distributions.transforms as T
import torch
from torch import Tensor, nn
from torch.distributions.transforms import AffineTransform

from mege.entropy.base import EntropyEstimator, EntropyResult, flatten, score_surrogate
from mege.errors import check



@torch.no_grad()
def update_running_moments(flow: nn.Module, x: Tensor) -> None:
    """``μ ← lerp(μ, mean(x), r)``, ``Σ ← lerp(Σ, cov(x), r)`` on ``flow``'s ``running_mean`` /
    ``running_cov`` buffers, with ``r = flow.momentum`` (r = 1 on the first call); shared by the
    pyro and zuko flows, whose whitening reads these buffers."""
    mean = x.mean(dim=0)
    centred = x - mean
    cov = centred.T @ centred / max(x.shape[0] - 1, 1)
    rate = 1.0 if not bool(flow.initialised) else flow.momentum
    flow.running_mean.lerp_(mean, rate)
    flow.running_cov.lerp_(cov, rate)
    flow.initialised.fill_(True)

class CouplingFlow(nn.Module):
    """Density ``q(x)``: whitening, then ``layers`` couplings (each followed by a reversal).

    Subclasses build one coupling in :meth:`coupling`. ``log_prob(x)`` for flattened x (n, d).
    Running statistics update (momentum ``momentum``) in :meth:`update_statistics`.
    """

    def __init__(self, dim: int, layers: int = 4, hidden: int = 64, whiten: bool = True, momentum: float = 0.05):
        super().__init__()
        check(dim >= 2, f"coupling flows need at least 2 dimensions, got x_dim = {dim}")
        self.dim, self.whiten, self.momentum = dim, whiten, momentum
        self.couplings = nn.ModuleList(self.coupling(dim, hidden) for _ in range(layers))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_cov", torch.eye(dim))
        self.register_buffer("initialised", torch.tensor(False))

    def coupling(self, dim: int, hidden: int) -> T.TransformModule:
        raise NotImplementedError

    def update_statistics(self, x: Tensor) -> None:
        """Exponential moving averages of the mean and covariance (set outright on the first call)."""
        update_running_moments(self, x)

    def _whitening(self) -> T.Transform:
        """The map from whitened y to x: ``x = μ + L y`` (L Cholesky of the running covariance)."""
        cov = self.running_cov
        jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12)
        if self.whiten:
            eye = torch.eye(self.dim, dtype=cov.dtype, device=cov.device)
            return T.LowerCholeskyAffine(self.running_mean, torch.linalg.cholesky(cov + jitter * eye))
        return AffineTransform(self.running_mean, (cov.diagonal() + jitter).sqrt(), event_dim=1)

    def distribution(self) -> dist.TransformedDistribution:
        mean = self.running_mean
        base = dist.Normal(torch.zeros_like(mean), torch.ones_like(mean)).to_event(1)
        flip = T.Permute(torch.arange(self.dim - 1, -1, -1, device=mean.device))
        transforms: list[T.Transform] = []
        for coupling in self.couplings:
            transforms += [coupling, flip]
        return dist.TransformedDistribution(base, transforms + [self._whitening()])

    def log_prob(self, x: Tensor) -> Tensor:
        return self.distribution().log_prob(x)


def _last_layer(hypernet: nn.Module) -> nn.Linear:
    return [m for m in hypernet.modules() if isinstance(m, nn.Linear)][-1]


class AffineCouplingFlow(CouplingFlow):
    """Real-NVP style affine couplings (pyro ``affine_coupling``), MLP width ``hidden``; identity at start."""

    def coupling(self, dim: int, hidden: int) -> T.TransformModule:
        coupling = T.affine_coupling(dim, hidden_dims=[hidden, hidden])
        last = _last_layer(coupling.nn)
        with torch.no_grad():  # shift 0, log-scale 0
            last.weight.zero_()
            last.bias.zero_()
        return coupling


class SplineCouplingFlow(CouplingFlow):
    """Neural-spline couplings (pyro ``spline_coupling``): ``bins`` rational-quadratic pieces on ``[−bound, bound]``."""

    def __init__(self, dim: int, layers: int = 4, hidden: int = 64, bins: int = 8, bound: float = 4.0,
                 whiten: bool = True, momentum: float = 0.05):
        self.bins, self.bound = bins, bound
        super().__init__(dim, layers, hidden, whiten, momentum)

    def coupling(self, dim: int, hidden: int) -> T.TransformModule:
        coupling = T.spline_coupling(dim, hidden_dims=[hidden, hidden], count_bins=self.bins, bound=self.bound)
        unit_slope = math.log(math.e - 1)  # softplus⁻¹(1)
        lower, last = coupling.lower_spline, _last_layer(coupling.upper_spline.nn)
        upper = dim - coupling.split_dim
        with torch.no_grad():  # uniform bins (zero logits), unit knot derivatives: the identity map
            lower.unnormalized_widths.zero_()
            lower.unnormalized_heights.zero_()
            lower.unnormalized_derivatives.fill_(unit_slope)
            last.weight.zero_()
            last.bias.zero_()
            start = 2 * upper * self.bins  # hypernet outputs: widths, heights, derivatives, lambdas
            last.bias[start : start + upper * (self.bins - 1)] = unit_slope
        return coupling


class FlowEntropy(EntropyEstimator):
    """Cross-entropy of the batch under an online-fitted flow: an upper bound on H (see module doc).

    ``aux_loss`` = NLL of the detached batch (the flow's training loss); surrogate = score
    surrogate with ``ŝ = ∇_x log q``. ``fit_steps`` extra flow steps per generator step.
    Running statistics update only in training mode.
    """

    gives_value = True
    value_bound = "upper"

    def __init__(self, flow: CouplingFlow, fit_steps: int = 1):
        super().__init__()
        self.flow, self.fit_steps = flow, int(fit_steps)

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        x_flat = flatten(x)
        leaf = x_flat.detach().requires_grad_(True)
        if self.training:
            self.flow.update_statistics(leaf.detach())
        with torch.enable_grad():
            log_q = self.flow.log_prob(leaf)
            (score,) = torch.autograd.grad(log_q.sum(), leaf, retain_graph=True)
        nll = -log_q.mean()
        return EntropyResult(surrogate=score_surrogate(x, score), value=nll.detach(), aux_loss=nll,
                             info={"flow_nll": nll.detach()})
