"""Comparisons over seeds: group runs by configuration, summarize every metric, draw bands.

A group is the runs that share a config apart from the seed (a sweep's cell, or plain runs of
one preset with different ``--seed``). For each group and metric: mean, sample std and the
95 % Student-t interval over seeds of each run's final evaluation (plus its best FID and its
last-epoch mean losses), and for every pair of groups whether their intervals overlap (then
they are not distinguishable at this number of seeds) with Welch's p as a second opinion.
Figures: mean ± std bands over seeds of the smoothed loss and D-output curves and of the
metrics per epoch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganscope.diagnostics import comparable_series, diagnose
from ganscope.errors import RunError, UserError
from ganscope.experiments import stats
from ganscope.experiments.runner import _what
from ganscope.experiments.sweep import sweep_runs
from ganscope.io import atomic_write_text
from ganscope.metrics.labels import METRIC_LABELS, axis_label, better_hint, fmt, metric_label
from ganscope.render import save_figure
from ganscope.training.evaluation import best_by_fid
from ganscope.training.run import Run

SKIP = {"class_hist", "n_modes", "kid_std"}  # lists, constants and spreads of a metric itself
BAND_METRICS = ("fid", "kid", "recall", "coverage", "classes_covered", "modes_covered",
                "hq_fraction", "sliced_wasserstein", "reverse_kl")
IGNORED_KEYS = ("seed", "preset")  # not part of what makes a configuration


# --- what a run contributes -----------------------------------------------------------------------


def config_key(run: Run) -> str:
    """The run's config apart from the seed, the preset's name and how it executes."""
    d = _what(run.config())
    for k in IGNORED_KEYS:
        d.pop(k, None)
    d["data"].pop("dir", None)
    return json.dumps(d, sort_keys=True)


def final_record(run: Run) -> dict[str, Any] | None:
    series = comparable_series(run.read_metrics())
    return series[-1] if series else None


def final_values(run: Run) -> dict[str, float]:
    """The run's final evaluation (scalar metrics), its best FID, and the mean D / G loss over
    its last epoch of events."""
    out: dict[str, float] = {}
    rec = final_record(run)
    if rec is not None:
        for k, v in rec["metrics"].items():
            if k not in SKIP and isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = float(v)
        best = best_by_fid(run.read_metrics())
        if best is not None:
            out["best_fid"] = float(best["metrics"]["fid"])
    events = run.read_events()
    if events:
        last = max(e.get("epoch", 0) for e in events)
        for k in ("loss_d", "loss_g"):
            vals = stats.finite(e.get(k) for e in events if e.get("epoch", 0) == last)
            if vals:
                out[k] = stats.mean(vals)
    return out


# --- groups ---------------------------------------------------------------------------------------


@dataclass
class Group:
    label: str
    runs: list[Run] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # planned runs with no directory yet


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def group_runs(runs: list[Run]) -> list[Group]:
    """Plain runs grouped by config apart from the seed, in order of first appearance; each
    group is named by its preset, with the keys that tell same-preset groups apart."""
    keyed: dict[str, list[Run]] = {}
    for r in runs:
        keyed.setdefault(config_key(r), []).append(r)
    groups = []
    presets = {k: rs[0].config().preset for k, rs in keyed.items()}
    flats = {k: _flat(json.loads(k)) for k in keyed}
    for k, rs in keyed.items():
        label = presets[k]
        twins = [o for o in keyed if o != k and presets[o] == presets[k]]
        if twins:
            diff = sorted({key for o in twins for key in flats[k]
                           if flats[o].get(key) != flats[k].get(key)})
            label += " (" + ", ".join(f"{d}={flats[k].get(d)}" for d in diff[:3]) + ")"
        groups.append(Group(label, rs))
    return groups


def sweep_groups(sweep_dir: str | Path) -> tuple[dict[str, Any], list[Group]]:
    """A sweep's cells as groups, in spec order; runs not started yet are listed as missing."""
    spec, members = sweep_runs(sweep_dir)
    by_cell: dict[str, Group] = {}
    for cell, _seed, run in members:
        g = by_cell.setdefault(cell["name"], Group(cell["name"]))
        if run.config_path.is_file():
            g.runs.append(run)
        else:
            g.missing.append(run.name)
    return spec, list(by_cell.values())


