"""E3: images from a trained generator, from a seed or a chosen latent file.

Reads only the run directory (config.yaml + a generator checkpoint), never the training code.
``latents_from_seed(23231, 8)`` reproduces the seeds' ``torch.manual_seed(23231);
z = torch.randn(8, 100)`` exactly, without disturbing the caller's global RNG.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganscope.errors import RunError, UserError
from ganscope.io import atomic_save_npy
from ganscope.models import build_models, has_conv
from ganscope.sampling import sample
from ganscope.training.run import Run, load_checkpoint


def load_generator(run: Run, epoch: int | None = None, device: str | torch.device = "cpu"
                   ) -> nn.Module:
    """G in eval mode, from epoch ``epoch``'s weights or (default) the latest checkpoint."""
    cfg = run.config()
    _, path = run.checkpoint_for(epoch)
    ck = load_checkpoint(path)
    G, _ = build_models(cfg.model.name, cfg.model.z_dim, g_hidden=cfg.model.g_hidden,
                        d_hidden=cfg.model.d_hidden)
    try:
        G.load_state_dict(ck["G"])
    except (KeyError, RuntimeError) as e:
        raise RunError(
            f"checkpoint {path} does not match model '{cfg.model.name}' in the run's config "
            f"({str(e).splitlines()[0][:80]}): the run directory is inconsistent"
        ) from None
    if cfg.train.channels_last and has_conv(G):
        # the layout G was trained and evaluated in: other layouts round differently, and
        # `ganscope eval` must reproduce the training-time scores exactly
        G = G.to(memory_format=torch.channels_last)
    return G.to(device).eval()


def latents_from_seed(seed: int, n: int, z_dim: int = 100) -> torch.Tensor:
    """The numbers of ``torch.manual_seed(seed); torch.randn(n, z_dim)``, as the seeds did,
    drawn from a CPU generator of their own: seeding torch's global one is not thread-safe
    (the server's requests run in threads and drew each other's latents) and would move a
    training run's random stream in the same process."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


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


def generate_images(G: nn.Module, z: torch.Tensor, batch_size: int = 1000,
                    progress: bool = False) -> np.ndarray:
    """uint8 images (N, H, W) from G in eval mode for latents z (N, z_dim), in batches of
    ``batch_size`` (10,000 is normal): ``ganscope.sampling.sample`` as numpy."""
    imgs = sample(G, z, batch_size=batch_size, progress=progress).numpy()
    return imgs[:, 0] if imgs.shape[1] == 1 else imgs


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
    from ganscope.viz.grids import save_grid

    out = check_output_path(out)
    if out.suffix == ".npy":
        atomic_save_npy(out, images)
    else:
        n = images.shape[0]
        save_grid(images, out, nrow=nrow or (n if n <= 8 else int(math.ceil(math.sqrt(n)))),
                  scale=scale)
    return out
