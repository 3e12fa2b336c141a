"""Turn a probe's numbers into ranked one-line sentences ("dim 19: + raises Pullover ...").

The seeds described dims in words; these sentences say the same kind of thing, but name only the
effects tested as real (beyond the null *and* at least their measure's floor, see
:mod:`.stats`), each with its size per unit and over the sweep (the seeds' -3..+3), so that a
reader can check a claim at a glance. The ranking is by effect size (|slope| / floor) among the
real effects, not by the ratio to the null: a ratio is large wherever random directions barely
move a measure, whether or not the effect is big enough to see (issue 22). A dim with no real
effect says it is like any random direction, with its largest effect and the random directions'
typical size of the same measure.

They read a result through :class:`ProbeRows` (not ``ProbeResult``), so that the result can call
them without the two modules importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ganscope.latent.probe.effects import CLASS_NAME
from ganscope.latent.probe.stats import range_label


class ProbeRows(Protocol):
    """What the sentences read of a :class:`ganscope.latent.probe.result.ProbeResult`: per dim
    (rows, as ``dims``) and effect (columns, as ``effects``)."""

    dims: list[int]
    values: list[float]
    effects: list[str]
    slopes: np.ndarray  # (D, E) per unit
    span: np.ndarray  # (D, E) measured change over the sweep
    floor: np.ndarray  # (E,)
    size: np.ndarray  # (D, E) |slope| / floor
    beyond_null: np.ndarray  # (D, E)
    real: np.ndarray  # (D, E) beyond the null and >= floor
    null_median: np.ndarray  # (E,) median |slope| of the random directions
    null_q95: np.ndarray  # (E,)
    threshold: np.ndarray  # (E,) |slope| beyond which an effect beats the null (Bonferroni)


def score(size: np.ndarray, real: np.ndarray) -> tuple[bool, float]:
    """(has a real effect, largest size among its real effects, else among all) of one dim's
    ``size`` and ``real`` rows."""
    return bool(real.any()), float(size[real].max() if real.any() else size.max())


def ranked(dims: Sequence[int], size: np.ndarray, real: np.ndarray) -> list[int]:
    """Dims with a real effect first, by their largest real effect size (|slope| / floor);
    then the rest by their largest size. ``size`` and ``real`` are (n_dims, E), rows as
    ``dims``; ties by dim."""
    row = {d: i for i, d in enumerate(dims)}

    def key(d: int) -> tuple[bool, float, int]:
        has_real, best = score(size[row[d]], real[row[d]])
        return (not has_real, -best, d)

    return sorted(dims, key=key)


def _label(e: str) -> str:
    if e in CLASS_NAME:
        return f"p({CLASS_NAME[e]})"
    return {"area": "silhouette", "pixel_change": "pixel change"}.get(e, e)


def _per_unit(e: str, s: float, signed: bool = True) -> str:
    """A per-unit slope in its measure's unit: probability, or % of full scale."""
    sign = "+" if signed else ""
    if e.startswith("p_"):
        return f"{s:{sign}.{3 if abs(s) >= 0.01 else 4}f}/unit"
    return f"{100 * s:{sign}.{1 if abs(s) >= 0.001 else 3}f} %/unit"


def _span(e: str, span: float, rl: str) -> str:
    if e == "pixel_change":
        return f"{100 * span:.0f} % at the ends of {rl}"
    if e.startswith("p_"):
        return f"{span:+.2f} over {rl}"
    return f"{100 * span:+.0f} % over {rl}"


def _effect(res: ProbeRows, i: int, j: int) -> str:
    """'brightness +5.0 %/unit (+30 % over -3..+3)'."""
    e = res.effects[j]
    return (f"{_label(e)} {_per_unit(e, res.slopes[i, j], e != 'pixel_change')} "
            f"({_span(e, res.span[i, j], range_label(res.values))})")


