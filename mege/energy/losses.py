r"""Critic losses on energies (U low on data, high on generated samples).

Each loss has ``critic(u_real (n,), u_fake (m,)) -> scalar`` (minimised by the critic) and
``generator(u_fake (m,)) -> scalar`` (minimised by the generator). Gradient penalties are
separate (:mod:`mege.penalties`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from mege.errors import check


class CriticLoss:
    """Base: the generator rolls its samples downhill, ``E_q U(x)``."""

    def critic(self, u_real: Tensor, u_fake: Tensor) -> Tensor:
        raise NotImplementedError

    def generator(self, u_fake: Tensor) -> Tensor:
        return u_fake.mean()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EnergyDifference(CriticLoss):
    """Wasserstein-style energy difference (dig the pits):

    critic ``= E_p U(x) − E_q U(x)``;  generator ``= E_q U(x)``.
    """

    def critic(self, u_real: Tensor, u_fake: Tensor) -> Tensor:
        return u_real.mean() - u_fake.mean()


class Hinge(CriticLoss):
    """Hinge loss on energies:

    critic ``= E_p max(0, 1 + U(x)) + E_q max(0, 1 − U(x))``;  generator ``= E_q U(x)``.
    """

    def critic(self, u_real: Tensor, u_fake: Tensor) -> Tensor:
        return F.relu(1 + u_real).mean() + F.relu(1 - u_fake).mean()


class MarginHinge(CriticLoss):
    """Margin loss for a non-negative energy (e.g. an autoencoder's reconstruction error):

    critic ``= E_p U(x) + E_q max(0, m − U(x))``;  generator ``= E_q U(x)``.
    """

    def __init__(self, margin: float = 1.0):
        check(margin > 0, f"margin must be positive, got {margin}")
        self.margin = float(margin)

    def critic(self, u_real: Tensor, u_fake: Tensor) -> Tensor:
        return u_real.mean() + F.relu(self.margin - u_fake).mean()

    def __repr__(self) -> str:
        return f"MarginHinge(margin={self.margin})"


class NonSaturating(CriticLoss):
    """Non-saturating GAN loss with discriminator logit ``D = −U`` (σ(D) = P(real)):

    critic ``= E_p softplus(U(x)) + E_q softplus(−U(x))``  (= −E_p ln σ(−U) − E_q ln(1 − σ(−U)));
    generator ``= E_q softplus(U(x))``  (= −E_q ln σ(−U)).
    """

    def critic(self, u_real: Tensor, u_fake: Tensor) -> Tensor:
        return F.softplus(u_real).mean() + F.softplus(-u_fake).mean()

    def generator(self, u_fake: Tensor) -> Tensor:
        return F.softplus(u_fake).mean()
