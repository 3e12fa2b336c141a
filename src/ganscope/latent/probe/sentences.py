"""Turn a probe's numbers into ranked one-line sentences ("dim 20: + moves Trouser -> Sandal").

The seeds described dims in words; these sentences say the same kind of thing, but name only the
effects that beat the null, with their sizes, so that a reader can check a claim at a glance.
They work on one dim's row of slopes / ratios / real flags (not on a ``ProbeResult``), so that
the result can call them without the two modules importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ganscope.latent.probe.effects import CLASS_EFFECTS, CLASS_NAME, REGIONS


def score(ratio: np.ndarray, real: np.ndarray) -> tuple[bool, float]:
    """(has a real effect, strongest ratio among its real effects, else among all) of one dim's
    ``ratio`` and ``real`` rows."""
    return bool(real.any()), float(ratio[real].max() if real.any() else ratio.max())


def ranked(dims: Sequence[int], ratio: np.ndarray, real: np.ndarray) -> list[int]:
    """Dims with a real effect first, by their strongest real |slope| / null median; then
    the rest by their strongest ratio. ``ratio`` and ``real`` are (n_dims, E), rows as ``dims``."""

    def key(d: int) -> tuple[bool, float, int]:
        i = dims.index(d)
        has_real, best = score(ratio[i], real[i])
        return (not has_real, -best, d)

    return sorted(dims, key=key)


def sentence(d: int, effects: Sequence[str], slopes: np.ndarray, real: np.ndarray,
             ratio: np.ndarray) -> str:
    """One line for dim ``d`` from its rows (E,) of slopes, real flags and ratios: 'dim 20:
    + moves Trouser -> Sandal (+0.18 p per unit, 4.1x the null); brightness +2.0 %/unit'.
    Only real effects are named, + means increasing z[d]."""
    s = slopes
    idx = {e: j for j, e in enumerate(effects)}
    parts = []
    cls = [idx[c] for c in CLASS_EFFECTS if c in idx]
    if cls and real[cls].any():
        # the named classes are real ones where there are (strongest by ratio), else the
        # largest raw move: a class with a big but ordinary slope is not the finding
        up = [j for j in cls if real[j] and s[j] > 0]
        down = [j for j in cls if real[j] and s[j] < 0]
        gain = (max(up, key=lambda j: ratio[j]) if up else max(cls, key=lambda j: s[j]))
        lose = (max(down, key=lambda j: ratio[j]) if down else min(cls, key=lambda j: s[j]))
        key = gain if up else lose
        parts.append(f"+ moves {CLASS_NAME[effects[lose]]} -> "
                     f"{CLASS_NAME[effects[gain]]} ({s[key]:+.2f} p per unit"
                     f"{'' if key == gain else ' for ' + CLASS_NAME[effects[lose]]}"
                     f", {ratio[key]:.1f}x the null)")
    for e in ("brightness", *REGIONS, "area"):
        j = idx.get(e)
        if j is not None and real[j]:
            label = "silhouette" if e == "area" else e
            parts.append(f"{label} {100 * s[j]:+.1f} %/unit ({ratio[j]:.1f}x)")
    j = idx.get("pixel_change")
    if j is not None and real[j]:
        parts.append(f"pixel change {100 * s[j]:.1f} %/unit ({ratio[j]:.1f}x)")
    if not parts:
        j = int(np.argmax(ratio))
        unit = "p" if effects[j].startswith("p_") else "x 100 %"
        val = s[j] if unit == "p" else 100 * s[j]
        return (f"dim {d}: nothing above the null (strongest: {effects[j]} "
                f"{val:+.2f}{' p' if unit == 'p' else ' %'}/unit, {ratio[j]:.1f}x the null)")
    return f"dim {d}: " + "; ".join(parts)
