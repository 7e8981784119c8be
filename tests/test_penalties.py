"""Gradient penalties against closed-form gradients of linear and quadratic critics."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from mege.errors import MegeError
from mege.penalties import WGANGP, NoPenalty, WGANDiv, ZeroCentredFake, ZeroCentredReal, grad_norm_sq

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "penalty"


class Linear(nn.Module):
    """U(x) = Σ a ⊙ x over all non-batch axes."""

    def __init__(self, a):
        super().__init__()
        self.a = nn.Parameter(torch.as_tensor(a, dtype=torch.float32))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return (self.a * x).flatten(1).sum(dim=1)


class Quadratic(nn.Module):
    """U(x) = ½ c ‖x‖²: ∇U = c x."""

    def __init__(self, c=1.0):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(float(c)))
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return 0.5 * self.c * x.flatten(1).pow(2).sum(dim=1)


def energies(critic, penalty, real, fake):
    """What the critic objective does: one forward each, inputs marked by the penalty's flags."""
    real = real.detach().requires_grad_(penalty.needs_real_grad)
    fake = fake.detach().requires_grad_(penalty.needs_fake_grad)
    return real, fake, critic(real), critic(fake)


def evaluate(critic, penalty, real, fake):
    return penalty(critic, *energies(critic, penalty, real, fake))


def test_zero_centred_real_on_a_linear_critic_is_lambda_norm_a_squared():
    critic = Linear([3.0, -4.0])
    value = evaluate(critic, ZeroCentredReal(weight=2.0), torch.randn(5, 2), torch.randn(7, 2))
    assert float(value.detach()) == pytest.approx(2.0 * 25.0)


def test_zero_centred_real_is_per_sample_on_a_quadratic_critic():
    real = torch.tensor([[1.0, 0.0], [1.0, 2.0], [0.0, 3.0]])
    value = evaluate(Quadratic(), ZeroCentredReal(weight=10.0), real, torch.zeros(3, 2))
    assert float(value.detach()) == pytest.approx(10.0 * (1 + 5 + 9) / 3)  # mean of ‖x‖² per sample
    x = real.clone().requires_grad_()
    assert grad_norm_sq(Quadratic(c=2.0)(x), x).tolist() == pytest.approx([4.0, 20.0, 36.0])


def test_zero_centred_fake_uses_the_fake_batch():
    penalty = ZeroCentredFake(weight=1.0)
    assert penalty.needs_fake_grad and not penalty.needs_real_grad
    fake = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    value = evaluate(Quadratic(), penalty, torch.full((2, 2), 100.0), fake)
    assert float(value.detach()) == pytest.approx((4 + 0) / 2)


def test_image_norm_covers_channels_and_pixels():
    torch.manual_seed(0)
    w = torch.randn(3, 4, 5)
    critic = Linear(w)
    real = torch.randn(6, 3, 4, 5)
    value = evaluate(critic, ZeroCentredReal(weight=10.0), real, torch.randn(6, 3, 4, 5))
    full = 10.0 * float(w.pow(2).sum())
    assert float(value.detach()) == pytest.approx(full, rel=1e-5)
    # the peer bug: norm over the channel axis only, averaged over pixels, is ‖w‖²/(h·w)
    channel_only = 10.0 * float(w.pow(2).sum(dim=0).mean())
    assert abs(float(value.detach()) - channel_only) > 0.5 * full


def test_wgan_gp_on_a_linear_critic_is_lambda_norm_minus_one_squared():
    critic = Linear([3.0, -4.0, 0.0])
    value = evaluate(critic, WGANGP(weight=10.0), torch.randn(8, 3), torch.randn(8, 3))
    assert float(value.detach()) == pytest.approx(10.0 * (5.0 - 1.0) ** 2)


