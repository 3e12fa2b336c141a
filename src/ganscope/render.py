"""Pictures as files: image grids written as PNG with exact pixels (no resampling blur), and
matplotlib figures rendered to PNG bytes, both written atomically. The bottom layer every
figure-making package shares (domains, viz, reports, the lab)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ganscope.io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def grid_array(images: np.ndarray | torch.Tensor, nrow: int | None = None, pad: int = 2,
               pad_value: int = 64) -> np.ndarray:
    """Tile uint8 images (N, H, W) or (N, 1|3, H, W) into one (rows*H, cols*W[, 3]) array."""
    a = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if a.dtype != np.uint8:
        raise ValueError("grid_array expects uint8 images")
    if a.ndim == 4:
        a = a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)
    n, h, w = a.shape[:3]
    cols = nrow or min(n, 8)
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad) + a.shape[3:], pad_value,
                  dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = a[i]
    return out


def save_grid(images: np.ndarray | torch.Tensor, path: str | os.PathLike, nrow: int | None = None,
              scale: int = 2, pad: int = 2) -> None:
    """Save uint8 images as one PNG grid, each pixel enlarged ``scale`` times (nearest)."""
    arr = grid_array(images, nrow=nrow, pad=pad)
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


DPI = 110  # the figures' default resolution


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Render to PNG bytes in memory (Agg), for an atomic write or an HTTP response."""
    # matplotlib takes a second to import: only the callers that draw pay for it
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    path = Path(path)
    atomic_write_bytes(path, figure_png(fig, dpi))
    return path
