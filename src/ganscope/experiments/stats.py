"""Statistics over seeds: mean, sample std, Student-t intervals and Welch's t-test.

No scipy at run time: Student's t distribution is computed from the regularized incomplete beta
function (a continued fraction, Numerical Recipes' ``betacf`` with Lentz's method), and its
quantile by bisection on that CDF. The tests hold both against ``scipy.stats.t``.

"Are GANs Created Equal?" (Lucic et al. 2018) is why this exists: one run per configuration
says little, so every comparison is made over seeds, with an interval, and says when two
configurations cannot be told apart at the number of seeds run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

LEVEL = 0.95


def finite(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` (None, NaN, inf and non-numbers dropped)."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out.append(float(v))
    return out


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if len(values) else math.nan


def sample_std(values: Sequence[float]) -> float:
    """Standard deviation with n - 1 in the denominator; NaN for fewer than 2 values."""
    n = len(values)
    if n < 2:
        return math.nan
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


def mean_std(values: Iterable[Any]) -> tuple[float, float]:
    """(mean, sample std) of the finite values; std 0.0 for one value, both NaN for none."""
    vals = finite(values)
    if not vals:
        return math.nan, math.nan
    return mean(vals), (sample_std(vals) if len(vals) > 1 else 0.0)


# --- Student's t ---------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must lie in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    ln_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` (> 0, need not be an integer) degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))  # P(|T| > |t|) / 2
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    return 1.0 - t_sf(t, df)


def t_ppf(p: float, df: float) -> float:
    """The quantile of Student's t: the t with P(T <= t) = p (bisection on the exact CDF)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    q = 1.0 - p  # upper tail wanted
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > q:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_sf(mid, df) > q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


# --- summaries -----------------------------------------------------------------------------------


@dataclass
class Summary:
    """One metric of one configuration over its seeds."""

    n: int
    mean: float
    std: float  # sample std (n - 1); NaN for n < 2
    lo: float  # Student-t interval at ``level``; NaN for n < 2
    hi: float
    level: float = LEVEL

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.lo) and math.isfinite(self.hi)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def summarize(values: Iterable[Any], level: float = LEVEL) -> Summary:
    """Mean, sample std and the two-sided Student-t interval mean ± t(1-a/2, n-1) * s / sqrt(n)."""
    vals = finite(values)
    n = len(vals)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, level)
    m = mean(vals)
    if n < 2:
        return Summary(1, m, math.nan, math.nan, math.nan, level)
    s = sample_std(vals)
    half = t_ppf(0.5 + level / 2.0, n - 1) * s / math.sqrt(n)
    return Summary(n, m, s, m - half, m + half, level)


def intervals_overlap(a: Summary, b: Summary) -> bool | None:
    """Do the two intervals share a point? None when either has no interval (n < 2)."""
    if not (a.has_interval and b.has_interval):
        return None
    return a.lo <= b.hi and b.lo <= a.hi


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's unequal-variance t-test: (t, Welch-Satterthwaite df, two-sided p).

    NaN where it is undefined (fewer than 2 values on a side, or both sides constant)."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, math.nan
    va, vb = sample_std(a) ** 2 / len(a), sample_std(b) ** 2 / len(b)
    se2 = va + vb
    if se2 == 0:
        return math.nan, math.nan, math.nan
    t = (mean(a) - mean(b)) / math.sqrt(se2)
    df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return t, df, min(1.0, 2.0 * t_sf(abs(t), df))
