"""DCGAN critic (mege/energy/conv.py) and DCGAN generator (mege/generators.py), both profiles."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mege.config import config_dir
from mege.energy.conv import DCGANCritic
from mege.errors import MegeError
from mege.generators import DCGANGenerator


def test_critic_shapes_and_flattened_input():
    torch.manual_seed(0)
    critic = DCGANCritic(n_channels=3, width=8)
    x = torch.randn(5, 3, 28, 28)
    u = critic(x)
    assert u.shape == (5,)
    assert critic.features(x).shape == (5, 64, 2, 2)  # 28 → 14 → 7 → 4 → 2, width 8w
    assert torch.allclose(critic(x.reshape(5, -1)), u, atol=1e-6)
    with pytest.raises(MegeError, match="expects \\(n, 3, 28, 28\\)"):
        critic(torch.randn(2, 1, 28, 28))


def test_critic_paper_profile_layers():
    critic = DCGANCritic(n_channels=3, width=64)
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 64, (5, 5), (2, 2)), (64, 128, (5, 5), (2, 2)), (128, 256, (5, 5), (2, 2)), (256, 512, (5, 5), (2, 2))]
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules())


def test_critic_energies_are_per_sample():
    """No coupling across the batch (the gradient penalty needs per-sample energies):
    ∂U_i/∂x_j = 0 for i ≠ j."""
    torch.manual_seed(1)
    critic = DCGANCritic(n_channels=3, width=4)
    x = torch.randn(3, 3, 28, 28, requires_grad=True)
    grad = torch.autograd.grad(critic(x)[0], x)[0]
    assert grad[0].abs().sum() > 0 and grad[1:].abs().sum() == 0


def test_generator_output():
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=16, n_channels=3, width=4)
    z = g.sample_latent(6)
    assert z.shape == (6, 16) and g.latent_dim == 16
    with torch.no_grad():
        x = g(z)
    assert x.shape == (6, 3, 28, 28) and float(x.abs().max()) <= 1
    assert torch.isfinite(x).all()


def test_generator_paper_profile_seed_and_upsampling():
    g = DCGANGenerator(z_dim=128, n_channels=3, width=64)
    assert g.seed.out_features == 2 * 2 * 512
    sizes, h = [], torch.zeros(2, 512, 2, 2)
    for layer in g.net:
        h = layer(h)
        if isinstance(layer, torch.nn.ConvTranspose2d):
            sizes.append((h.shape[1], h.shape[2]))
    assert sizes == [(256, 4), (128, 7), (64, 14), (3, 28)]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules()) == 4


@pytest.mark.parametrize("profile,width", [("paper", 64), ("cpu", 16)])
def test_profile_configs_instantiate(profile, width):
    root = OmegaConf.create({"z_dim": 8})
    gen_cfg = OmegaConf.merge(root, {"g": OmegaConf.load(config_dir() / "generator" / f"dcgan_{profile}.yaml")})
    critic = instantiate(OmegaConf.load(config_dir() / "energy" / f"dcgan_{profile}.yaml"))
    g = instantiate(gen_cfg.g)
    assert isinstance(g, DCGANGenerator) and g.width == width and g.latent_dim == 8
    assert isinstance(critic, DCGANCritic) and critic.features[0].out_channels == width
    x = g(g.sample_latent(2))
    assert critic(x).shape == (2,)
