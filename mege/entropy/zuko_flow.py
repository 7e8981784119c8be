r"""Flow-based entropy on zuko: masked autoregressive flows (MAF) and neural spline flows (NSF).

The same estimator as :mod:`mege.entropy.flow` (pyro's coupling flows), with the density built
on `zuko <https://github.com/probabilists/zuko>`_, which the Pyro team points to now that pyro's
own normalising-flow API is no longer developed. The contract is the pyro flows' one:

* ``value = −(1/n) Σ_i log q(x_i)``, the cross-entropy ``H(p, q) = H(p) + KL(p ‖ q)``: an upper
  bound on H when the x_i were not used to fit q (the entropy term fits on the same batch, so the
  logged value is slightly optimistic; the accuracy study evaluates on fresh samples);
* ``aux_loss`` = the same NLL, fitted online (``fit_steps`` steps per generator step on the
  detached batch, then one from the joint step);
* the entropy gradient is the score surrogate with ``ŝ(x) = ∇_x log q(x)``.

The density is ``q(x) = q_y(L⁻¹(x − μ)) / |det L|``: a fixed whitening by running estimates of the
mean and covariance (Cholesky factor L; per-coordinate std with ``whiten=False``), then a zuko
flow ``q_y`` on standard-normal base. Every transform starts as the identity (the last layer of
each masked hypernetwork zeroed: zuko's affine map is then ``exp(0)·y + 0`` and its spline has
uniform bins and unit knot slopes on ``[−5, 5]``; at d = 1 zuko's element-wise transform has free
parameters instead, zeroed the same way), so the initial q is the Gaussian of the running
moments. Unlike coupling flows, autoregressive flows need no second coordinate: d = 1 works.
Density evaluation (all this estimator needs) is one pass of each masked network; sampling,
which would take d passes, is never used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mege.entropy.flow import FlowEntropy, update_running_moments
from mege.errors import check

try:
    import zuko
    from zuko.flows.gaussianization import ElementWiseTransform
except ImportError:  # an optional dependency: the error names the extra when a flow is built
    zuko = None


class ZukoFlow(nn.Module):
    """Density ``q(x)`` on flattened x (n, d): whitening, then a zuko flow built by :meth:`build`.

    ``transforms`` autoregressive transforms (zuko alternates the feature order between them),
    each with a masked MLP of ``hidden`` units per layer (``depth`` layers). Running statistics
    update (momentum ``momentum``) in :meth:`update_statistics`, as in the pyro flows.
    """

    def __init__(self, dim: int, transforms: int = 3, hidden: int = 64, depth: int = 2, whiten: bool = True,
                 momentum: float = 0.05):
        super().__init__()
        check(zuko is not None, "the zuko flows need the zuko package: pip install 'mege[flows]' (or pip install zuko).")
        check(dim >= 1 and transforms >= 1 and hidden >= 1 and depth >= 1,
              f"zuko flows need dim, transforms, hidden and depth ≥ 1 (got {dim}, {transforms}, {hidden}, {depth}).")
        self.dim, self.whiten, self.momentum = dim, whiten, momentum
        self.flow = self.build(dim, transforms, [hidden] * depth)
        with torch.no_grad():  # every transform starts as the identity: its parameters' source zeroed
            for module in self.flow.modules():
                if isinstance(module, zuko.nn.MaskedMLP):  # d ≥ 2: the hypernetwork's last layer
                    last = [m for m in module if isinstance(m, nn.Linear)][-1]
                    last.weight.zero_()
                    last.bias.zero_()
                elif isinstance(module, ElementWiseTransform) and hasattr(module, "phi"):  # d = 1: free parameters
                    for p in module.phi:
                        p.zero_()
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_cov", torch.eye(dim))
        self.register_buffer("initialised", torch.tensor(False))

    def build(self, dim: int, transforms: int, hidden: list[int]) -> zuko.flows.Flow:
        raise NotImplementedError

    def update_statistics(self, x: Tensor) -> None:
        """Exponential moving averages of the mean and covariance (set outright on the first call)."""
        update_running_moments(self, x)

    def whitened(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(y, log|det L|)`` with ``y = L⁻¹(x − μ)``, so ``log q(x) = log q_y(y) − log|det L|``."""
        cov = self.running_cov.to(x.dtype)
        centred = x - self.running_mean.to(x.dtype)
        jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12)
        if self.whiten:
            eye = torch.eye(self.dim, dtype=cov.dtype, device=cov.device)
            chol = torch.linalg.cholesky(cov + jitter * eye)
            y = torch.linalg.solve_triangular(chol, centred.T, upper=False).T
            return y, chol.diagonal().log().sum()
        std = (cov.diagonal() + jitter).sqrt()
        return centred / std, std.log().sum()

    def log_prob(self, x: Tensor) -> Tensor:
        y, log_det = self.whitened(x)
        return self.flow().log_prob(y) - log_det


class MAFFlow(ZukoFlow):
    """Masked autoregressive flow (Papamakarios et al. 2017; ``zuko.flows.MAF``): affine transforms."""

    def build(self, dim: int, transforms: int, hidden: list[int]) -> zuko.flows.Flow:
        return zuko.flows.MAF(dim, transforms=transforms, hidden_features=hidden)


class NSFFlow(ZukoFlow):
    """Neural spline flow (Durkan et al. 2019; ``zuko.flows.NSF``): autoregressive rational-quadratic
    splines with ``bins`` bins on ``[−5, 5]`` (linear tails outside), fully autoregressive by default,
    coupling with ``passes=2``."""

    def __init__(self, dim: int, transforms: int = 3, hidden: int = 64, depth: int = 2, bins: int = 8,
                 passes: int | None = None, whiten: bool = True, momentum: float = 0.05):
        check(bins >= 2, f"a spline needs at least 2 bins (got bins={bins}).")
        self.bins, self.passes = bins, passes
        super().__init__(dim, transforms, hidden, depth, whiten, momentum)

    def build(self, dim: int, transforms: int, hidden: list[int]) -> zuko.flows.Flow:
        return zuko.flows.NSF(dim, transforms=transforms, bins=self.bins, passes=self.passes,
                              hidden_features=hidden)


class ZukoFlowEntropy(FlowEntropy):
    """Cross-entropy of the batch under an online-fitted zuko flow: an upper bound on H.

    :class:`mege.entropy.flow.FlowEntropy` with a :class:`ZukoFlow` density: ``value`` = NLL of the
    batch, ``aux_loss`` = the same NLL (the flow's training loss), surrogate = score surrogate with
    ``ŝ = ∇_x log q``; running statistics update in training mode only.
    """

    def __init__(self, flow: ZukoFlow, fit_steps: int = 1):
        super().__init__(flow, fit_steps)
