"""The probe's heatmap: effects (rows) x dims (columns), coloured by how far each slope stands
out from random directions, with a dot on the cells called real.

It reads a result through :class:`ProbeLike` (the attributes it draws) rather than importing
``ProbeResult``, because the result's ``save`` draws this figure: the two modules would
otherwise import each other.
"""

from __future__ import annotations

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
    null_median: np.ndarray
    threshold: np.ndarray
    ratio: np.ndarray
    real: np.ndarray


def heatmap_figure(res: ProbeLike) -> Figure:
    """Effects (rows) x dims (columns); colour = sign(slope) * |slope| / null median, clipped at
    the threshold's typical ratio x 2; real cells carry a black dot."""
    signed = np.sign(res.slopes) * np.minimum(res.ratio, 1e6)  # (D, E)
    thr_ratio = np.nanmedian(res.threshold / np.where(res.null_median > 0, res.null_median, 1))
    vmax = float(max(2 * thr_ratio, 4.0))
    D, E = signed.shape
    fig = Figure(figsize=(min(4 + 0.16 * D, 22), 1.6 + 0.32 * E))
    ax = fig.add_subplot()
    im = ax.imshow(signed.T, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                   interpolation="nearest")
    yy, xx = np.nonzero(res.real.T)
    ax.scatter(xx, yy, s=22, c="black", marker="o", edgecolors="white", linewidths=0.6)
    ax.set_yticks(range(E), res.effects, fontsize="small")
    every = 1 if D <= 40 else 5
    ticks = [i for i in range(D) if res.dims[i] % every == 0]
    ax.set_xticks(ticks, [str(res.dims[i]) for i in ticks], fontsize="small")
    ax.set_xlabel("latent dim")
    info = res.info
    title = (f"{info.get('run', 'generator')}: per-unit effect of each dim / median of "
             f"{info.get('n_null', len(res.null_slopes))} random directions "
             f"(n_base {info.get('n_base', '?')}; dot = real, family-wise "
             f"{100 * res.alpha:g} %)")
    ax.set_title(title, loc="left", fontsize="medium")
    cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    cb.set_label("signed |slope| / null median")
    fig.tight_layout()
    return fig
