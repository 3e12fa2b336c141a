"""The sweep: shift each probed dim, and random unit directions, over the shift values on a set
of base vectors, generate everything in large chunks and measure every effect.

The measuring is separate from the statistics so that the expensive part (generation and the
classifier) has one place to be timed and tuned; it returns the mean-effect curves in a
:class:`ProbeResult`, which derives slopes and the null from them.

Cost: (n_dims + n_null) * (n_values - 1) * n_base images plus n_base unswept ones. With the E1
MLP the classifier dominates (about 5,000 images/s on 2 cores): 100 dims, 32 null directions,
7 values and n_base = 256 is about 200k images, 40-60 s; n_base = 512 doubles it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganscope.domains import class_domain
from ganscope.errors import UserError
from ganscope.latent.probe.effects import EFFECT_NAMES, _chunk_means, _stat_matrix
from ganscope.latent.probe.result import ProbeResult
from ganscope.latent.probe.stats import DEFAULT_ALPHA
from ganscope.sampling import sample

DEFAULT_VALUES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
DEFAULT_N_BASE = 256  # 512 doubles the time (~2 min for 100 dims) for ~1.4x less noise
DEFAULT_N_NULL = 32
DEFAULT_BATCH = 8192  # images generated and measured per chunk


class ExtractorLike(Protocol):
    def extract(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]: ...


def check_probe_args(z_dim: int, dims: Sequence[int] | None, values: Sequence[float],
                     n_base: int, n_null: int) -> tuple[list[int], list[float]]:
    """Validated dims (all of z by default) and values; one UserError line otherwise."""
    if dims is None:
        dims = list(range(z_dim))
    dims = [int(d) for d in dims]
    if not dims:
        raise UserError("give at least one latent dim to probe, e.g. --dims 0-99")
    for d in dims:
        if not 0 <= d < z_dim:
            raise UserError(f"dim {d} is out of range for z of size {z_dim} (0..{z_dim - 1})")
    if len(set(dims)) != len(dims):
        raise UserError("a dim is listed twice in --dims: give each dim once")
    vals = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise UserError(f"shift value {v!r} is not a number") from None
        if not math.isfinite(f):
            raise UserError(f"shift value {v} is not a finite number")
        vals.append(f)
    if len(set(vals)) < 2:
        raise UserError("--values needs at least two different shifts to fit a slope, "
                        "e.g. --values=-3,-2,-1,0,1,2,3")
    if len(set(vals)) != len(vals):
        raise UserError("a shift is listed twice in --values: give each value once")
    if n_base < 2:
        raise UserError(f"--n-base must be at least 2, got {n_base}")
    if n_null < 4:
        raise UserError(f"--null must be at least 4 random directions, got {n_null}")
    return dims, vals


def null_directions(z_dim: int, n_null: int, seed: int) -> torch.Tensor:
    """``n_null`` random unit vectors in z-space, from their own seeded stream."""
    g = torch.Generator().manual_seed(seed + 1)
    u = torch.randn(n_null, z_dim, generator=g, dtype=torch.float64)
    return (u / u.norm(dim=1, keepdim=True)).float()


@torch.no_grad()
def probe(G: nn.Module, z_dim: int, *, extractor: ExtractorLike | None = None,
          n_base: int = DEFAULT_N_BASE, values: Sequence[float] = DEFAULT_VALUES, seed: int = 0,
          n_null: int = DEFAULT_N_NULL, dims: Sequence[int] | None = None,
          batch: int = DEFAULT_BATCH, alpha: float = DEFAULT_ALPHA, progress: bool = False
          ) -> ProbeResult:
    """Sweep each dim (z[:, d] + v) and ``n_null`` random unit directions over ``values`` on
    ``n_base`` base vectors z ~ N(0, I) (seeded), and measure every effect.

    Everything runs in chunks of about ``batch`` images (one forward of G, one classifier pass,
    one matmul for the statistics); ``info['stages']`` records the seconds of each stage.
    """
    dims, vals = check_probe_args(z_dim, dims, values, n_base, n_null)
    if extractor is None:
        extractor = class_domain().extractor()
    t_start = time.perf_counter()
    stages = {"generation": 0.0, "extraction": 0.0, "stats": 0.0}

    def gen(z: torch.Tensor) -> torch.Tensor:
        t = time.perf_counter()
        x = sample(G, z, batch_size=batch)
        x = x[:, 0] if x.ndim == 4 else x
        stages["generation"] += time.perf_counter() - t
        return x

    def classify(x: torch.Tensor) -> np.ndarray:
        t = time.perf_counter()
        _, p = extractor.extract(x)
        stages["extraction"] += time.perf_counter() - t
        return np.asarray(p)

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_base, z_dim, generator=g)
    base = gen(z)
    H, W_ = base.shape[1:]
    Wm = _stat_matrix(H, W_)
    base_p = classify(base)
    t = time.perf_counter()
    base_means = _chunk_means(base, base_p, base, 1, Wm)[0]
    perm = torch.roll(torch.arange(n_base), 1)
    baseline = float((base.float() - base[perm].float()).abs().mean() / 255.0)
    stages["stats"] += time.perf_counter() - t

    U = torch.cat([torch.eye(z_dim)[dims], null_directions(z_dim, n_null, seed)])
    moved = [v for v in vals if v != 0.0]
    E = len(EFFECT_NAMES)
    curves = np.empty((len(U), len(vals), E))
    per_dir = len(moved) * n_base
    step = max(1, batch // max(per_dir, 1))
    vt = torch.tensor(moved, dtype=torch.float32)
    bar = tqdm(total=len(U), disable=not progress, desc="probing", unit="dir", leave=False)
    for k in range(0, len(U), step):
        u = U[k:k + step]  # (c, Z)
        c = len(u)
        lat = z[None, None] + vt[None, :, None, None] * u[:, None, None, :]  # (c, V', N, Z)
        x = gen(lat.reshape(-1, z_dim))
        p = classify(x)
        t = time.perf_counter()
        m = _chunk_means(x, p, base, c * len(moved), Wm).reshape(c, len(moved), E)
        stages["stats"] += time.perf_counter() - t
        j = 0
        for vi, v in enumerate(vals):
            if v == 0.0:
                curves[k:k + c, vi] = base_means
            else:
                curves[k:k + c, vi] = m[:, j]
                j += 1
        bar.update(c)
    bar.close()
    n_images = n_base * (1 + len(U) * len(moved))
    info = {"n_base": n_base, "seed": seed, "n_null": n_null, "z_dim": z_dim,
            "images": n_images, "seconds": round(time.perf_counter() - t_start, 3),
            "stages": {k: round(v, 3) for k, v in stages.items()}}
    name = getattr(extractor, "name", type(extractor).__name__)
    info["extractor"] = {"name": name, "sha256": getattr(extractor, "sha256", None)}
    return ProbeResult(dims=dims, values=vals, effects=list(EFFECT_NAMES),
                       curves=curves[:len(dims)], null_curves=curves[len(dims):],
                       baseline_pixel_distance=baseline, z_dim=z_dim, alpha=alpha, info=info)