def test_wgan_gp_interpolates_with_one_epsilon_per_sample_over_all_axes():
    torch.manual_seed(3)
    critic = Quadratic()
    real, fake = torch.zeros(16, 2, 3, 3), torch.ones(16, 2, 3, 3)
    real_, fake_, u_real, u_fake = energies(critic, WGANGP(weight=1.0), real, fake)
    critic.inputs.clear()
    value = WGANGP(weight=1.0)(critic, real_, fake_, u_real, u_fake)
    (x_hat,) = critic.inputs  # exactly one extra forward, on the interpolates
    one_minus_eps = x_hat.flatten(1)
    assert torch.equal(one_minus_eps, one_minus_eps[:, :1].expand_as(one_minus_eps))  # same ε on every axis
    assert bool(((one_minus_eps > 0) & (one_minus_eps < 1)).all())
    assert one_minus_eps[:, 0].unique().numel() == 16  # a different ε per sample
    # ∇U(x̂) = x̂ = (1−ε)·1, so ‖∇U‖ = (1−ε)·√18
    expected = ((one_minus_eps[:, 0] * 18 ** 0.5 - 1) ** 2).mean()
    assert float(value.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_wgan_div_on_a_quadratic_critic():
    c, k, p = 0.5, 2.0, 6.0
    real = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    fake = torch.tensor([[0.0, 3.0], [1.0, 0.0], [0.0, 0.0]])
    value = evaluate(Quadratic(c), WGANDiv(k=k, p=p), real, fake)
    norms = [2 ** 0.5, 2.0, 3.0, 1.0, 0.0]  # ‖∇U‖ = c‖x‖
    expected = k * sum((c * n) ** p for n in norms) / 5
    assert float(value.detach()) == pytest.approx(expected)


def test_zero_centred_real_does_not_call_the_critic_again():
    critic = Linear([1.0, 2.0])
    penalty = ZeroCentredReal()
    args = energies(critic, penalty, torch.randn(4, 2), torch.randn(4, 2))
    assert critic.calls == 2
    for reuse in (penalty, ZeroCentredFake(), WGANDiv(), NoPenalty()):
        fresh = energies(critic, reuse, torch.randn(4, 2), torch.randn(4, 2))
        calls = critic.calls
        reuse(critic, *fresh)
        assert critic.calls == calls, type(reuse).__name__
    penalty(critic, *args)
    assert critic.calls == 2 + 8


def test_gradients_flow_to_critic_parameters():
    # λ‖a‖² has gradient 2λa w.r.t. a; λ(‖a‖−1)² has gradient 2λ(‖a‖−1) a/‖a‖
    critic = Linear([3.0, -4.0])
    evaluate(critic, ZeroCentredReal(weight=0.5), torch.randn(4, 2), torch.randn(4, 2)).backward()
    assert critic.a.grad.tolist() == pytest.approx([3.0, -4.0])
    critic.a.grad = None
    evaluate(critic, WGANGP(weight=1.0), torch.randn(4, 2), torch.randn(4, 2)).backward()
    assert critic.a.grad.tolist() == pytest.approx([2 * 4 * 3 / 5, 2 * 4 * -4 / 5])


def test_penalties_work_on_a_joint_forward_of_real_and_fake():
    # the critic objective may run one forward on cat([real, fake]) and split the energies
    critic = Quadratic()
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).requires_grad_()
    fake = torch.tensor([[3.0, 0.0]]).requires_grad_()
    u_real, u_fake = critic(torch.cat([real, fake])).split([2, 1])
    assert float(WGANDiv(k=1.0, p=2.0)(critic, real, fake, u_real, u_fake).detach()) == pytest.approx((1 + 4 + 9) / 3)
    assert float(ZeroCentredReal(weight=1.0)(critic, real, fake, u_real, u_fake).detach()) == pytest.approx(2.5)


def test_no_penalty_is_zero_and_weight_zero_skips_the_gradient():
    critic = Linear([3.0, -4.0])
    assert float(evaluate(critic, NoPenalty(), torch.randn(2, 2), torch.randn(2, 2)).detach()) == 0.0
    assert float(ZeroCentredReal(weight=0.0)(critic, torch.randn(2, 2), None, critic(torch.randn(2, 2)), None).detach()) == 0.0


def test_flags_and_errors():
    assert ZeroCentredReal.needs_real_grad and not ZeroCentredReal.needs_fake_grad
    assert WGANDiv.needs_real_grad and WGANDiv.needs_fake_grad
    assert not WGANGP.needs_real_grad and not WGANGP.needs_fake_grad
    with pytest.raises(MegeError, match="non-negative"):
        ZeroCentredReal(weight=-1.0)
    critic = Linear([1.0, 1.0])
    real = torch.randn(3, 2)  # not marked requires_grad
    with pytest.raises(MegeError, match="requires_grad"):
        ZeroCentredReal()(critic, real, real, critic(real), critic(real))


@pytest.mark.parametrize(("name", "cls"), [("none", NoPenalty), ("real_zero", ZeroCentredReal),
                                           ("fake_zero", ZeroCentredFake), ("wgan_gp", WGANGP),
                                           ("wgan_div", WGANDiv)])
def test_configs_instantiate(name, cls):
    penalty = instantiate(OmegaConf.load(CONFIGS / f"{name}.yaml"))
    assert isinstance(penalty, cls)
    if name == "real_zero":  # the toy default measured best on grid-25 (experiments/demo/tuning.md)
        assert penalty.weight == 0.1
