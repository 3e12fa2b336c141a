"""Pictures of a 2-D GAN: generated points over the target, with D's surface as contours.

The discriminator's (or critic's) output over the plane is what G climbs; drawing it under the
points shows why a run moves the way it does. Probabilities are drawn on [0, 1]; a critic's
raw scores are drawn on their own range (their level is arbitrary). Figures are built on
``matplotlib.figure.Figure`` directly (no pyplot state), like the rest of ganscope's plots.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from ganscope.io import atomic_write_bytes
from ganscope.models import eval_mode

GRID = 120  # contour resolution per axis


def plot_extent(target: np.ndarray, margin: float = 0.25) -> tuple[float, float, float, float]:
    """A square window around the target (robust to a few outliers), shared by all panels."""
    lo = np.percentile(target, 0.5, axis=0)
    hi = np.percentile(target, 99.5, axis=0)
    c, r = (lo + hi) / 2, float((hi - lo).max()) / 2 * (1 + margin) + 1e-6
    return float(c[0] - r), float(c[0] + r), float(c[1] - r), float(c[1] + r)


@torch.no_grad()
def d_surface(D: nn.Module, extent: Sequence[float], n: int = GRID
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.linspace(extent[0], extent[1], n, dtype=np.float32)
    ys = np.linspace(extent[2], extent[3], n, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    with eval_mode(D):
        dev = next(D.parameters()).device
        z = D(pts.to(dev)).float().cpu().numpy().reshape(n, n)
    return gx, gy, z


def draw_cell(ax: Axes, target: np.ndarray, fake: np.ndarray, *, D: nn.Module | None = None,
              probability: bool = True, extent: Sequence[float] | None = None,
              title: str = "", max_points: int = 2000) -> None:
    ext = tuple(extent) if extent is not None else plot_extent(target)
    if D is not None:
        gx, gy, z = d_surface(D, ext)
        levels = np.linspace(0, 1, 11) if probability else 12
        cs = ax.contourf(gx, gy, z, levels=levels, cmap="RdBu_r", alpha=0.35)
        ax.contour(gx, gy, z, levels=cs.levels, colors="0.5", linewidths=0.3, alpha=0.5)
    t = target[:max_points]
    f = fake[:max_points]
    ax.scatter(t[:, 0], t[:, 1], s=3, c="0.35", alpha=0.5, lw=0, label="target")
    ax.scatter(f[:, 0], f[:, 1], s=3, c="tab:orange", alpha=0.7, lw=0, label="generated")
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="small")


def snapshot_figure(target: np.ndarray, fake: np.ndarray, D: nn.Module | None,
                    probability: bool, title: str) -> Figure:
    fig = Figure(figsize=(4.2, 4.4), layout="constrained")
    ax = fig.subplots()
    draw_cell(ax, target, fake, D=D, probability=probability, title=title)
    ax.legend(loc="upper right", fontsize="x-small", markerscale=3, framealpha=0.8)
    return fig


def save_gif(frames: Sequence[Path], out: Path, ms_per_frame: int = 250) -> Path:
    """An animated GIF from PNG frames (same size), written atomically; loops forever."""
    imgs = [Image.open(p).convert("RGB") for p in frames]
    if not imgs:
        raise ValueError("no frames to animate")
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:],
                 duration=ms_per_frame, loop=0)
    atomic_write_bytes(out, buf.getvalue())
    return out


def run_gif(run) -> Path | None:
    """``figures/training.gif`` from a point run's per-epoch snapshots (None without any)."""
    frames = [run.sample_grid(e) for e in run.sample_epochs()]
    return save_gif(frames, run.figures / "training.gif") if frames else None
