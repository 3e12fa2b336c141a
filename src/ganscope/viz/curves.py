"""Training curves from a run's events.jsonl: losses and mean D outputs over generator steps.

Built on ``matplotlib.figure.Figure`` + the Agg canvas directly (no pyplot): no global figure
state, no GUI backend, safe in threads and servers. ``make_*_figure`` return the Figure so tests
and notebooks can inspect or restyle it; ``plot_*`` render it to PNG in memory and write it
atomically into ``run/figures/``, so a reader (UI, browser) never sees half a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ganscope.diagnostics import d_wins_from_arrays
from ganscope.errors import RunError
from ganscope.losses import LOSSES
from ganscope.render import save_figure

if TYPE_CHECKING:  # annotations only: training writes its figures with this module
    from ganscope.training.run import Run

LOSSES_FIGSIZE = (10.0, 6.0)
D_OUTPUTS_FIGSIZE = (10.0, 4.0)
RAW_ALPHA = 0.25
RAW_LW = 0.6
SMOOTH_LW = 1.6
MAX_EPOCH_LABELS = 20  # more epochs than this: every boundary keeps its tick, labels thin out

PROBABILITY = "probability"
PROB_LABEL = "mean D output (probability)"
CRITIC_LABEL = "mean critic score"

_LOSS_COLOURS = ("tab:blue", "tab:orange")  # D, G
_D_COLOURS = ("tab:green", "tab:red")  # D(x), D(G(z))


# --- smoothing --------------------------------------------------------------------------------


def default_window(n: int) -> int:
    """About 1/50 of the points (odd, at least 1): smooth enough to show the trend of a noisy
    GAN loss, short enough to keep features that last a fraction of an epoch."""
    w = max(1, n // 50)
    return w if w % 2 == 1 else w + 1


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average, with a local-linear fit where the window meets the ends.

    Why: an EMA (even bias-corrected) lags the data by about its time constant, so a drop in
    the loss would be drawn later than it happened; a 'valid' convolution loses the ends and a
    zero-padded one drags them towards 0. A centred window has no lag. At the ends it cannot
    stay centred: averaging the truncated window would lag again (a trend flattens), shrinking
    it symmetrically leaves the last points nearly raw (a noisy hook right where one reads
    "where did it end"). So point i fits a straight line, least squares, to the values within
    ``window // 2`` of it and takes the line's value at i. With a full, symmetric window that
    is exactly the plain mean; near the ends it uses every available point without bias for a
    linear trend. Consequences: a constant or a ramp is reproduced exactly everywhere, a
    step stays centred, and there is no shift in time.

    An even ``window`` is widened by one to stay centred. Non-finite values (a diverged step)
    are skipped, not spread: the fit uses the finite values in the window (NaN if none).
    Returns float64 of the same length, in O(n) via cumulative sums.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return x.copy()
    half = max(int(window), 1) // 2
    w = np.isfinite(x).astype(np.float64)
    y = np.where(w > 0, x, 0.0)
    t = np.arange(n, dtype=np.float64)

    def csum(a: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(a)))

    c_w, c_t, c_tt, c_y, c_ty = (csum(a) for a in (w, w * t, w * t * t, y, w * t * y))
    i = np.arange(n)
    lo, hi = np.maximum(i - half, 0), np.minimum(i + half + 1, n)
    s_w = c_w[hi] - c_w[lo]
    s_y = c_y[hi] - c_y[lo]
    # moments of u = t - i (the fit is centred on the point it estimates)
    s_u = (c_t[hi] - c_t[lo]) - t * s_w
    s_uu = (c_tt[hi] - c_tt[lo]) - 2 * t * (c_t[hi] - c_t[lo]) + t * t * s_w
    s_uy = (c_ty[hi] - c_ty[lo]) - t * s_y
    det = s_w * s_uu - s_u * s_u
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s_y / s_w
        line = (s_uu * s_y - s_u * s_uy) / det
    # (a symmetric window has s_u == 0, so its line value is the plain mean); a single point,
    # or points all at one u, have no slope to fit: take their mean
    use_line = (s_w >= 2) & (det > 1e-9 * np.maximum(s_w * s_uu, 1.0))
    out = np.where(use_line, line, mean)
    out[s_w == 0] = np.nan
    return out


def effective_window(window: int) -> int:
    """The window ``smooth`` really uses (odd), for honest legend labels."""
    return 2 * (max(int(window), 1) // 2) + 1


# --- reading events ---------------------------------------------------------------------------


@dataclass
class Curves:
    """The per-step series of one run, as float arrays (NaN where a value is missing)."""

    steps: np.ndarray
    epochs: np.ndarray
    loss_d: np.ndarray
    loss_g: np.ndarray
    d_x: np.ndarray
    d_g_z: np.ndarray

    def __len__(self) -> int:
        return int(self.steps.size)


def no_events_message(run: Run) -> str:
    return f"run '{run.name}' has no training events yet: train it first (ganscope train ...)"


def load_curves(run: Run) -> Curves:
    """Events as arrays, ordered by step; RunError (one line) when there are none yet."""
    rows = [r for r in run.read_events() if isinstance(r, dict)]
    if not rows:
        raise RunError(no_events_message(run))

    def col(key: str) -> np.ndarray:
        vals = []
        for r in rows:
            v = r.get(key)
            vals.append(float(v) if isinstance(v, (int, float)) else math.nan)
        return np.asarray(vals, dtype=np.float64)

    steps = col("step")
    if not np.all(np.isfinite(steps)):
        steps = np.arange(1, len(rows) + 1, dtype=np.float64)
    epochs = col("epoch")
    order = np.argsort(steps, kind="stable")
    c = Curves(steps, epochs, col("loss_d"), col("loss_g"), col("d_x"), col("d_g_z"))
    return Curves(*(getattr(c, f)[order] for f in ("steps", "epochs", "loss_d", "loss_g",
                                                      "d_x", "d_g_z")))


def epoch_starts(steps: np.ndarray, epochs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first step of each epoch, that epoch's number), from the events' own ``epoch`` field,
    so a resumed or interrupted run is marked where its epochs really began."""
    ok = np.isfinite(epochs)
    if not ok.any():
        return np.empty(0), np.empty(0, dtype=int)
    s, e = steps[ok], epochs[ok].astype(int)
    nums = np.unique(e)
    firsts = np.array([s[e == k].min() for k in nums])
    order = np.argsort(firsts)
    return firsts[order], nums[order]


