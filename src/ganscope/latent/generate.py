"""E3: images from a trained generator, from a seed or a chosen latent file: the latent file
and the output files of ``ganscope generate``.

The generator comes from ``ganscope.training.run.load_generator`` (the run directory's
config.yaml + a generator checkpoint, never the training code), the latents from
``ganscope.sampling.latents_from_seed`` (``latents_from_seed(23231, 8)`` reproduces the seeds'
``torch.manual_seed(23231); z = torch.randn(8, 100)`` exactly, without disturbing the caller's
global RNG) and the images from ``ganscope.sampling.generate_images``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ganscope.errors import UserError
from ganscope.io import atomic_save_npy
from ganscope.render import save_grid


def load_latents(path: str | os.PathLike, z_dim: int) -> torch.Tensor:
    """Latent vectors from a ``.npy`` file: shape (N, z_dim) or (z_dim,), finite values."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"latent file {p} not found: give a .npy file of shape (N, {z_dim})")
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UserError(f"cannot read latent file {p} ({e}): save it with numpy.save") from None
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != z_dim or a.shape[0] == 0:
        raise UserError(
            f"latent file {p} has shape {tuple(a.shape)}, expected (N, {z_dim}) for this run's model"
        )
    if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
        raise UserError(f"latent file {p} holds non-finite or non-numeric values: fix the file")
    return torch.from_numpy(a.astype(np.float32))


OUTPUT_TYPES = (".png", ".npy")


def check_output_path(out: str | os.PathLike) -> Path:
    """Refuse an unknown output type before any work is done (10,000 images take a while)."""
    out = Path(out)
    if out.suffix not in OUTPUT_TYPES:
        raise UserError(
            f"unknown output type {out.suffix or '(none)'} for {out}: use .png (a grid) or "
            ".npy (raw uint8 images)"
        )
    return out


def save_images(images: np.ndarray, out: str | os.PathLike, nrow: int | None = None,
                scale: int = 2) -> Path:
    """``.npy``: the raw uint8 array (N, 28, 28); ``.png``: one grid."""
    out = check_output_path(out)
    if out.suffix == ".npy":
        atomic_save_npy(out, images)
    else:
        n = images.shape[0]
        save_grid(images, out, nrow=nrow or (n if n <= 8 else int(math.ceil(math.sqrt(n)))),
                  scale=scale)
    return out

