r"""Mutual-information bounds on (x, z) pairs, x = G(z).

For a deterministic generator H(X) = I(X; Z) + H(X | Z) with H(X | Z) = −∞ and I(X; Z) = ∞
when dim z < dim x (docs/design.md §1), so none of these values is an entropy; maximising the bound
still pushes G towards spreading its mass, which is how Kumar et al. (2019) use it. Each
estimator learns a pair network ``T(x, z)`` that tells matched pairs ``(G(z_i), z_i)`` from pairs
with shuffled latents ``(G(z_i), z_π(i))`` (InfoNCE: from all n² pairs). Pair network and generator
ascend the same bound: ``surrogate = bound``, ``aux_loss = −bound``.

For a noisy generator x = G(z) + σε the MI is finite and H(X) = I(X; Z) + (d/2) log(2πeσ²),
so ``∇_θ I = ∇_θ H`` for fixed σ. Which bounds' gradients target that exactly: NWJ and MINE
(Donsker–Varadhan) are tight at their optimal pair network, so their gradients are ``∇I`` up to the
pair network's error. The JS bound is not: at its optimum it equals 2·JSD − 2 ln 2, a monotone
transform of the dependence, so its gradient only points the same way. SMILE clips the density
ratio (biased towards smaller MI) and InfoNCE is capped at log n, so both saturate once the MI
exceeds what a batch can resolve. The accuracy study measures all of them on the
linear-Gaussian task.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mege.entropy.base import EntropyEstimator, EntropyResult, flatten
from mege.errors import check
from mege.nets import mlp


def _renamed_critic(module, state_dict, prefix, *args) -> None:
    """Checkpoints from before the pair network was named so hold it under ``critic.``."""
    for key in [k for k in state_dict if k.startswith(prefix + "critic.")]:
        state_dict[prefix + "pair." + key[len(prefix + "critic."):]] = state_dict.pop(key)


class PairNetwork(nn.Module):
    """``T(x, z)``: an MLP on the concatenation of the flattened sample and its latent."""

    def __init__(self, x_dim: int, z_dim: int, hidden: int = 256, depth: int = 2):
        super().__init__()
        self.net = mlp(x_dim + z_dim, hidden, depth, 1)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.net(torch.cat([flatten(x), z], dim=1)).squeeze(1)


class MIEstimator(EntropyEstimator):
    """Shared machinery: scores of matched and shuffled pairs from one pair network pass."""

    needs_latents = True

    def __init__(self, x_dim: int, z_dim: int, hidden: int = 256, depth: int = 2):
        super().__init__()
        self.pair = PairNetwork(x_dim, z_dim, hidden, depth)
        self.register_load_state_dict_pre_hook(_renamed_critic)

    def pair_scores(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """(T on matched pairs, T on pairs with a random permutation of z)."""
        check(z is not None, f"{type(self).__name__} needs the latents z; call it as estimator(x, z).")
        shuffled = z[torch.randperm(z.shape[0], device=z.device)]
        scores = self.pair(torch.cat([x, x]), torch.cat([z, shuffled]))
        return scores.chunk(2)


class JSMutualInformation(MIEstimator):
    r"""Jensen–Shannon (Deep-InfoMax) bound, as in Kumar et al. 2019.

    ``BCE = ½ [E_joint softplus(−T) + E_marginals softplus(T)]``: the mean binary cross-entropy
    over the 2n concatenated (matched, shuffled) pairs, MEG's normalisation, so mege's λ_H is the
    paper's λ_H. (Before this normalisation mege used the sum of the two means: an old λ_H of 0.3
    is 0.6 in today's units.) At the optimal pair network ``−2·BCE = 2·JS(p(x,z) ‖ p(x)p(z)) − 2 ln 2``,
    which is monotone in, but not equal to, the mutual information; its gradient is therefore a
    direction towards more MI, not ``∇I``. Generator and pair network both minimise the same BCE:
    surrogate = −BCE, aux = BCE. The value is an MI bound, not an entropy, so ``value`` is None.
    """

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        joint, marginal = self.pair_scores(x, z)
        bce = 0.5 * (F.softplus(-joint).mean() + F.softplus(marginal).mean())
        return EntropyResult(surrogate=-bce, aux_loss=bce, info={"mi_js": -bce})


def log_mean_exp(values: Tensor) -> Tensor:
    """``log (1/n) Σ_i e^{v_i}`` without overflow."""
    return torch.logsumexp(values, dim=0) - math.log(values.shape[0])


class MINE(MIEstimator):
    r"""MINE (Belghazi et al. 2018): the Donsker–Varadhan bound with a moving-average gradient fix.

    ``I(X; Z) ≥ Î_DV = E_joint T − log E_marginals e^T`` (tight at T = log p(x,z)/p(x)p(z) + c).
    The minibatch gradient of ``log E e^T`` is biased; MINE replaces the denominator of
    ``∇ log E e^T = E[e^T ∇T] / E e^T`` by an exponential moving average ``m`` of ``E e^T``
    (rate ``ema_rate``, kept in log space; the first batch sets it). Pair network and generator both
    ascend the corrected objective ``E_joint T − (E_marg e^T / m − 1 + log m)``, which equals
    Î_DV when m = E_marg e^T and has the gradient ``∇E_joint T − ∇E_marg e^T / m``.

    Value: none as an entropy. For a deterministic generator with dim z < dim x, I(X; Z) = ∞ and
    Î_DV is only limited by the pair network (it grows without bound); for a noisy generator
    x = G(z) + σε, H(X) = I(X; Z) + (d/2) log(2πeσ²), so Î_DV + that constant is a lower bound on
    H at the optimal pair network. ``info['mi_dv']`` logs Î_DV.
    """

    def __init__(self, x_dim: int, z_dim: int, hidden: int = 256, depth: int = 2, ema_rate: float = 0.01):
        super().__init__(x_dim, z_dim, hidden, depth)
        check(0 < ema_rate <= 1, f"ema_rate must be in (0, 1], got {ema_rate}")
        self.ema_rate = float(ema_rate)
        self.register_buffer("log_ema", torch.tensor(0.0))
        self.register_buffer("started", torch.tensor(False))

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        joint, marginal = self.pair_scores(x, z)
        log_partition = log_mean_exp(marginal)
        with torch.no_grad():
            batch = log_partition.detach()
            rate = torch.where(self.started, self.ema_rate, 1.0).to(batch)  # the first batch sets m outright
            self.log_ema.copy_(torch.logaddexp(torch.log1p(-rate) + self.log_ema, rate.log() + batch))
            self.started.fill_(True)
        log_m = self.log_ema.detach().clone()
        corrected = joint.mean() - (torch.exp(log_partition - log_m) - 1 + log_m)
        dv = joint.mean() - log_partition
        return EntropyResult(surrogate=corrected, aux_loss=-corrected, info={"mi_dv": dv.detach()})


class NWJ(MIEstimator):
    r"""NWJ / f-GAN KL bound (Nguyen, Wainwright & Jordan 2010; "MINE-f").

    ``I(X; Z) ≥ Î_NWJ = E_joint T − e^{−1} E_marginals e^T`` (tight at T = 1 + log p(x,z)/p(x)p(z)).
    Unbiased minibatch gradients, higher variance than DV. Pair network and generator both ascend it.

    Value: none as an entropy. For a deterministic generator with dim z < dim x the bound is
    finite only because the pair network is (I(X; Z) = ∞); for a noisy generator Î_NWJ +
    (d/2) log(2πeσ²) lower-bounds H at the optimal pair network. ``info['mi_nwj']`` logs Î_NWJ.
    """

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        joint, marginal = self.pair_scores(x, z)
        bound = joint.mean() - torch.exp(log_mean_exp(marginal) - 1)
        return EntropyResult(surrogate=bound, aux_loss=-bound, info={"mi_nwj": bound.detach()})


class SeparablePairNetwork(nn.Module):
    """``T(x, z) = f(x)ᵀ g(z) / √e`` for all pairs at once: (n, n) scores from 2n network passes."""

    def __init__(self, x_dim: int, z_dim: int, hidden: int = 256, depth: int = 2, embed: int = 32):
        super().__init__()
        self.f = mlp(x_dim, hidden, depth, embed)
        self.g = mlp(z_dim, hidden, depth, embed)
        self.scale = embed**-0.5

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.scale * self.f(flatten(x)) @ self.g(z).T


class InfoNCE(EntropyEstimator):
    r"""InfoNCE / CPC bound (van den Oord et al. 2018) with a separable pair network on all n² pairs.

    ``I(X; Z) ≥ Î_NCE = (1/n) Σ_i [T(x_i, z_i) − log (1/n) Σ_j e^{T(x_i, z_j)}]``, which can never
    exceed ``log n``: low variance, high bias when I is large. Pair network and generator both ascend it.

    Value: none as an entropy. For a deterministic generator (I(X; Z) = ∞) it saturates at
    log n once the pair network identifies each sample's latent; the gradient then fades. For a noisy
    generator Î_NCE + (d/2) log(2πeσ²) lower-bounds H. ``info['mi_nce']`` logs Î_NCE.
    """

    needs_latents = True

    def __init__(self, x_dim: int, z_dim: int, hidden: int = 256, depth: int = 2, embed: int = 32):
        super().__init__()
        self.pair = SeparablePairNetwork(x_dim, z_dim, hidden, depth, embed)
        self.register_load_state_dict_pre_hook(_renamed_critic)

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        check(z is not None, "InfoNCE needs the latents z; call it as estimator(x, z).")
        scores = self.pair(x, z)  # (n, n): row i = x_i against every z_j
        bound = (scores.diagonal() - torch.logsumexp(scores, dim=1)).mean() + math.log(scores.shape[0])
        return EntropyResult(surrogate=bound, aux_loss=-bound, info={"mi_nce": bound.detach()})


class SMILE(MIEstimator):
    r"""SMILE (Song & Ermon 2020): DV with the partition function's pair network clipped to ``[−τ, τ]``.

    ``Î_SMILE = E_joint T − log E_marginals e^{clip(T, −τ, τ)}``: clipping bounds the variance of
    the partition term (τ → ∞ recovers DV, a lower bound; finite τ is not a guaranteed bound). As
    in the authors' code, the gradient is that of the Jensen–Shannon objective
    ``E_joint[−softplus(−T)] − E_marginals softplus(T)`` while the value is Î_SMILE
    (``js + stopgrad(smile − js)``).

    Value: none as an entropy; for a deterministic generator I(X; Z) = ∞ and Î_SMILE is limited
    only by the pair network and the clip; for a noisy generator Î_SMILE + (d/2) log(2πeσ²) estimates
    H. ``info['mi_smile']`` logs Î_SMILE.
    """

    def __init__(self, x_dim: int, z_dim: int, hidden: int = 256, depth: int = 2, tau: float = 5.0):
        super().__init__(x_dim, z_dim, hidden, depth)
        check(tau > 0, f"SMILE clip tau must be positive, got {tau}")
        self.tau = float(tau)

    def forward(self, x: Tensor, z: Tensor | None = None, generator: nn.Module | None = None) -> EntropyResult:
        joint, marginal = self.pair_scores(x, z)
        smile = joint.mean() - log_mean_exp(marginal.clamp(-self.tau, self.tau))
        js = -F.softplus(-joint).mean() - F.softplus(marginal).mean()
        objective = js + (smile - js).detach()
        return EntropyResult(surrogate=objective, aux_loss=-objective, info={"mi_smile": smile.detach()})
