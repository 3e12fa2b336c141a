"""Failure patterns that users cannot read off the curves, flagged from a run's files.

Reads only the run directory (events.jsonl, metrics.jsonl, meta.json). Each check is a plain
function returning a :class:`Flag` or ``None``, so `ganscope runs`, the plots and the reports all
say the same thing about a run:

- ``d-wins``: D separates real from fake outright (mean D(x) near 1, D(G(z)) near 0) for a long
  stretch. G then gets vanishing gradients and stops learning (the seeds' DCGAN with PyTorch's
  default init and Adam betas does this within ~50 steps).
- ``diverged``: a loss became NaN or infinite.
- ``collapse``: class coverage or recall fell from its peak (G narrowed to fewer modes).
- ``early-best``: the best FID came long before the end and the final generator is clearly worse.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ganscope.training.evaluation import comparable
from ganscope.training.run import Run

# d-wins: a trailing median over SMOOTH steps, so one noisy batch neither starts nor ends a
# stretch; flagged when the stretch is long in absolute and in relative terms.
D_WINS_HI, D_WINS_LO = 0.99, 0.01
D_WINS_SMOOTH = 10
D_WINS_GAP = 25  # brief recoveries (a few batches where G scores) do not end a stretch
D_WINS_MIN_STEPS = 50
D_WINS_MIN_FRACTION = 0.25
COLLAPSE_CLASS_DROP = 2  # classes covered lost since the peak
COLLAPSE_RECALL_RATIO = 0.5  # recall below this fraction of its peak ...
COLLAPSE_RECALL_MIN_PEAK = 0.1  # ... once it had been meaningful
EARLY_BEST_EPOCH_FRACTION = 0.6
EARLY_BEST_FID_RATIO = 1.2


@dataclass
class Flag:
    code: str
    message: str
    start_step: int | None = None  # for the plots: the stretch the flag is about
    end_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _trailing_median(x: np.ndarray, w: int) -> np.ndarray:
    """Median of the last ``w`` values at each step: one odd batch neither starts nor ends a
    stretch (a mean would let a single spike split a long win in two)."""
    if len(x) == 0:
        return x
    padded = np.pad(x.astype(np.float64), (w - 1, 0), mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, w), axis=1)


def _longest_true(mask: np.ndarray, max_gap: int = 0) -> tuple[int, int]:
    """(start, length) of the longest run of True values, where gaps of at most ``max_gap``
    False values inside a run are bridged; (0, 0) when there is none."""
    runs, start = [], None
    for i, v in enumerate(np.append(mask, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append([start, i])
            start = None
    merged: list[list[int]] = []
    for r in runs:
        if merged and r[0] - merged[-1][1] <= max_gap:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    if not merged:
        return 0, 0
    s0, s1 = max(merged, key=lambda r: r[1] - r[0])
    return s0, s1 - s0


def check_d_wins(events: list[dict[str, Any]], d_output: str | None) -> Flag | None:
    """D(x) > 0.99 and D(G(z)) < 0.01 (running median; recoveries of up to 25 steps bridged)
    for >= 50 steps and >= 25 % of the run."""
    if not events:
        return None
    return d_wins_from_arrays(np.array([e["step"] for e in events]),
                              np.array([e["d_x"] for e in events], dtype=float),
                              np.array([e["d_g_z"] for e in events], dtype=float), d_output)


def d_wins_from_arrays(steps: np.ndarray, d_x: np.ndarray, d_g_z: np.ndarray,
                       d_output: str | None) -> Flag | None:
    """:func:`check_d_wins` on per-step arrays (what the plots already hold)."""
    if d_output not in (None, "probability") or len(steps) == 0:
        return None  # a critic's raw scores have no 'outright' level
    d_x = _trailing_median(d_x, D_WINS_SMOOTH)
    d_g = _trailing_median(d_g_z, D_WINS_SMOOTH)
    start, length = _longest_true((d_x > D_WINS_HI) & (d_g < D_WINS_LO), D_WINS_GAP)
    if length < max(D_WINS_MIN_STEPS, D_WINS_MIN_FRACTION * len(steps)):
        return None
    s0, s1 = int(steps[start]), int(steps[start + length - 1])
    share = 100.0 * length / len(steps)
    return Flag("d-wins",
                f"D wins outright: mean D(x) > {D_WINS_HI} and D(G(z)) < {D_WINS_LO} for "
                f"{length} steps ({share:.0f}% of the run) from step {s0}, so G gets almost no "
                "gradient; try the DCGAN recipe (--set model.init=dcgan --set "
                "\"optim.betas=[0.5,0.999]\") or a lower D learning rate",
                s0, s1)


def check_diverged(events: list[dict[str, Any]]) -> Flag | None:
    for e in events:
        bad = [k for k in ("loss_d", "loss_g") if not math.isfinite(e.get(k, 0.0))]
        if bad:
            return Flag("diverged", f"{bad[0]} became {e[bad[0]]} at step {e['step']}: "
                        "lower the learning rate or use a gradient-penalty loss",
                        int(e["step"]), None)
    return None


def comparable_series(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest record per epoch among those comparable with the newest, sorted by epoch."""
    if not records:
        return []
    latest = records[-1]
    by_epoch: dict[int, dict[str, Any]] = {}
    for r in records:
        if comparable(r, latest) and isinstance(r.get("epoch"), int):
            by_epoch[r["epoch"]] = r
    return [by_epoch[e] for e in sorted(by_epoch)]


