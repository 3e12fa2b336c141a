"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity
Metrics for Generative Models"), with the semantics of the reference ``prdc`` package.

Each sample gets a ball whose radius is the distance to its k-th nearest neighbour in its own set
(self excluded). Precision: share of fakes inside some real ball. Recall: share of reals inside
some fake ball. Density: real balls containing each fake, summed, over k M. Coverage: share of
reals whose nearest fake is inside their own ball. Membership uses "<=" (the reference uses "<";
they differ only on exact ties, and "<=" keeps duplicates / discrete features from scoring 0).

Distances are squared Euclidean in float64 via the Gram-matrix identity, computed in row chunks so
a 10k x 10k matrix never exists whole; comparing squared distances avoids square roots and is
exact on small integer cases.
"""

from __future__ import annotations

import numpy as np
import torch


def _sq_dist(a: torch.Tensor, a2: torch.Tensor, b: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 = |a_i|^2 + |b_j|^2 - 2 a_i.b_j, fused into one addmm (float64)."""
    return torch.addmm(b2[None, :], a, b.T, alpha=-2.0).add_(a2[:, None]).clamp_min_(0.0)


def _knn_radii2(x: torch.Tensor, x2: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Squared distance from each row to its k-th nearest other row (self excluded)."""
    n = x.shape[0]
    out = torch.empty(n, dtype=x.dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d2 = _sq_dist(x[start:stop], x2[start:stop], x, x2)
        rows = torch.arange(stop - start)
        d2[rows, rows + start] = float("inf")
        out[start:stop] = torch.topk(d2, k, dim=1, largest=False).values[:, -1]
    return out


def _as_tensor(features: np.ndarray, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} features must be 2-D (N, D), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} features contain NaN or infinite values")
    return x


def real_radii2(real: np.ndarray, *, k: int = 5, chunk: int = 1024) -> torch.Tensor:
    """The squared k-NN radii of the real set's balls, for ``prdc(..., radii2=)``: they depend on
    the real features alone, and on 10,000 of them they are half of PRDC's time (1.5 s of 2.8 s
    against 4,000 fakes on 2 threads), so a reference scored again and again computes them once.
    """
    x = _as_tensor(real, "real")
    if x.shape[0] <= k:
        raise ValueError(f"PRDC with k={k} needs more than {k} real samples, got {x.shape[0]}")
    return _knn_radii2(x, (x * x).sum(dim=1), k, chunk)


def prdc(real: np.ndarray, fake: np.ndarray, *, k: int = 5, chunk: int = 1024,
         radii2: torch.Tensor | None = None) -> dict[str, float]:
    """{"precision", "recall", "density", "coverage"} of ``fake`` against ``real`` (k-NN balls).

    Precision/density measure fidelity, recall/coverage diversity; density and coverage are the
    outlier-robust variants of Naeem et al. Needs more than k samples per side. ``radii2``:
    the real set's :func:`real_radii2` with the same k, if already computed.
    """
    if k < 1 or chunk < 1:
        raise ValueError(f"need k >= 1 and chunk >= 1, got k={k}, chunk={chunk}")
    x = _as_tensor(real, "real")
    y = _as_tensor(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: real {x.shape[1]} vs fake {y.shape[1]}")
    n, m = x.shape[0], y.shape[0]
    if n <= k or m <= k:
        raise ValueError(
            f"PRDC with k={k} needs more than {k} samples on each side, got {n} real and {m} fake"
        )
    x2 = (x * x).sum(dim=1)
    y2 = (y * y).sum(dim=1)
    if radii2 is not None and tuple(radii2.shape) != (n,):
        raise ValueError(f"radii2 must hold one radius per real sample ({n}), got "
                         f"{tuple(radii2.shape)}")
    r_real = _knn_radii2(x, x2, k, chunk) if radii2 is None else radii2
    r_fake = _knn_radii2(y, y2, k, chunk)

    fake_ball_count = torch.zeros(m, dtype=torch.int64)  # density; > 0 gives precision
    real_recalled = torch.empty(n, dtype=torch.bool)  # recall
    real_covered = torch.empty(n, dtype=torch.bool)  # coverage
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d2 = _sq_dist(x[start:stop], x2[start:stop], y, y2)  # (rows of real, m)
        fake_ball_count += (d2 <= r_real[start:stop, None]).sum(dim=0)
        real_recalled[start:stop] = (d2 <= r_fake[None, :]).any(dim=1)
        real_covered[start:stop] = d2.min(dim=1).values <= r_real[start:stop]
    return {
        "precision": float((fake_ball_count > 0).double().mean()),
        "recall": float(real_recalled.double().mean()),
        "density": float(fake_ball_count.sum()) / (k * m),
        "coverage": float(real_covered.double().mean()),
    }
