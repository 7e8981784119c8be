r"""Gradient penalties on the critic's input gradient ``∇_x U(x)``.

Norms are per sample over ALL non-batch axes (channels and pixels of an image together):
``‖∇_x U(x_i)‖² = Σ_{c,h,w} (∂U(x_i)/∂x_{i,c,h,w})²``.

The critic objective evaluates ``u_real = U(real)`` and ``u_fake = U(fake)`` once, with
``real`` / ``fake`` marked ``requires_grad`` when the penalty's ``needs_real_grad`` /
``needs_fake_grad`` flag says so, and a penalty reuses those energies. Only :class:`WGANGP`
runs a forward of its own (on interpolates). Every penalty returns a scalar already multiplied
by its weight, differentiable w.r.t. the critic's parameters (``create_graph=True``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from einops import rearrange
from torch import Tensor, nn

from mege.errors import MegeError, check


def input_gradient(u: Tensor, x: Tensor) -> Tensor:
    """``∇_x Σ_i U(x_i)`` flattened to (b, d); kept in the graph so a penalty can be backpropagated."""
    if not x.requires_grad:
        raise MegeError("the penalty needs the critic input marked requires_grad before the critic forward; "
                        "set it from penalty.needs_real_grad / needs_fake_grad")
    if not u.requires_grad:
        raise MegeError("the penalty needs energies computed with grad enabled; do not evaluate the critic under no_grad")
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True, allow_unused=True)
    if grad is None:  # U does not depend on x: its gradient is zero
        grad = torch.zeros_like(x)
    return rearrange(grad, "b ... -> b (...)")


def grad_norm_sq(u: Tensor, x: Tensor) -> Tensor:
    """Per-sample ``‖∇_x U(x_i)‖²`` over all non-batch axes, shape (b,)."""
    return input_gradient(u, x).pow(2).sum(dim=1)


class Penalty(nn.Module):
    """Base class: ``forward(critic, real, fake, u_real, u_fake) -> weight · penalty`` (a scalar)."""

    needs_real_grad: ClassVar[bool] = False
    needs_fake_grad: ClassVar[bool] = False

    def __init__(self, weight: float = 0.0):
        super().__init__()
        weight = float(weight)
        check(weight >= 0, f"penalty weight must be non-negative, got {weight}; use penalty=none to switch it off")
        self.weight = weight

    def forward(self, critic: nn.Module, real: Tensor, fake: Tensor, u_real: Tensor, u_fake: Tensor) -> Tensor:
        raise NotImplementedError

    def zero_centred(self, u: Tensor, x: Tensor) -> Tensor:
        """``λ E ‖∇_x U(x)‖²`` over the batch x (0 without a gradient computation when λ = 0)."""
        if self.weight == 0:
            return u.new_zeros(())
        return self.weight * grad_norm_sq(u, x).mean()

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class NoPenalty(Penalty):
    """No penalty: 0."""

    def forward(self, critic, real, fake, u_real, u_fake):
        return u_real.new_zeros(())


class ZeroCentredReal(Penalty):
    """Zero-centred penalty on real samples (the pit bottom is flat): ``λ E_p ‖∇_x U(x)‖²``.

    λ = 10 is the usual default; tune it per experiment.
    """

    needs_real_grad = True

    def __init__(self, weight: float = 10.0):
        super().__init__(weight)

    def forward(self, critic, real, fake, u_real, u_fake):
        return self.zero_centred(u_real, real)


class ZeroCentredFake(Penalty):
    """Zero-centred penalty on generated samples: ``λ E_q ‖∇_x U(x)‖²``."""

    needs_fake_grad = True

    def __init__(self, weight: float = 10.0):
        super().__init__(weight)

    def forward(self, critic, real, fake, u_real, u_fake):
        return self.zero_centred(u_fake, fake)


class WGANGP(Penalty):
    """One-centred penalty on interpolates (Gulrajani et al. 2017): ``λ E (‖∇_x U(x̂)‖ − 1)²``,

    ``x̂ = ε x + (1 − ε) x̃`` with real x, generated x̃ and one ``ε ~ U(0, 1)`` per sample broadcast
    over all its axes. Needs its own critic forward on x̂; uses the first min(n_real, n_fake) pairs.
    """

    def __init__(self, weight: float = 10.0):
        super().__init__(weight)

    def forward(self, critic, real, fake, u_real, u_fake):
        if self.weight == 0:
            return u_real.new_zeros(())
        b = min(real.shape[0], fake.shape[0])
        real, fake = real[:b].detach(), fake[:b].detach()
        eps = torch.rand((b,) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        norm = torch.linalg.vector_norm(input_gradient(critic(x_hat), x_hat), dim=1)
        return self.weight * (norm - 1).pow(2).mean()


class WGANDiv(Penalty):
    """WGAN-div penalty (Wu et al. 2018): ``k E[‖∇_x U(x)‖^p]`` over real and generated samples together,

    i.e. ``k · mean`` of ``(‖∇U‖²)^{p/2}`` over the concatenated batch (= k/2 (E_p + E_q) for equal
    batch sizes). Reuses both critic forwards. ``weight`` is k.
    """

    needs_real_grad = True
    needs_fake_grad = True

    def __init__(self, k: float = 2.0, p: float = 6.0):
        super().__init__(k)
        check(float(p) > 0, f"WGAN-div power p must be positive, got {p}")
        self.p = float(p)

    def forward(self, critic, real, fake, u_real, u_fake):
        if self.weight == 0:
            return u_real.new_zeros(())
        norms_sq = torch.cat([grad_norm_sq(u_real, real), grad_norm_sq(u_fake, fake)])
        return self.weight * norms_sq.pow(self.p / 2).mean()

    def extra_repr(self) -> str:
        return f"k={self.weight}, p={self.p}"
