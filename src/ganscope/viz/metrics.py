"""Quality over training: FID, KID, precision/recall/density/coverage and class coverage per epoch.

Reads the run's metrics.jsonl (the series comparable with its latest record, one point per
epoch) and writes ``figures/metrics.png``; the best-FID epoch is marked on every panel, because
"when was G best?" is the question this figure answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ganscope.diagnostics import comparable_series
from ganscope.errors import RunError
from ganscope.metrics.labels import axis_label, metric_label
from ganscope.render import save_figure
from ganscope.viz.curves import _preset

if TYPE_CHECKING:  # annotations only: training writes its figures with this module
    from ganscope.training.run import Run

METRICS_FIGSIZE = (10.0, 6.5)
_PRDC = (("precision", "tab:blue"), ("recall", "tab:orange"), ("density", "tab:green"),
         ("coverage", "tab:purple"))


def metriccomparable_series(run: Run) -> list[dict[str, Any]]:
    series = comparable_series(run.read_metrics())
    if not series:
        raise RunError(f"run '{run.name}' has no metrics yet: `ganscope eval {run.name} "
                       "--checkpoint all`, or train with --eval-every 1")
    return series


def make_metrics_figure(run: Run, series: list[dict[str, Any]] | None = None) -> Figure:
    s = series if series is not None else metriccomparable_series(run)
    if "fid" not in s[-1]["metrics"]:
        return make_points_metrics_figure(run, s)
    ep = np.array([r["epoch"] for r in s])

    def col(key: str, scale: float = 1.0) -> np.ndarray:
        return np.array([r["metrics"].get(key, np.nan) * scale for r in s], dtype=float)

    fig = Figure(figsize=METRICS_FIGSIZE, layout="constrained")
    (a_fid, a_kid), (a_prdc, a_cls) = fig.subplots(2, 2, sharex=True)
    fid = col("fid")
    marker = "o" if len(ep) <= 40 else None
    a_fid.plot(ep, fid, marker=marker, color="tab:blue", label=metric_label("fid"))
    a_fid.set_ylabel(axis_label("fid"))
    kid, kid_sd = col("kid"), col("kid_std")
    a_kid.plot(ep, kid, marker=marker, color="tab:red", label=metric_label("kid"))
    a_kid.fill_between(ep, kid - kid_sd, kid + kid_sd, color="tab:red", alpha=0.15, lw=0,
                       label="+-1 std over subsets")
    a_kid.set_ylabel(axis_label("kid"))
    for key, colour in _PRDC:
        a_prdc.plot(ep, col(key), marker=marker, color=colour, label=key)
    a_prdc.set_ylabel("PRDC (k=5)")
    a_prdc.set_ylim(bottom=0.0)
    a_cls.plot(ep, col("classes_covered"), marker=marker, color="tab:brown",
               label=metric_label("classes_covered"))
    a_cls.set_ylim(0, 10.5)
    a_cls.set_ylabel(f"{metric_label('classes_covered')} (of 10)")
    conf = a_cls.twinx()
    conf.plot(ep, col("confidence"), ls="--", color="0.4", label="mean confidence")
    conf.set_ylim(0, 1.05)
    conf.set_ylabel("mean classifier confidence")
    if np.isfinite(fid).any():
        b = int(ep[np.nanargmin(fid)])
        for ax in (a_fid, a_kid, a_prdc, a_cls):
            ax.axvline(b, color="tab:green", ls=":", lw=1.2)
        a_fid.annotate(f"{metric_label('best_fid')} {np.nanmin(fid):.2f} (epoch {b})",
                       (b, np.nanmin(fid)),
                       textcoords="offset points", xytext=(6, 8), fontsize="small")
    for ax in (a_fid, a_kid, a_prdc, a_cls):
        ax.grid(True, alpha=0.3)
    for ax in (a_prdc, a_cls):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    a_kid.legend(fontsize="small")
    a_prdc.legend(fontsize="small", ncol=2, loc="best")
    h1, l1 = a_cls.get_legend_handles_labels()
    h2, l2 = conf.get_legend_handles_labels()
    a_cls.legend(h1 + h2, l1 + l2, fontsize="small", loc="lower right")
    r = s[-1]
    fig.suptitle(f"{run.name} (preset {_preset(run)}): quality per epoch - {r['n_fake']} "
                 f"generated vs {r['n_real']} real ({r['reference']['split']}), "
                 f"{r['extractor']['name']} features")
    return fig


def make_points_metrics_figure(run: Run, s: list[dict[str, Any]]) -> Figure:
    """The 2-D lab's metrics per epoch: mode coverage (mixtures) and distances to the target."""
    ep = np.array([r["epoch"] for r in s])

    def col(key: str) -> np.ndarray:
        return np.array([r["metrics"].get(key, np.nan) for r in s], dtype=float)

    mixture = "modes_covered" in s[-1]["metrics"]
    fig = Figure(figsize=METRICS_FIGSIZE, layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    marker = "o" if len(ep) <= 40 else None
    if mixture:
        k = s[-1]["metrics"].get("n_modes", np.nan)
        axes[0].plot(ep, col("modes_covered"), marker=marker, label=">= 1 % of samples")
        axes[0].plot(ep, col("modes_covered_any"), ls="--", label="any sample (lenient)")
        axes[0].set_ylim(0, k + 0.5)
        axes[0].set_ylabel(f"modes covered (of {k})")
        axes[0].legend(fontsize="small")
        axes[1].plot(ep, 100 * col("hq_fraction"), marker=marker, color="tab:green")
        axes[1].set_ylim(0, 102)
        axes[1].set_ylabel("% high-quality (within 3 std)")
        axes[2].plot(ep, col("reverse_kl"), marker=marker, color="tab:red")
        axes[2].set_ylabel("reverse KL of mode histogram")
    else:
        for ax in axes[:3]:
            ax.set_visible(False)
    dist = axes[3]
    for key, colour in (("sliced_wasserstein", "tab:blue"), ("energy_distance", "tab:orange"),
                        ("mmd_rbf", "tab:purple")):
        dist.plot(ep, col(key), marker=marker, color=colour, label=key)
    dist.set_yscale("symlog", linthresh=1e-3)
    dist.set_ylabel("distance to target")
    dist.legend(fontsize="small")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    for ax in axes[2:]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    r = s[-1]
    fig.suptitle(f"{run.name} (preset {_preset(run)}): {r['n_fake']} generated points vs "
                 f"{r['reference']['dataset']}")
    return fig


def plot_metrics(run: Run) -> Path:
    """Write ``figures/metrics.png``; returns its path."""
    return save_figure(make_metrics_figure(run), run.figures / "metrics.png")
