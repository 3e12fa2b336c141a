"""The probe's heatmap: effects (rows) x dims (columns), coloured by effect size (|slope| over
its measure's floor, the ranking's key), with a dot on the cells called real (beyond random
directions and at least the floor) and a ring on those beyond the null only under the floor.
Colouring by the ratio to the null instead made a class the generator never makes look like the
strongest effect of the run (issue 22).

It reads a result through :class:`ProbeLike` (the attributes it draws) rather than importing
``ProbeResult``, because the result's ``save`` draws this figure: the two modules would
otherwise import each other.
"""

from __future__ import annotations

import textwrap
from typing import Any, Protocol

import numpy as np
from matplotlib.figure import Figure

DPI = 110


class ProbeLike(Protocol):
    """What the heatmap reads of a :class:`ganscope.latent.probe.result.ProbeResult`."""

    dims: list[int]
    effects: list[str]
    alpha: float
    info: dict[str, Any]
    slopes: np.ndarray
    null_slopes: np.ndarray
    floor: np.ndarray
    size: np.ndarray
    beyond_null: np.ndarray
    real: np.ndarray


#: colour scale: +-VMAX floors (a fixed scale, so heatmaps of different runs compare)
VMAX = 5.0


def heatmap_figure(res: ProbeLike) -> Figure:
    """Effects (rows) x dims (columns); colour = sign(slope) * |slope| / floor, clipped at
    +-VMAX; real cells carry a black dot, cells beyond the null but under the floor a ring."""
    signed = np.sign(res.slopes) * res.size  # (D, E)
    vmax = VMAX
    D, E = signed.shape
    fig = Figure(figsize=(min(4 + 0.16 * D, 22), 1.6 + 0.32 * E))
    ax = fig.add_subplot()
    im = ax.imshow(signed.T, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                   interpolation="nearest")
    yy, xx = np.nonzero(res.real.T)
    ax.scatter(xx, yy, s=22, c="black", marker="o", edgecolors="white", linewidths=0.6)
    yy, xx = np.nonzero((res.beyond_null & ~res.real).T)
    ax.scatter(xx, yy, s=22, facecolors="none", edgecolors="black", marker="o", linewidths=0.8)
    ax.set_yticks(range(E), res.effects, fontsize="small")
    every = 1 if D <= 40 else 5
    ticks = [i for i in range(D) if res.dims[i] % every == 0]
    ax.set_xticks(ticks, [str(res.dims[i]) for i in ticks], fontsize="small")
    ax.set_xlabel("latent dim")
    info = res.info
    fl = dict(zip(res.effects, res.floor))
    cls = next((float(v) for e, v in fl.items() if e.startswith("p_")), None)
    img = next((float(v) for e, v in fl.items() if not e.startswith("p_")), None)
    floors = ", ".join(x for x in (cls is not None and f"class p {cls:g}",
                                   img is not None and f"image {100 * img:g} %") if x)
    title = (f"{info.get('run', 'generator')}: per-unit effect of each dim / its floor "
             f"({floors} per unit; n_base {info.get('n_base', '?')})\n"
             f"dot = real: beyond {info.get('n_null', len(res.null_slopes))} random directions "
             f"(family-wise {100 * res.alpha:g} %) and at least the floor; ring = beyond the null, "
             "under the floor")
    # wrapped to the figure's width: with 16 dims the figure is ~6.6 in wide and the two
    # lines ran off its right edge (looked at on an InfoGAN run's probe)
    # the room right of the y tick labels (~1.1 in), at ~8 px (0.08 in) a character
    chars = max(30, int((fig.get_figwidth() - 1.1) / 0.08))
    title = "\n".join(textwrap.fill(line, chars, break_on_hyphens=False)
                      for line in title.split("\n"))
    ax.set_title(title, loc="left", fontsize="medium")
    cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    cb.set_label("signed |slope| / floor")
    fig.tight_layout()
    return fig
