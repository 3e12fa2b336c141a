"""Metrics for the 2-D lab: mode coverage on Gaussian mixtures, and sample distances for any data.

``mode_stats`` follows the mixture protocol of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et
al., 2018): a generated sample is *high quality* (HQ) when it lies within 3 standard deviations
of its nearest mode; modes are counted from the HQ samples they receive, and the reverse KL
between the HQ samples' mode histogram and the uniform target measures imbalance.

``sliced_wasserstein``, ``energy_distance`` and ``mmd_rbf`` compare two point clouds directly,
so they work for shapes without modes (swiss roll, moons, a user's file) as well.

Plain numpy. The O(N*M) pair sums run on cache-sized blocks (kernel values in float32), so two
5000-point sets take a fraction of a second. Non-finite samples (a diverged generator) never
crash a metric: ``mode_stats`` counts them as not HQ, the distances return ``nan``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ganscope.domains.points.modes import mahalanobis2

_BLOCK = 1 << 17  # pairs per block: 128K float64 = 1 MB per buffer, stays in cache
# Default MMD bandwidths, as multiples of the median pairwise distance of the pooled sample.
# Leaning small: on mixtures the median is the distance *between* modes, far above their std.
MMD_BANDWIDTH_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)


def _points(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {np.shape(x)}")
    return a


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _points(a, "a"), _points(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    return a, b


def _finite(*arrays: np.ndarray) -> bool:
    return all(bool(np.isfinite(x).all()) for x in arrays)


# --------------------------------------------------------------------------------------------
# Mixtures


def mode_stats(samples: np.ndarray, modes: np.ndarray, std: float | None, *,
               radius_std: float = 3.0, min_share: float = 0.01,
               covs: np.ndarray | None = None, weights: np.ndarray | None = None) -> dict:
    """Mode coverage of ``samples`` for a mixture of isotropic Gaussians at ``modes`` (K, D).

    With ``covs`` (K, 2, 2), the modes found in a user's points (``.modes.find_modes``), the
    distance is the Mahalanobis distance to each component instead (``std`` is then unused):
    nearest component by it, HQ within ``radius_std`` of it -- the same 98.9 % for samples of
    the component itself. With ``weights`` (K,) the reverse KL is taken against those weights
    instead of the uniform p (a found mixture's components need not be equally heavy).

    Each sample goes to its nearest mode; it is high quality (HQ) when its Euclidean distance to
    that mode is <= ``radius_std * std`` (VEEGAN / PacGAN: 3 std). Returns:

    - ``modes_covered``: modes whose HQ samples make up >= ``min_share`` of ALL samples (and at
      least one sample) -- the strict count, robust to a handful of stray points;
    - ``modes_covered_any``: modes with at least one HQ sample (the lenient count; PacGAN's
      released code counts this way);
    - ``hq_fraction``: HQ samples / all samples, in [0, 1];
    - ``reverse_kl``: KL(q || p), q = the HQ samples' histogram over modes (normalised), p =
      uniform over the K modes, as reported by PacGAN. 0 for a perfectly balanced q, log K when
      every HQ sample sits at one mode. Empty bins contribute 0 (0 log 0 = 0) and p > 0
      everywhere, so no epsilon is needed. With no HQ sample at all q is undefined; we report
      the worst case log K so that averages over seeds stay finite (see ``n_hq``);
    - ``mode_hist``: per mode, HQ samples there / ALL samples (sums to ``hq_fraction``);
    - ``n_samples``, ``n_hq``, ``n_modes``, ``hq_radius``.

    Note: for samples from the target itself, P(within 3 std) in 2-D is 1 - exp(-4.5) ~ 0.989,
    so ``hq_fraction`` of perfect samples is about 0.989, not 1.
    """
    s = _points(samples, "samples")
    m = _points(modes, "modes")
    if s.shape[1] != m.shape[1]:
        raise ValueError(f"samples and modes differ in dimension: {s.shape[1]} vs {m.shape[1]}")
    if covs is None and not (std is not None and math.isfinite(std) and std >= 0):
        raise ValueError(f"std must be finite and >= 0, got {std}")
    if not _finite(m):
        raise ValueError("modes must be finite")
    n, k = len(s), len(m)
    radius = float(radius_std) * (1.0 if covs is not None else float(std))
    p = (np.full(k, 1.0 / k) if weights is None
         else np.asarray(weights, dtype=np.float64) / float(np.sum(weights)))
    counts = np.zeros(k, dtype=np.int64)
    rows = max(1, _BLOCK // k)
    for i0 in range(0, n, rows):
        blk = s[i0:i0 + rows]
        ok = np.isfinite(blk).all(axis=1)
        safe = np.where(ok[:, None], blk, 0.0)
        d2 = _sqdist(safe, m) if covs is None else mahalanobis2(safe, m, covs)
        nearest = d2.argmin(axis=1)
        hq = ok & (np.sqrt(d2[np.arange(len(blk)), nearest]) <= radius)
        counts += np.bincount(nearest[hq], minlength=k)
    n_hq = int(counts.sum())
    # counts >= min_share * n, with a hair of slack so that e.g. 20 of 2000 at 1 % counts.
    strict = (counts > 0) & (counts >= min_share * n * (1 - 1e-9))
    if n_hq:
        q = counts[counts > 0] / n_hq
        rkl = float(np.sum(q * np.log(q / p[counts > 0])))
    else:
        rkl = float(np.log(1.0 / p.min()))  # the largest KL(q || p) any q can have
    return {
        "modes_covered": int(strict.sum()),
        "modes_covered_any": int((counts > 0).sum()),
        "hq_fraction": n_hq / n,
        "reverse_kl": max(rkl, 0.0),  # exact 0 for a uniform q, never -1e-17
        "mode_hist": (counts / n).tolist(),
        "n_samples": n,
        "n_hq": n_hq,
        "n_modes": k,
        "hq_radius": radius,
    }


# --------------------------------------------------------------------------------------------
# Distances between point clouds


def _sqdist(x: np.ndarray, y: np.ndarray, out: np.ndarray | None = None,
            tmp: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances (len(x), len(y)), float64; coordinate-wise for small D (no
    |x|^2 + |y|^2 - 2xy cancellation, exact 0 on duplicates), into ``out`` / ``tmp`` if given."""
    shape = (len(x), len(y))
    if x.shape[1] > 8:
        d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
        return np.maximum(d2, 0.0, out=d2)
    d2 = np.empty(shape) if out is None else out[:shape[0], :shape[1]]
    diff = np.empty(shape) if tmp is None else tmp[:shape[0], :shape[1]]
    for j in range(x.shape[1]):
        np.subtract.outer(x[:, j], y[:, j], out=diff)
        if j == 0:
            np.multiply(diff, diff, out=d2)
        else:
            np.multiply(diff, diff, out=diff)
            d2 += diff
    return d2


def _pair_sums(x: np.ndarray, y: np.ndarray | None, sigmas: Sequence[float],
               dist: bool) -> tuple[float, np.ndarray]:
    """Over all ordered pairs (i, j), i == j included: sum |x_i - y_j| (if ``dist``) and, per
    sigma, sum exp(-|x_i - y_j|^2 / (2 sigma^2)). ``y=None`` means y = x (half the work).

    Works on cache-sized blocks. Distances are float64 (the energy distance is a small
    difference of large means); the kernel values are float32 (exp is ~7x faster there), each
    block summed pairwise and the blocks in float64: ~1e-7 relative error per kernel mean, far
    below the sampling noise of MMD^2.
    """
    same = y is None
    yy = x if y is None else y
    coeffs = [np.float32(-0.5 / (s * s)) for s in sigmas]
    rows = max(1, _BLOCK // len(yy))
    b64 = [np.empty((rows, len(yy))) for _ in range(2)]
    b32 = np.empty((rows, len(yy)), np.float32) if coeffs else None
    dsum = 0.0
    ksum = np.zeros(len(coeffs))

    def add(xb: np.ndarray, yb: np.ndarray, weight: float) -> None:
        nonlocal dsum
        if len(yb) == 0:
            return
        d2 = _sqdist(xb, yb, b64[0], b64[1])
        shape = d2.shape
        if dist:
            t = b64[1][:shape[0], :shape[1]] if d2.base is b64[0] else np.empty_like(d2)
            dsum += weight * float(np.sqrt(d2, out=t).sum())
        if coeffs:
            d2f = b32[:shape[0], :shape[1]]
            d2f[...] = d2
            t32 = np.empty_like(d2f) if len(coeffs) > 1 else d2f
            for c, co in enumerate(coeffs):
                np.multiply(d2f, co, out=t32)
                ksum[c] += weight * float(np.exp(t32, out=t32).sum())

    for i0 in range(0, len(x), rows):
        xb = x[i0:i0 + rows]
        if same:
            # the square block on the diagonal holds both (i, j) and (j, i); the part right of
            # it stands for its mirror image below the diagonal too.
            b = len(xb)
            add(xb, x[i0:i0 + b], 1.0)
            add(xb, x[i0 + b:], 2.0)
        else:
            add(xb, yy, 1.0)
    return dsum, ksum


def random_directions(n_projections: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n_projections`` unit vectors uniform on the sphere (normalised Gaussians), (P, dim)."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n_projections, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, *, n_projections: int = 256,
                       seed: int = 0) -> float:
    """Sliced Wasserstein-1: the exact 1-D W1 of the projections, averaged over random directions.

    Directions come from ``random_directions(n_projections, D, seed)`` (fixed seed: repeated
    evaluations are comparable). Per direction, W1 = integral over u in (0, 1) of
    |F_a^-1(u) - F_b^-1(u)|, computed exactly by quantile matching on the union of both sets'
    quantile levels i/n and j/m -- no subsampling, any sizes (equal sizes reduce to
    mean |sort(a) - sort(b)|). Same units as the data; a shift of the whole set by a vector t
    gives exactly mean_k |<theta_k, t>| (~ |t| * 2/pi in 2-D).
    """
    a, b = _pair(a, b)
    if not _finite(a, b):
        return float("nan")
    n, m = len(a), len(b)
    dirs = random_directions(n_projections, a.shape[1], seed)
    if n != m:
        # levels as integers over the common denominator n*m (no float ties): U in (0, n*m]
        levels = np.union1d(np.arange(1, n + 1) * m, np.arange(1, m + 1) * n)
        widths = np.diff(levels, prepend=0) / (n * m)
        ia = (levels + m - 1) // m - 1  # the a-quantile on (U_prev, U]: ceil(U / m) - 1
        ib = (levels + n - 1) // n - 1
    step = max(1, _BLOCK // max(n, m))
    total = 0.0
    for p0 in range(0, n_projections, step):
        d = dirs[p0:p0 + step]  # (P, D): projections come out (P, N), sorted along rows
        pa, pb = np.sort(d @ a.T, axis=1), np.sort(d @ b.T, axis=1)
        if n == m:
            total += float(np.abs(pa - pb).mean(axis=1).sum())
        else:
            total += float((np.abs(pa[:, ia] - pb[:, ib]) @ widths).sum())
    return total / n_projections


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Székely's energy distance 2 E|X-Y| - E|X-X'| - E|Y-Y'| (squared-distance scale).

    V-statistic: every mean runs over all pairs, i == j included. It is then exactly the energy
    distance between the two empirical distributions: >= 0, 0 for identical sets, symmetric.
    In 1-D it equals 2 * integral (F_a - F_b)^2, i.e. ``scipy.stats.energy_distance(a, b)**2``.
    """
    a, b = _pair(a, b)
    if not _finite(a, b):
        return float("nan")
    return _energy(a, b, *_sums(a, b, (), dist=True))


def _sums(a: np.ndarray, b: np.ndarray, sigmas: Sequence[float], dist: bool):
    return _pair_sums(a, None, sigmas, dist), _pair_sums(b, None, sigmas, dist), \
        _pair_sums(a, b, sigmas, dist)


def _energy(a, b, aa, bb, ab) -> float:
    n, m = len(a), len(b)
    return max(2.0 * ab[0] / (n * m) - aa[0] / (n * n) - bb[0] / (m * m), 0.0)


def _mmd2(a, b, sigmas, aa, bb, ab) -> float:
    n, m = len(a), len(b)
    k = len(sigmas)  # k(x, x) = 1 per kernel: drop the diagonal for the unbiased estimate
    return float((aa[1].sum() - n * k) / (n * (n - 1)) + (bb[1].sum() - m * k) / (m * (m - 1))
                 - 2.0 * ab[1].sum() / (n * m))


def median_bandwidths(a: np.ndarray, b: np.ndarray, *, max_points: int = 1000,
                      factors: Sequence[float] = MMD_BANDWIDTH_FACTORS) -> list[float]:
    """Median heuristic: ``factors`` x the median pairwise distance of the pooled points.

    Each set contributes at most ``max_points // 2`` points, a fixed random subset (seed 0) when
    larger, so the bandwidths are deterministic and do not depend on the order of a and b. A
    zero median (all points equal) falls back to 1.0.
    """
    a, b = _pair(a, b)
    k = max(1, max_points // 2)
    pool = np.concatenate([_subsample(a, k), _subsample(b, k)])
    iu = np.triu_indices(len(pool), k=1)
    med = float(np.median(np.sqrt(_sqdist(pool, pool)[iu]))) if len(pool) > 1 else 0.0
    if not (math.isfinite(med) and med > 0):
        med = 1.0
    return [f * med for f in factors]


def _subsample(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    if len(x) <= k:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), k, replace=False))]


def mmd_rbf(a: np.ndarray, b: np.ndarray, *,
            bandwidths: Sequence[float] | None = None) -> float:
    """Unbiased MMD^2 (Gretton et al., 2012) with the kernel sum_s exp(-|x-y|^2 / (2 s^2)).

    ``bandwidths`` (the s) default to ``median_bandwidths(a, b)``: 1/8 .. 2 x the median pairwise
    distance. Unbiased means the i == j terms are left out, so the value scatters around 0 --
    and can be slightly negative -- when a and b come from the same distribution. Needs >= 2
    points per set. Squared units: compare values, not their square roots.
    """
    a, b = _pair(a, b)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("mmd_rbf needs at least 2 points in each set")
    if not _finite(a, b):
        return float("nan")
    sig = list(bandwidths) if bandwidths is not None else median_bandwidths(a, b)
    if not sig or not all(math.isfinite(s) and s > 0 for s in sig):
        raise ValueError(f"bandwidths must be positive and finite, got {sig}")
    return _mmd2(a, b, sig, *_sums(a, b, sig, dist=False))


def distance_stats(samples: np.ndarray, target: np.ndarray, seed: int = 0, *,
                   max_points: int | None = 5000) -> dict:
    """All three distances of ``samples`` to ``target``, for any point data.

    Sliced Wasserstein uses every point (projections seeded by ``seed``). Energy distance and MMD
    cost O(N*M): above ``max_points`` points a set is subsampled without replacement, seeded by
    ``seed`` (``None``: never). Both share one pass over the pair distances. Non-finite samples
    give ``nan`` for all three.
    """
    s, t = _pair(samples, target)
    out = {"sliced_wasserstein": sliced_wasserstein(s, t, seed=seed)}
    if not _finite(s, t):
        return {**out, "energy_distance": float("nan"), "mmd_rbf": float("nan"),
                "mmd_bandwidths": []}
    if max_points is not None:
        s, t = _subsample(s, max_points, seed), _subsample(t, max_points, seed + 1)
    sig = median_bandwidths(s, t)
    sums = _sums(s, t, sig, dist=True)
    out["energy_distance"] = _energy(s, t, *sums)
    out["mmd_rbf"] = _mmd2(s, t, sig, *sums) if len(s) > 1 and len(t) > 1 else float("nan")
    out["mmd_bandwidths"] = sig
    return out


__all__ = [
    "MMD_BANDWIDTH_FACTORS",
    "distance_stats",
    "energy_distance",
    "median_bandwidths",
    "mmd_rbf",
    "mode_stats",
    "random_directions",
    "sliced_wasserstein",
]