def d_output_label(d_output: str | None) -> str:
    """The y label for D(x) / D(G(z)): probabilities (sigmoid D) vs raw critic scores."""
    return PROB_LABEL if d_output == PROBABILITY else CRITIC_LABEL


def _d_output_kind(run: Run) -> str | None:
    """What D outputs, as the training loop recorded it in meta.json's ``d_output``
    ("probability" / "raw critic score")."""
    kind = run.meta().get("d_output")
    if kind is None:
        # Only for runs without that field (from before it, or hand-made): whether the
        # config's loss wants a sigmoid D, asked of the loss class (nothing is built).
        try:
            kind = PROBABILITY if LOSSES.get(run.config().loss.name).sigmoid else "raw critic score"
        except Exception:
            kind = None
    return kind


def _preset(run: Run) -> str:
    preset = run.meta().get("preset")
    if not preset:
        try:
            preset = run.config().preset
        except RunError:
            preset = "?"
    return str(preset)


# --- drawing ----------------------------------------------------------------------------------


def _finite(y: np.ndarray) -> np.ndarray:
    """inf would wreck autoscaling; NaN just leaves a gap in the line."""
    return np.where(np.isfinite(y), y, np.nan)


def _robust_ylim(ax: Axes, raw: list[np.ndarray]) -> None:
    """Fit the y range to all raw values, unless a few exploding steps would flatten the rest
    into a line: that side drops the values more than half the bulk's span (0.5-99.5 %)
    beyond it, and a note says how many steps are cut.

    The smoothed line needs no say: a moving average stays within its window's raw values.
    """
    r = np.concatenate([a[np.isfinite(a)] for a in raw]) if raw else np.empty(0)
    if not r.size:
        return
    lo, hi = float(r.min()), float(r.max())
    p_lo, p_hi = (float(v) for v in np.percentile(r, [0.5, 99.5]))
    bulk = p_hi - p_lo
    clipped = False
    if bulk > 0 and hi - p_hi > 0.5 * bulk:  # each side on its own; only far outliers go
        hi, clipped = float(r[r <= p_hi + 0.5 * bulk].max()), True
    if bulk > 0 and p_lo - lo > 0.5 * bulk:
        lo, clipped = float(r[r >= p_lo - 0.5 * bulk].min()), True
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo) * 0.05, 0.05)
    lo, hi = lo - pad, hi + pad
    ax.set_ylim(lo, hi)
    if clipped:
        n_out = int(np.count_nonzero((r < lo) | (r > hi)))
        ax.annotate(f"{n_out} step value{'s' if n_out != 1 else ''} off-scale "
                    f"(range {r.min():.3g} to {r.max():.3g})", xy=(0.005, 0.015),
                    xycoords="axes fraction", ha="left", va="bottom", fontsize="x-small",
                    color="0.35")


def _draw_series(ax: Axes, x: np.ndarray, y: np.ndarray, window: int, colour: str,
                 name: str | None) -> tuple[np.ndarray, np.ndarray]:
    raw = _finite(y)
    sm = smooth(raw, window)
    prefix = f"{name} " if name else ""
    ax.plot(x, raw, color=colour, alpha=RAW_ALPHA, lw=RAW_LW, label=f"{prefix}raw")
    ax.plot(x, sm, color=colour, lw=SMOOTH_LW,
            label=f"{prefix}smoothed (window {effective_window(window)})")
    return raw, sm


def _legible_raw_swatches(legend) -> None:
    """The legend's copy of a faint raw line would be invisible: draw it thicker there."""
    for h in legend.legend_handles:
        if h is not None and h.get_alpha() == RAW_ALPHA:
            h.set_linewidth(3.0)
            h.set_alpha(0.5)


