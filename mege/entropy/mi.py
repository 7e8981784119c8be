r"""Mutual-information bounds on (x, z) pairs, x = G(z).

For a deterministic generator H(X) = I(X; Z) + H(X | Z) with H(X | Z) = −∞ and I(X; Z) = ∞
when dim z < dim x (DESIGN §1), so none of these values is an entropy; maximising the bound
still pushes G towards spreading its mass, which is how Kumar et al. (2019) use it. Each
estimator learns a critic ``T(x, z)`` that tells matched pairs ``(G(z_i), z_i)`` from pairs
with shuffled latents ``(G(z_i), z_π(i))`` (InfoNCE: from all n² pairs). Critic and generator
ascend the same bound: ``surrogate = bound``, ``aux_loss = −bound``.

For a noisy generator x = G(z) + σε the MI is finite and H(X) = I(X; Z) + (d/2) log(2πeσ²),
so ``∇_θ I = ∇_θ H`` for fixed σ: the bounds' gradients target the entropy gradient exactly
(up to the critic's error), which the accuracy study measures on the linear-Gaussian task.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mege.entropy.base import EntropyEstimator, EntropyResult, flatten
from mege.errors import check


class PairCritic(nn.Module):
    """``T(x, z)``: an MLP on the concatenation of the flattened sample and its latent."""

    def __init__(self, x_dim: int, z_dim: int, hidden: int = 256, depth: int = 2):
        super().__init__()
        layers, width = [], x_dim + z_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.net(torch.cat([flatten(x), z], dim=1)).squeeze(1)


class MIEstimator(EntropyEstimator):
    """Shared machinery: scores of matched and shuffled pairs from one critic pass."""

    needs_latents = True

    def __init__(self, x_dim: int, z_dim: int, hidden: int = 256, depth: int = 2):
        super().__init__()
        self.critic = PairCritic(x_dim, z_dim, hidden, depth)

    def pair_scores(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """(T on matched pairs, T on pairs with a random permutation of z)."""
        check(z is not None, f"{type(self).__name__} needs the latents z; call it as estimator(x, z).")
        shuffled = z[torch.randperm(z.shape[0], device=z.device)]
        scores = self.critic(torch.cat([x, x]), torch.cat([z, shuffled]))
        return scores.chunk(2)


class JSMutualInformation(MIEstimator):
    r"""Jensen–Shannon (Deep-InfoMax) bound, as in Kumar et al. 2019.

    ``BCE = E_joint softplus(−T) + E_marginals softplus(T)``;
    ``Î_JS = −BCE`` (a lower bound on 2·JS(p(x,z) ‖ p(x)p(z)) − 2 ln 2 up to the critic's
    optimality). Generator and critic both minimise the same BCE: surrogate = −BCE, aux = BCE.
    The value is an MI bound, not an entropy, so ``value`` is None (DESIGN §1 caveat).
    """

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        joint, marginal = self.pair_scores(x, z)
        bce = F.softplus(-joint).mean() + F.softplus(marginal).mean()
        return EntropyResult(surrogate=-bce, aux_loss=bce, info={"mi_js": -bce})
