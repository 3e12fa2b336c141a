"""When a measured effect is real: slopes, and the null from random directions.

Why a null: with a Gaussian prior no axis of z is special a priori, and *every* direction changes
something. The same sweep along ``n_null`` random unit directions gives the slopes one expects
from an arbitrary direction; a dim's effect is only called real when it stands out from them.
Rule: |slope| > threshold = max(the null's empirical 95th percentile of |slope|, |g| * t). For a
locally linear effect with gradient g over z, the slope along a random unit direction u is u.g,
so |g| = RMS(null slope) * sqrt(z_dim), and t is the (1 - alpha / n_dims) quantile of |u_1| for u
uniform on the sphere: a Bonferroni correction over the dims probed (family-wise ``alpha``,
default 5 %). With z_dim = 100 and 100 dims that is about 3.3 RMS, so a trained model shows few
false positives in 1,800 cells; with a tiny z_dim it stays exact (|u_1| <= 1). The reported
``ratio`` is |slope| / median null |slope| (1.0 is typical for a direction like any other; the
threshold is about 5x for z_dim = 100). Slopes are least-squares fits over the
whole sweep (+-3 by default): where an effect saturates, a dim's fitted slope is smaller than the
local derivative that a random direction (which moves each axis less) sees, so the comparison
errs on the side of calling fewer effects real.

Beyond the null is not enough: where random directions barely move a measure (a class the
generator almost never makes), a tiny slope is "many times the null" yet changes nothing one could
see (issue 22: dim 50 of the demo run moved p(Trouser) by 0.004 per unit, 8.4x the null). So an
effect is *real* only when it is also at least its measure's practical floor (:func:`floors`):
:data:`CLASS_FLOOR` = 0.02 class probability per unit and :data:`IMAGE_FLOOR` = 1 % of full scale
per unit for brightness, the regions, the silhouette area and the pixel change. Over the seeds'
range (-3..+3) that is 0.12 in probability (one image in eight changing class) and 6 % of full
scale (15 grey levels), about the least one sees in an 8-image grid. Effect *size* is
|slope| / floor, a common unit across measures; real effects are ranked by it.

Plain numpy on arrays, so that the claims check (:mod:`ganscope.latent.claims`) can threshold
sums of effects by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DEFAULT_ALPHA = 0.05
#: the least per-unit slope that matters: class probability, and fraction of full scale (0..1)
#: for every image measure. On the demo run the null's threshold is below these floors only for
#: classes the generator rarely makes (p_Trouser 0.0037, p_Ankle_boot 0.0093, p_Sandal 0.0129
#: per unit), and 1.9-7.6x above them for every image measure, so the floors remove exactly the
#: "many times a near-zero null" effects.
CLASS_FLOOR = 0.02
IMAGE_FLOOR = 0.01


def floors(effects: Sequence[str]) -> np.ndarray:
    """Per-effect practical floor on |slope| (per unit shift): :data:`CLASS_FLOOR` for class
    probabilities (names ``p_*``), :data:`IMAGE_FLOOR` for everything else."""
    return np.array([CLASS_FLOOR if e.startswith("p_") else IMAGE_FLOOR for e in effects])


def is_real(slopes: np.ndarray, threshold: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """The one rule for "real": beyond the null (|slope| > threshold) and large enough to
    matter (|slope| >= floor). Arrays broadcast over the last (effect) axis."""
    a = np.abs(np.asarray(slopes, dtype=np.float64))
    return (a > threshold) & (a >= floor)


def unit_coordinate_quantile(z_dim: int, tail: float) -> float:
    """t with P(|u_1| > t) = tail for u uniform on the unit sphere of R^z_dim.

    u_1 has density proportional to (1 - t^2)^((Z - 3) / 2) on [-1, 1]; integrated numerically
    (midpoint rule, 200,000 cells), so no scipy is needed. For large Z it is N(0, 1/Z).
    """
    if z_dim < 2:
        return 1.0
    n = 200_000
    t = (np.arange(n) + 0.5) / n
    logd = (z_dim - 3) / 2 * np.log1p(-t * t)
    d = np.exp(logd - logd.max())
    sf = np.cumsum(d[::-1])[::-1]  # P(|u_1| >= t_i), unnormalised
    sf = sf / sf[0]
    i = int(np.searchsorted(-sf, -tail))  # first cell whose tail is <= the wanted one
    return float(min(t[min(i, n - 1)] + 0.5 / n, 1.0))


def null_threshold(null_slopes: np.ndarray, n_tests: int, alpha: float = DEFAULT_ALPHA,
                   z_dim: int | None = None) -> np.ndarray:
    """|slope| above which an effect is real, per column of ``null_slopes`` (n_null, E).

    max(the null's empirical 95th percentile, |g| * t) where, for a locally linear effect with
    gradient g over z, the slope along a random unit direction u is u.g: |g| is estimated as
    RMS(null slope) * sqrt(Z) and t is the (1 - alpha / n_tests) quantile of |u_1|
    (Bonferroni over the dims tested). For Z = 100 and 100 dims that is about 3.3 RMS.
    """
    a = np.abs(np.asarray(null_slopes, dtype=np.float64))
    z = z_dim if z_dim is not None else 100
    q95 = np.quantile(a, 0.95, axis=0)
    g = np.sqrt((a ** 2).mean(axis=0)) * math.sqrt(z)
    return np.maximum(q95, g * unit_coordinate_quantile(z, alpha / max(n_tests, 1)))


def fit_slopes(values: Sequence[float], curves: np.ndarray, effects: Sequence[str]
               ) -> np.ndarray:
    """Per-unit slopes of mean-effect curves (..., V, E) over the shift values.

    Least squares of the mean effect on v; ``pixel_change`` is a distance (0 at v = 0, growing
    both ways), so it is fitted through the origin against |v| instead.
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(curves, dtype=np.float64)
    vc = v - v.mean()
    out = np.tensordot(vc, c, axes=([0], [-2])) / (vc ** 2).sum()
    if "pixel_change" in effects:
        j = list(effects).index("pixel_change")
        out[..., j] = np.tensordot(np.abs(v), c[..., j], axes=([0], [-1])) / (v ** 2).sum()
    return out


def spans(values: Sequence[float], curves: np.ndarray, effects: Sequence[str]) -> np.ndarray:
    """The measured size of each effect over the whole sweep (..., E), from curves (..., V, E):
    mean effect at the largest shift minus at the smallest (e.g. +3 minus -3, the seeds' range),
    read off the curve rather than the fit, so a saturating effect is not overstated.
    ``pixel_change`` is a distance from the unswept image, so its span is the mean of the curve
    at the two ends."""
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(curves, dtype=np.float64)
    lo, hi = int(v.argmin()), int(v.argmax())
    out = c[..., hi, :] - c[..., lo, :]
    if "pixel_change" in effects:
        j = list(effects).index("pixel_change")
        out[..., j] = (c[..., hi, j] + c[..., lo, j]) / 2
    return out


def range_label(values: Sequence[float]) -> str:
    """'-3..+3' for the sweep's smallest and largest shift."""
    return f"{min(values):+g}..{max(values):+g}".lstrip("+")