def _mark_epochs(ax: Axes, starts: np.ndarray, nums: np.ndarray, top_axis: bool) -> None:
    """Light vertical lines where epochs 2.. begin; optionally an 'epoch' axis on top."""
    if starts.size > 1:
        ax.vlines(starts[1:], 0, 1, transform=ax.get_xaxis_transform(), colors="0.6",
                  linewidths=0.8, alpha=0.6, zorder=0.5)
    if top_axis and starts.size:
        sec = ax.secondary_xaxis("top")
        sec.set_xticks(starts)
        every = max(1, math.ceil(starts.size / MAX_EPOCH_LABELS))
        sec.set_xticklabels([str(n) if i % every == 0 else "" for i, n in enumerate(nums)])
        sec.set_xlabel("epoch")


def _xlim(ax: Axes, steps: np.ndarray) -> None:
    lo, hi = float(steps.min()), float(steps.max())
    ax.set_xlim(lo - 0.5, hi + 0.5) if hi > lo else ax.set_xlim(lo - 1, hi + 1)


def make_losses_figure(run: Run, curves: Curves | None = None) -> Figure:
    """D loss above G loss on a shared step axis: raw steps faint, smoothed trend on top."""
    c = curves if curves is not None else load_curves(run)
    window = default_window(len(c))
    starts, nums = epoch_starts(c.steps, c.epochs)
    fig = Figure(figsize=LOSSES_FIGSIZE, layout="constrained")
    ax_d, ax_g = fig.subplots(2, 1, sharex=True)
    for i, (ax, y, label) in enumerate(((ax_d, c.loss_d, "D loss"), (ax_g, c.loss_g, "G loss"))):
        raw, _ = _draw_series(ax, c.steps, y, window, _LOSS_COLOURS[i], None)
        _robust_ylim(ax, [raw])
        _mark_epochs(ax, starts, nums, top_axis=(i == 0))
        ax.set_ylabel(label)
        ax.grid(True, axis="y", alpha=0.3)
        _legible_raw_swatches(ax.legend(loc="best", fontsize="small", framealpha=0.85))
    _xlim(ax_g, c.steps)
    ax_g.set_xlabel("generator step")
    ax_d.set_title(f"{run.name} (preset {_preset(run)}): losses")
    return fig


def make_d_outputs_figure(run: Run, curves: Curves | None = None) -> Figure:
    """D(x) and D(G(z)) in one panel; probabilities get [0, 1] and the 0.5 equilibrium line."""
    c = curves if curves is not None else load_curves(run)
    window = default_window(len(c))
    starts, nums = epoch_starts(c.steps, c.epochs)
    kind = _d_output_kind(run)
    fig = Figure(figsize=D_OUTPUTS_FIGSIZE, layout="constrained")
    ax = fig.subplots()
    raws = [_draw_series(ax, c.steps, y, window, colour, name)[0]
            for colour, y, name in ((_D_COLOURS[0], c.d_x, "D(x)"),
                                    (_D_COLOURS[1], c.d_g_z, "D(G(z))"))]
    if kind == PROBABILITY:
        ax.axhline(0.5, color="0.3", ls="--", lw=1.0, label="0.5 (equilibrium)")
        ax.set_ylim(0.0, 1.0)

        flag = d_wins_from_arrays(c.steps, c.d_x, c.d_g_z, kind)
        if flag is not None:  # say it on the figure: the curves alone look merely 'flat'
            ax.axvspan(flag.start_step, flag.end_step, color="tab:red", alpha=0.08, lw=0,
                       label="flag d-wins: D separates outright")
    else:
        _robust_ylim(ax, raws)
    _mark_epochs(ax, starts, nums, top_axis=True)
    _xlim(ax, c.steps)
    ax.set_xlabel("generator step")
    ax.set_ylabel(d_output_label(kind))
    ax.grid(True, axis="y", alpha=0.3)
    # outside, below: two long-lived curves plus a reference line leave no free corner inside
    _legible_raw_swatches(fig.legend(loc="outside lower center", fontsize="small", ncol=5,
                                     frameon=False))
    ax.set_title(f"{run.name} (preset {_preset(run)}): D outputs")
    return fig


def plot_losses(run: Run, curves: Curves | None = None) -> Path:
    """Write ``figures/losses.png``; returns its path."""
    return save_figure(make_losses_figure(run, curves), run.figures / "losses.png")


def plot_d_outputs(run: Run, curves: Curves | None = None) -> Path:
    """Write ``figures/d_outputs.png``; returns its path."""
    return save_figure(make_d_outputs_figure(run, curves), run.figures / "d_outputs.png")


def plot_run(run: Run) -> list[Path]:
    """Both curve figures (events read once), plus the metrics figure once the run has been
    evaluated; RunError if the run has no events yet."""
    curves = load_curves(run)
    out = [plot_losses(run, curves), plot_d_outputs(run, curves)]
    if run.read_metrics():
        # local: import-time cycle, viz.metrics imports this module (_preset)
        from ganscope.viz.metrics import plot_metrics

        out.append(plot_metrics(run))
    return out
