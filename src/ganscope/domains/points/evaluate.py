"""Scoring a 2-D generator against its target: mode coverage (mixtures) and distances (any data).

Training (``eval.every``) and the lab call this one function, so a cell's numbers are the same
whichever way they were produced. Records share the image metrics' shape (``metrics``,
``reference``, ``n_real``/``n_fake``, ``seed``), so metrics.jsonl, ``compare`` and the
diagnostics read both.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
from torch import nn

from ganscope.data.points import PointSet
from ganscope.domains.points.metrics import distance_stats, mode_stats
from ganscope.sampling import latents_from_seed, sample, to_floats


def generate_points(G: nn.Module, z_dim: int, n: int, seed: int) -> np.ndarray:
    """n points from G in eval mode on the latents of ``seed`` (the same z at every epoch),
    in one forward pass."""
    z = latents_from_seed(seed, n, z_dim)
    return sample(G, z, to_samples=to_floats, batch_size=None).numpy()


def score_points(fake: np.ndarray, ps: PointSet, target: np.ndarray, seed: int = 0
                 ) -> dict[str, Any]:
    """Mode statistics (a built-in mixture's modes, or those found in a file) plus the three
    distances to the target points."""
    out: dict[str, Any] = {}
    if ps.modes is not None and (ps.std is not None or ps.covs is not None):
        ms = mode_stats(fake, ps.modes, ps.std, covs=ps.covs, weights=ps.weights)
        out.update({k: ms[k] for k in ("modes_covered", "modes_covered_any", "hq_fraction",
                                       "reverse_kl", "mode_hist")})
        out["n_modes"] = int(len(ps.modes))
    d = distance_stats(fake, target, seed=seed)
    out.update({k: d[k] for k in ("sliced_wasserstein", "energy_distance", "mmd_rbf")})
    return out


def evaluate_points(G: nn.Module, z_dim: int, ps: PointSet, target: np.ndarray, n: int,
                    seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    fake = generate_points(G, z_dim, n, seed)
    metrics = score_points(fake, ps, target, seed)
    return {
        "metrics": metrics,
        "extractor": None,
        "reference": {"dataset": ps.source.get("spec") or ps.name, "split": "target",
                      "n": int(len(target)),
                      "modes": ("found: Gaussian mixture, components by BIC" if ps.modes_found
                                else "known" if ps.modes is not None else None),
                      "images_sha256": hashlib.sha256(
                          np.ascontiguousarray(target, dtype=np.float32).tobytes()).hexdigest()},
        "n_real": int(len(target)), "n_fake": int(n), "seed": seed,
        "seconds": round(time.perf_counter() - t0, 3),
    }