# --- the comparison -----------------------------------------------------------------------------


def _metric_order(keys: set[str]) -> list[str]:
    return [k for k in METRIC_LABELS if k in keys] + sorted(keys - set(METRIC_LABELS))


def compare_groups(groups: list[Group], level: float = stats.LEVEL) -> dict[str, Any]:
    """Per group and metric: values over seeds, mean, std, t-interval; per metric and pair of
    groups: overlap of the intervals and Welch's p. Plain data, ready for JSON."""
    out_groups = []
    finals = []
    all_keys: set[str] = set()
    for g in groups:
        per_run = []
        for r in g.runs:
            try:
                vals = final_values(r)
                rec = final_record(r)
                flags = [f.code for f in diagnose(r)]
                status = r.status()
            except UserError as e:
                vals, rec, flags, status = {}, None, [], f"damaged: {e}"
            per_run.append({"run": r.name, "path": str(r.path), "seed": _seed(r),
                            "status": status, "epoch": rec["epoch"] if rec else None,
                            "values": vals, "flags": flags})
            if rec is not None:
                finals.append(rec)
            all_keys |= set(vals)
        out_groups.append({"label": g.label, "runs": per_run, "missing": g.missing})
    keys = _metric_order(all_keys)
    for og in out_groups:
        og["n_runs"] = len(og["runs"])
        og["metrics"] = {}
        for k in keys:
            vals = [r["values"][k] for r in og["runs"] if k in r["values"]]
            if vals:
                s = stats.summarize(vals, level)
                og["metrics"][k] = {**s.to_dict(), "values": vals}
        epochs = sorted({r["epoch"] for r in og["runs"] if r["epoch"] is not None})
        og["epochs"] = epochs
        og["flags"] = {f: sum(f in r["flags"] for r in og["runs"])
                       for f in sorted({f for r in og["runs"] for f in r["flags"]})}
    pairs = []
    for k in keys:
        for i in range(len(out_groups)):
            for j in range(i + 1, len(out_groups)):
                a, b = out_groups[i]["metrics"].get(k), out_groups[j]["metrics"].get(k)
                if not a or not b:
                    continue
                sa, sb = _summary(a), _summary(b)
                # a zero-width interval (every seed gave the same value, common for counts
                # like modes covered at 2-3 seeds) says nothing about the spread: no verdict
                overlap = (None if sa.std == 0 or sb.std == 0
                           else stats.intervals_overlap(sa, sb))
                _, _, p = stats.welch(a["values"], b["values"])
                pairs.append({"metric": k, "a": out_groups[i]["label"],
                              "b": out_groups[j]["label"], "overlap": overlap,
                              "welch_p": None if math.isnan(p) else p,
                              "a_mean": sa.mean, "b_mean": sb.mean})
    comparable_all = all(comparable_across(x, finals[0]) for x in finals[1:]) if finals else True
    return {"level": level, "metrics": keys, "groups": out_groups, "pairs": pairs,
            "comparable": comparable_all}


