"""Critic losses on tiny tensors against hand-computed numbers."""

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mege.energy.losses import EnergyDifference, Hinge, MarginHinge, NonSaturating
from mege.errors import MegeError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "loss"
U_REAL = torch.tensor([-2.0, 0.5, -0.5])
U_FAKE = torch.tensor([3.0, 0.0, -1.5, 0.25])


def softplus(v):
    return math.log1p(math.exp(v))


def test_energy_difference():
    loss = EnergyDifference()
    # mean real = -2/3, mean fake = 1.75/4 = 0.4375
    assert float(loss.critic(U_REAL, U_FAKE)) == pytest.approx(-2 / 3 - 0.4375)
    assert float(loss.generator(U_FAKE)) == pytest.approx(0.4375)


def test_hinge():
    loss = Hinge()
    # relu(1+U_real) = (0, 1.5, 0.5) -> 2/3; relu(1-U_fake) = (0, 1, 2.5, 0.75) -> 4.25/4
    assert float(loss.critic(U_REAL, U_FAKE)) == pytest.approx(2 / 3 + 1.0625)
    assert float(loss.generator(U_FAKE)) == pytest.approx(0.4375)


def test_margin_hinge():
    u_real = torch.tensor([0.0, 0.2, 0.4])
    u_fake = torch.tensor([3.0, 1.0, 0.5])
    loss = MarginHinge(margin=2.0)
    # mean real = 0.2; relu(2 - U_fake) = (0, 1, 1.5) -> 2.5/3
    assert float(loss.critic(u_real, u_fake)) == pytest.approx(0.2 + 2.5 / 3)
    assert float(loss.generator(u_fake)) == pytest.approx(1.5)
    assert float(MarginHinge().critic(u_real, u_fake)) == pytest.approx(0.2 + 0.5 / 3)


def test_nonsaturating():
    loss = NonSaturating()
    critic = sum(softplus(v) for v in U_REAL.tolist()) / 3 + sum(softplus(-v) for v in U_FAKE.tolist()) / 4
    generator = sum(softplus(v) for v in U_FAKE.tolist()) / 4
    assert float(loss.critic(U_REAL, U_FAKE)) == pytest.approx(critic)
    assert float(loss.generator(U_FAKE)) == pytest.approx(generator)
    # it is the binary cross-entropy with logit D = -U (real label 1, fake label 0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert float(loss.critic(U_REAL, U_FAKE)) == pytest.approx(
        float(bce(-U_REAL, torch.ones(3)) + bce(-U_FAKE, torch.zeros(4))))


def test_critic_gradients_push_real_energy_down_and_fake_up():
    for loss in (EnergyDifference(), Hinge(), MarginHinge(margin=5.0), NonSaturating()):
        u_real = torch.tensor([0.1, 0.3], requires_grad=True)
        u_fake = torch.tensor([0.2, 0.4], requires_grad=True)
        loss.critic(u_real, u_fake).backward()
        assert bool((u_real.grad > 0).all()) and bool((u_fake.grad < 0).all()), loss


def test_margin_must_be_positive():
    with pytest.raises(MegeError, match="margin"):
        MarginHinge(margin=0.0)


@pytest.mark.parametrize(("name", "cls"), [("energy_difference", EnergyDifference), ("hinge", Hinge),
                                           ("margin", MarginHinge), ("nonsaturating", NonSaturating)])
def test_configs_instantiate(name, cls):
    assert isinstance(instantiate(OmegaConf.load(CONFIGS / f"{name}.yaml")), cls)
