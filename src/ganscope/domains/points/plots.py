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


def widened(extent: Sequence[float], fake: np.ndarray, max_zoom: float = 4.0
             ) -> tuple[float, float, float, float]:
    """The target's square window, widened about its centre until it holds the 1st..99th
    percentiles of the generated points (at most ``max_zoom`` times as wide).

    Why: a generator whose points left the target's frame used to give an empty panel, which
    reads as "no output" rather than "output elsewhere". Points still beyond the widened
    window are drawn on its edge (see ``draw_cell``).
    """
    x0, x1, y0, y1 = (float(v) for v in extent)
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2
    f = fake[np.isfinite(fake).all(axis=1)]
    if len(f) == 0:
        return x0, x1, y0, y1
    lo, hi = np.percentile(f, 1, axis=0), np.percentile(f, 99, axis=0)
    reach = max(abs(lo[0] - cx), abs(hi[0] - cx), abs(lo[1] - cy), abs(hi[1] - cy)) * 1.05
    if reach <= r:
        return x0, x1, y0, y1
    r2 = min(reach, r * max_zoom)
    return cx - r2, cx + r2, cy - r2, cy + r2


def draw_modes(ax: Axes, modes: np.ndarray, covs: np.ndarray, radius: float = 3.0) -> None:
    """Found modes: each component's centre and its ``radius``-Mahalanobis ellipse (the HQ
    region of ``mode_stats``)."""
    from matplotlib.patches import Ellipse

    for mu, cov in zip(modes, covs):
        vals, vecs = np.linalg.eigh(cov)
        angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))
        w, h = 2 * radius * np.sqrt(np.maximum(vals[::-1], 0))
        ax.add_patch(Ellipse((float(mu[0]), float(mu[1])), float(w), float(h), angle=angle,
                             fill=False, ec="tab:green", lw=0.8, alpha=0.9))
    ax.scatter(modes[:, 0], modes[:, 1], s=12, marker="x", c="tab:green", lw=0.8,
               label="found modes")


def draw_cell(ax: Axes, target: np.ndarray, fake: np.ndarray, *, D: nn.Module | None = None,
              probability: bool = True, extent: Sequence[float] | None = None,
              title: str = "", max_points: int = 2000, modes: np.ndarray | None = None,
              covs: np.ndarray | None = None) -> None:
    """One panel: D's surface, the target (grey), the generated points (orange), found modes.

    The window is the target's (``extent``), widened when generated points leave it; points
    beyond even that are drawn as red triangles on the edge and counted in a note, as are
    non-finite points, so a panel is never silently empty.
    """
    base = tuple(extent) if extent is not None else plot_extent(target)
    ext = widened(base, fake)
    if D is not None:
        gx, gy, z = d_surface(D, ext)
        levels = np.linspace(0, 1, 11) if probability else 12
        cs = ax.contourf(gx, gy, z, levels=levels, cmap="RdBu_r", alpha=0.35)
        ax.contour(gx, gy, z, levels=cs.levels, colors="0.5", linewidths=0.3, alpha=0.5)
    t = target[:max_points]
    f = fake[:max_points]
    finite = np.isfinite(f).all(axis=1)
    f = f[finite]
    inside = ((f[:, 0] >= ext[0]) & (f[:, 0] <= ext[1]) & (f[:, 1] >= ext[2])
              & (f[:, 1] <= ext[3]))
    ax.scatter(t[:, 0], t[:, 1], s=3, c="0.35", alpha=0.5, lw=0, label="target")
    ax.scatter(f[inside, 0], f[inside, 1], s=3, c="tab:orange", alpha=0.7, lw=0,
               label="generated")
    notes = []
    if (~inside).any():
        out = f[~inside]
        edge = np.column_stack([np.clip(out[:, 0], ext[0], ext[1]),
                                np.clip(out[:, 1], ext[2], ext[3])])
        ax.scatter(edge[:, 0], edge[:, 1], s=14, marker="^", c="tab:red", lw=0, alpha=0.8,
                   clip_on=False, label="generated, beyond the frame")
        notes.append(f"{100 * len(out) / len(finite):.0f}% beyond the frame (red, on its edge)")
    if not finite.all():
        notes.append(f"{int((~finite).sum())} non-finite points not drawn")
    if ext != base:  # widened: the target's own window, dashed
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((base[0], base[2]), base[1] - base[0], base[3] - base[2],
                               fill=False, ls="--", lw=0.6, ec="0.4"))
    if modes is not None and covs is not None:
        draw_modes(ax, np.asarray(modes), np.asarray(covs))
    if notes:
        ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize="x-small",
                va="bottom", color="tab:red",
                bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 1})
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="small")


def snapshot_figure(target: np.ndarray, fake: np.ndarray, D: nn.Module | None,
                    probability: bool, title: str, modes: np.ndarray | None = None,
                    covs: np.ndarray | None = None) -> Figure:
    fig = Figure(figsize=(4.2, 4.4), layout="constrained")
    ax = fig.subplots()
    draw_cell(ax, target, fake, D=D, probability=probability, title=title, modes=modes,
              covs=covs)
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