def comparable_across(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Final records of two runs measure on one scale: same extractor, number of generated
    samples, and reference set (dataset, split, size). Unlike within one run, the reference's
    exact content may differ: a 2-D run draws its target points from its own seed, and that
    variation is part of what the seeds measure."""
    ra, rb = a.get("reference") or {}, b.get("reference") or {}
    return (a.get("extractor") == b.get("extractor") and a.get("n_fake") == b.get("n_fake")
            and all(ra.get(k) == rb.get(k) for k in ("dataset", "split", "n")))


def _seed(run: Run) -> int | None:
    try:
        return run.config().seed
    except RunError:
        return None


def _summary(d: dict[str, Any]) -> stats.Summary:
    def f(v):
        return math.nan if v is None else v

    return stats.Summary(d["n"], f(d["mean"]), f(d["std"]), f(d["lo"]), f(d["hi"]), d["level"])


def cell_text(key: str, m: dict[str, Any] | None) -> str:
    """'226.03 ± 4.12 [215.80, 236.26]'; one seed: the value alone."""
    if not m:
        return "-"
    if m["n"] < 2:
        return f"{fmt(key, m['mean'])} (1 seed)"
    return (f"{fmt(key, m['mean'])} ± {fmt(key, m['std'])} "
            f"[{fmt(key, m['lo'])}, {fmt(key, m['hi'])}]")


def table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per metric and configuration: METRIC, CONFIG, SEEDS, MEAN ± STD [95 % CI]."""
    pct = f"{100 * result['level']:.0f}%"
    head = ["METRIC", "CONFIG", "SEEDS", f"MEAN ± STD [{pct} CI]"]
    rows = []
    for k in result["metrics"]:
        for g in result["groups"]:
            m = g["metrics"].get(k)
            if m:
                rows.append([metric_label(k), g["label"], str(m["n"]), cell_text(k, m)])
    return head, rows


def significance_notes(result: dict[str, Any]) -> list[str]:
    """One line per metric: which pairs' intervals are disjoint (told apart) and which overlap
    (not distinguishable at this number of seeds)."""
    lines = []
    for k in result["metrics"]:
        prs = [p for p in result["pairs"] if p["metric"] == k]
        if not prs:
            continue
        vals = {v for g in result["groups"] for v in (g["metrics"].get(k) or {}).get("values",
                                                                                      [])}
        if len(vals) == 1:
            lines.append(f"{metric_label(k)}: every run of every configuration gave "
                         f"{fmt(k, vals.pop())}")
            continue
        parts, apart, same, untested = [], [], [], []
        for p in prs:
            pv = "" if p["welch_p"] is None else f" (Welch p={p['welch_p']:.2g})"
            if p["overlap"] is None:
                untested.append(f"{p['a']} / {p['b']}")
            elif p["overlap"]:
                same.append(f"{p['a']} ~ {p['b']}{pv}")
            else:
                lo, hi = (p["a"], p["b"]) if p["a_mean"] < p["b_mean"] else (p["b"], p["a"])
                apart.append(f"{lo} < {hi}{pv}")
        hint = better_hint(k)
        if same and not apart and not untested and len(prs) > 1:
            lines.append(f"{metric_label(k)}{hint}: all intervals overlap: no two "
                         "configurations can be told apart at this number of seeds")
            continue
        if apart:
            parts.append("intervals disjoint: " + "; ".join(apart))
        if same:
            parts.append("overlap, not distinguishable at this number of seeds: "
                         + "; ".join(same))
        if untested:
            parts.append("no verdict (one seed, or no spread over seeds): "
                         + "; ".join(untested))
        lines.append(f"{metric_label(k)}{hint}: " + " | ".join(parts))
    return lines


# --- bands ----------------------------------------------------------------------------------------


def _band(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(s) for s in series)
    m = np.vstack([s[:n] for s in series])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step where every seed is NaN
        mu = np.nanmean(m, axis=0)
        sd = np.nanstd(m, axis=0, ddof=1) if m.shape[0] > 1 else np.zeros(n)
    return mu, sd


def curve_bands_figure(groups: list[Group], title: str = ""):
    """Mean ± std over seeds of each run's smoothed D / G loss, D(x) and D(G(z)) per step."""
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from matplotlib.figure import Figure

    from ganscope.viz.curves import default_window, load_curves, smooth

    fig = Figure(figsize=(11.0, 7.0), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    names = (("loss_d", "D loss"), ("loss_g", "G loss"), ("d_x", "mean D(x)"),
             ("d_g_z", "mean D(G(z))"))
    colours = _colours(len(groups))
    drawn = 0
    for g, colour in zip(groups, colours):
        curves = []
        for r in g.runs:
            try:
                curves.append(load_curves(r))
            except RunError:
                continue
        if not curves:
            continue
        drawn += 1
        n = min(len(c) for c in curves)
        steps = curves[0].steps[:n]
        for ax, (key, _) in zip(axes, names):
            sm = [smooth(getattr(c, key), default_window(len(c))) for c in curves]
            mu, sd = _band(sm)
            ax.plot(steps, mu, color=colour, lw=1.4, label=f"{g.label} ({len(curves)})")
            ax.fill_between(steps, mu - sd, mu + sd, color=colour, alpha=0.18, lw=0)
    if not drawn:
        raise RunError("no run in this comparison has training events yet")
    for ax, (_, label) in zip(axes, names):
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    for ax in axes[2:]:
        ax.set_xlabel("generator step")
    axes[0].legend(fontsize="small", title="config (seeds)", title_fontsize="small")
    fig.suptitle((title + ": " if title else "") + "mean ± std over seeds of each run's "
                 "smoothed curve", fontsize="medium")
    return fig


def metric_bands_figure(groups: list[Group], title: str = ""):
    """Mean ± std over seeds of the metrics per evaluated epoch (epochs every seed has)."""
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    per_group = []
    present: set[str] = set()
    for g in groups:
        series = [comparable_series(r.read_metrics()) for r in g.runs]
        series = [s for s in series if s]
        per_group.append(series)
        for s in series:
            present |= set(s[-1]["metrics"])
    keys = [k for k in BAND_METRICS if k in present][:4]
    if not keys:
        raise RunError("no run in this comparison has been evaluated: train with --eval-every "
                       "or run `ganscope eval`")
    fig = Figure(figsize=(11.0, 3.4 * math.ceil(len(keys) / 2)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(math.ceil(len(keys) / 2), min(2, len(keys)))).ravel()
    for g, series, colour in zip(groups, per_group, _colours(len(groups))):
        if not series:
            continue
        common = sorted(set.intersection(*[{r["epoch"] for r in s} for s in series]))
        if not common:
            continue
        for ax, k in zip(axes, keys):
            rows = []
            for s in series:
                by = {r["epoch"]: r["metrics"].get(k, math.nan) for r in s}
                rows.append(np.array([by[e] for e in common], dtype=float))
            mu, sd = _band(rows)
            ax.plot(common, mu, color=colour, marker="o" if len(common) <= 30 else None,
                    ms=3, lw=1.4, label=f"{g.label} ({len(series)})")
            ax.fill_between(common, mu - sd, mu + sd, color=colour, alpha=0.18, lw=0)
    for ax, k in zip(axes, keys):
        ax.set_ylabel(axis_label(k))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small", title="config (seeds)", title_fontsize="small")
    fig.suptitle((title + ": " if title else "") + "metrics per epoch, mean ± std over seeds",
                 fontsize="medium")
    return fig


def _colours(n: int) -> list[str]:
    base = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
            "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
    return [base[i % len(base)] for i in range(n)]


def band_figures(groups: list[Group], title: str = "") -> dict[str, Any]:
    """{'bands_curves': Figure, 'bands_metrics': Figure}, leaving out what has no data."""
    figs = {}
    for name, make in (("bands_curves", curve_bands_figure),
                       ("bands_metrics", metric_bands_figure)):
        try:
            figs[name] = make(groups, title)
        except RunError:
            continue
    return figs


def write_outputs(out_dir: Path, result: dict[str, Any], groups: list[Group],
                  title: str = "") -> list[Path]:
    """summary.json, table.csv and the band figures into ``out_dir`` (atomic writes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    head, rows = table(result)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "config", "seeds", "mean", "std", "ci_lo", "ci_hi"])
    for k in result["metrics"]:
        for g in result["groups"]:
            m = g["metrics"].get(k)
            if m:
                w.writerow([k, g["label"], m["n"], *(("" if m[x] is None else repr(m[x]))
                                                    for x in ("mean", "std", "lo", "hi"))])
    paths = [out_dir / "summary.json", out_dir / "table.csv"]
    atomic_write_text(paths[0], json.dumps(result, indent=2) + "\n")
    atomic_write_text(paths[1], buf.getvalue())
    for name, fig in band_figures(groups, title).items():
        paths.append(save_figure(fig, out_dir / f"{name}.png"))
    return paths
