r"""The two objectives of the energy view.

Critic (digging, eq. 1–2):   ``L_U = loss.critic(U(x_real), U(x_fake)) + penalty``, e.g.
``E_p U(x) − E_q U(x) + λ E_p ‖∇_x U(x)‖²``.

Generator (jumping with maximum entropy, eq. 3–4):  ``L_G = loss.generator(U(G(z))) − λ_H · Ĥ``
where Ĥ is the estimator's surrogate (its gradient is the entropy gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mege.entropy.base import EntropyEstimator, EntropyResult
from mege.entropy.term import EntropyTerm


@dataclass
class CriticStep:
    loss: Tensor
    energy_loss: Tensor
    penalty: Tensor
    u_real: Tensor
    u_fake: Tensor


def critic_objective(critic: nn.Module, loss, penalty, real: Tensor, fake: Tensor,
                     joint_forward: bool = False, penalty_scale: float = 1.0) -> CriticStep:
    """``L_U = loss.critic(U(x), U(x̃)) + penalty``; the energies are computed once and shared by loss and penalty.

    ``joint_forward=False`` (the default, fastest on CPU): one forward of the real batch and one of
    the fake batch. The input gradient ``∇_x U`` of a real-sample penalty then runs through the
    real rows only; with ``joint_forward=True`` the real and fake batches go through the critic as
    one concatenated batch (fewer kernel launches, the better choice where launches dominate, e.g.
    small MLPs on a GPU) but ``∇_x U`` and its double backward run over all 2n rows, half of them
    zero. The value and the gradient are the same either way.

    ``penalty_scale`` is lazy regularisation (StyleGAN2): with the penalty applied every k-th
    critic step, those steps pass ``penalty_scale = k`` and the others ``0`` (no input gradient is
    taken), so the penalty's expected gradient per step is unchanged and k − 1 of every k double
    backwards are saved.
    """
    active = penalty_scale != 0
    real = real.detach().requires_grad_(penalty.needs_real_grad and active)
    fake = fake.detach().requires_grad_(penalty.needs_fake_grad and active)
    if joint_forward:
        u_real, u_fake = critic(torch.cat([real, fake])).split([real.shape[0], fake.shape[0]])
    else:
        u_real, u_fake = critic(real), critic(fake)
    energy_loss = loss.critic(u_real, u_fake)
    if active:
        pen = penalty(critic, real, fake, u_real, u_fake)
        pen = pen if penalty_scale == 1 else pen * penalty_scale
    else:
        pen = energy_loss.new_zeros(())
    return CriticStep(energy_loss + pen, energy_loss, pen, u_real, u_fake)


@dataclass
class GeneratorStep:
    loss: Tensor
    energy: Tensor
    entropy: EntropyResult


def generator_objective(critic: nn.Module, loss, entropy: EntropyTerm | EntropyEstimator, lambda_h: float,
                        generator: nn.Module, z: Tensor) -> GeneratorStep:
    """``L_G = loss.generator(U(G(z))) − λ_H · surrogate`` for one batch of latents.

    ``entropy`` is an :class:`~mege.entropy.term.EntropyTerm` (or a bare estimator, wrapped in one).
    """
    term = entropy if isinstance(entropy, EntropyTerm) else EntropyTerm(entropy)
    x = generator(z)
    energy = loss.generator(critic(x))
    entropy = term.estimate(x, z, generator)
    return GeneratorStep(energy - lambda_h * entropy.surrogate, energy, entropy)