def _classes(res: ProbeRows, i: int, cls: list[int]) -> str:
    """'+ moves Coat -> Sneaker (Coat -0.053, Sneaker +0.032 p/unit; -0.32, +0.19 over -3..+3)'
    from the real class effects ``cls`` of row i (named only if real; largest first)."""
    s = res.slopes[i]
    down = sorted((j for j in cls if s[j] < 0), key=lambda j: -res.size[i, j])
    up = sorted((j for j in cls if s[j] > 0), key=lambda j: -res.size[i, j])

    def names(js: list[int]) -> str:
        return ", ".join(CLASS_NAME[res.effects[j]] for j in js)

    if down and up:
        head = f"+ moves {names(down)} -> {names(up)}"
    elif up:
        head = f"+ raises {names(up)}"
    else:
        head = f"+ lowers {names(down)}"
    js = down + up
    per = ", ".join(f"{CLASS_NAME[res.effects[j]]} {s[j]:+.3f}" for j in js)
    spans = ", ".join(f"{res.span[i, j]:+.2f}" for j in js)
    return f"{head} ({per} p/unit; {spans} over {range_label(res.values)})"


def _like_random(res: ProbeRows, i: int) -> str:
    """'like any random direction (largest: centre -4.7 %/unit, -28 % over -3..+3; random
    directions 0.9 %/unit typical, 4.3 % at their 95th percentile; beyond the null from 7.2 %)'
    for a dim without a real effect: its largest effect by size, beside the random directions'
    median and 95th percentile |slope| of the same measure and the rule's threshold. The
    threshold is named because with many dims probed one in twenty passes the 95th percentile by
    chance: without it, -4.7 against 4.3 reads like a missed effect."""
    j = int(np.argmax(res.size[i]))
    e = res.effects[j]

    def bare(v: float) -> str:
        return _per_unit(e, v, False).replace("/unit", "")

    return (f"like any random direction (largest: {_label(e)} "
            f"{_per_unit(e, res.slopes[i, j], e != 'pixel_change')}, "
            f"{_span(e, res.span[i, j], range_label(res.values))}; random directions "
            f"{_per_unit(e, res.null_median[j], False)} typical, {bare(res.null_q95[j])} at "
            f"their 95th percentile; beyond the null from {bare(res.threshold[j])})")


def sentence(res: ProbeRows, d: int) -> str:
    """One line for dim ``d``: 'dim 19: + moves Dress -> Pullover (...); brightness +2.0 %/unit
    (+12 % over -3..+3)'. Only real effects are named, largest first; + means increasing z[d].
    Without a real effect: 'dim 0: nothing above the null: like any random direction (...)',
    or 'nothing large enough to matter' when some effect beats the null below its floor."""
    i = list(res.dims).index(d)
    real = res.real[i]
    if not real.any():
        weak = [int(j) for j in np.nonzero(res.beyond_null[i])[0]]
        if not weak:
            return f"dim {d}: nothing above the null: {_like_random(res, i)}"
        j, *more = sorted(weak, key=lambda j: -res.size[i, j])
        e = res.effects[j]
        small = (f"{_label(e)} {_per_unit(e, res.slopes[i, j])} (floor "
                 f"{_per_unit(e, res.floor[j], False)})"
                 + (f" and {len(more)} smaller" if more else ""))
        return (f"dim {d}: nothing large enough to matter: {_like_random(res, i)}; beyond the "
                f"null only under its floor: {small}")
    cls = [j for j, e in enumerate(res.effects) if e in CLASS_NAME and real[j]]
    parts: list[tuple[float, str]] = []
    if cls:
        parts.append((float(res.size[i, cls].max()), _classes(res, i, cls)))
    for j, e in enumerate(res.effects):
        if real[j] and e not in CLASS_NAME:
            parts.append((float(res.size[i, j]), _effect(res, i, j)))
    parts.sort(key=lambda p: -p[0])
    return f"dim {d}: " + "; ".join(p for _, p in parts)
