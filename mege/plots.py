"""Figures: the energy landscape ("pits") with samples, image sample grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from einops import rearrange  # noqa: E402
from torch import Tensor, nn  # noqa: E402


@torch.no_grad()
def energy_grid(critic: nn.Module, lo: Tensor, hi: Tensor, resolution: int = 200, device=None):
    """U on a ``resolution²`` grid spanning [lo, hi] (2-D data only): (xs, ys, U)."""
    xs = torch.linspace(float(lo[0]), float(hi[0]), resolution)
    ys = torch.linspace(float(lo[1]), float(hi[1]), resolution)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    points = rearrange(torch.stack([gx, gy], dim=-1), "h w d -> (h w) d")
    u = critic(points.to(device)).cpu()
    return xs, ys, rearrange(u, "(h w) -> h w", h=resolution)


def landscape(critic: nn.Module, real: Tensor, fake: Tensor, path: str | Path, title: str = "",
              device=None, chains: Tensor | None = None) -> None:
    """Contour of U(x) with data (black) and generated samples (red); optional MCMC chains (n, T, 2)."""
    both = torch.cat([real, fake]).float()
    lo, hi = both.quantile(0.001, dim=0), both.quantile(0.999, dim=0)
    pad = 0.15 * (hi - lo).clamp_min(1e-3)
    xs, ys, u = energy_grid(critic, lo - pad, hi + pad, device=device)
    fig, ax = plt.subplots(figsize=(6, 6))
    levels = torch.quantile(u.flatten(), torch.linspace(0, 1, 30)).unique().numpy()
    contour = ax.contourf(xs.numpy(), ys.numpy(), u.numpy(), levels=levels if len(levels) > 2 else 30, cmap="viridis")
    fig.colorbar(contour, ax=ax, fraction=0.046, label="U(x)")
    ax.scatter(real[:, 0], real[:, 1], s=2, c="black", alpha=0.5, label="data")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="red", alpha=0.5, label="generated")
    if chains is not None:
        for chain in chains[:50]:
            ax.plot(chain[:, 0], chain[:, 1], lw=0.5, c="white", alpha=0.7)
    ax.set_title(title)
    ax.legend(loc="upper right", markerscale=4)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def sample_grid(images: Tensor, path: str | Path, rows: int = 8, title: str = "") -> None:
    """Grid of images (n, c, h, w) in [−1, 1]; 1 or 3 channels shown as grey or RGB."""
    rows = min(rows, int(len(images) ** 0.5))
    n = rows * rows
    images = ((images[:n].float().cpu().clamp(-1, 1) + 1) / 2)
    if images.shape[1] not in (1, 3):
        images = images[:, :3]
    grid = rearrange(images, "(r c) ch h w -> (r h) (c w) ch", r=rows)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(grid.squeeze(-1).numpy(), cmap="gray" if grid.shape[-1] == 1 else None)
    ax.axis("off")
    ax.set_title(title)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def save_run_figure(critic: nn.Module, real: Tensor, fake: Tensor, path: str | Path, title: str = "", device=None) -> None:
    """Landscape for 2-D data, sample grid for images; nothing for other shapes."""
    if real.dim() == 2 and real.shape[1] == 2:
        landscape(critic, real, fake, path, title, device)
    elif real.dim() == 4:
        sample_grid(fake, path, title=title)