def check_collapse(records: list[dict[str, Any]]) -> Flag | None:
    series = comparable_series(records)
    if len(series) < 2:
        return None
    last = series[-1]
    for key, label in (("classes_covered", "classes covered"), ("recall", "recall")):
        vals = [(r["epoch"], r["metrics"][key]) for r in series if key in r["metrics"]]
        if len(vals) < 2:
            continue
        peak_epoch, peak = max(vals, key=lambda t: t[1])
        now = vals[-1][1]
        if key == "classes_covered":
            fell = peak - now >= COLLAPSE_CLASS_DROP
            txt = f"{peak} (epoch {peak_epoch}) to {now} (epoch {last['epoch']})"
        else:
            fell = peak >= COLLAPSE_RECALL_MIN_PEAK and now < COLLAPSE_RECALL_RATIO * peak
            txt = f"{peak:.3f} (epoch {peak_epoch}) to {now:.3f} (epoch {last['epoch']})"
        if fell:
            return Flag("collapse", f"mode collapse: {label} fell from {txt}; G covers less "
                        "of the data than it did")
    return None


def check_early_best(records: list[dict[str, Any]]) -> Flag | None:
    series = [r for r in comparable_series(records) if math.isfinite(r["metrics"].get("fid", math.nan))]
    if len(series) < 3:
        return None
    best = min(series, key=lambda r: r["metrics"]["fid"])
    last = series[-1]
    b, f = best["metrics"]["fid"], last["metrics"]["fid"]
    if best["epoch"] <= EARLY_BEST_EPOCH_FRACTION * last["epoch"] and f > EARLY_BEST_FID_RATIO * b:
        return Flag("early-best",
                    f"best FID {b:.2f} at epoch {best['epoch']} of {last['epoch']}; the last is "
                    f"{f:.2f} (+{100 * (f / b - 1):.0f}%): use {best['checkpoint']}")
    return None


def diagnose(run: Run, events: list[dict[str, Any]] | None = None) -> list[Flag]:
    """Every flag that applies to ``run`` (events may be passed in when already read)."""
    ev = run.read_events() if events is None else events
    d_output = run.meta().get("d_output")
    records = run.read_metrics()
    flags = [check_d_wins(ev, d_output), check_diverged(ev), check_collapse(records),
             check_early_best(records)]
    return [f for f in flags if f is not None]
