"""Directions on a trained face run: find them with the shipped attribute classifier, walk them,
measure the walk, and write strips, GIFs, curves and the side-effect matrix.

The library side of ``ganscope directions find|walk`` (:mod:`ganscope.commands.directions`
only parses and prints). Only runs whose domain ships an attribute classifier qualify
(``Domain.has_attributes``, the face domain): it was trained on that data's aligned crops and
labels nothing else.

``walk`` writes, per direction, into ``OUT/<name>/`` (default ``OUT`` =
``RUN/figures/directions``):

- ``strip.png``: the faces at every step, exact pixels x3 (rows: samples from ``--seed``,
  columns: steps); ``walk.png``: the same strip with step labels above the measured curves;
- ``walk.gif``: the strip's rows side by side, one frame per step, there and back;
- ``curve.csv``: per step the mean of every attribute's probability and of Yaw, and the
  distances moved; ``walk.json``: everything, with monotonicity and side effects;

and ``OUT/side_effects.csv`` / ``.json`` / ``.png``: the matrix of every walked direction's
change (last step minus first) in every attribute.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ganscope.directions.base import (
    METHODS,
    DirectionContext,
    context_for_run,
    find_directions,
    pearson,
    slug,
)
from ganscope.directions.measure import WalkMeasurement, measure_walk
from ganscope.directions.store import Direction, load_direction, save_direction
from ganscope.domains import DOMAINS, domain_for
from ganscope.domains.faces.yaw import YAW
from ganscope.errors import RunError, UserError
from ganscope.io import atomic_write_bytes, atomic_write_text
from ganscope.render import grid_array, save_figure
from ganscope.sampling import latents_from_seed
from ganscope.training.run import Run, load_generator

DEFAULT_N = 10000  # latents scored to find a direction
DEFAULT_STRIP = 6  # faces (rows) in a strip
DEFAULT_MEASURE_N = 512  # latents whose scores are averaged along a walk
SCALE = 3  # pixel size in strip.png
YAW_COLOUR_SCALE = 0.1  # side-effect figure: a Yaw change of 0.1 gets the colour of 1.0


def check_face_run(run: Run) -> None:
    """RunError unless the run's domain has a shipped attribute classifier (the only data it
    knows is what it was trained on)."""
    cfg = run.config()
    if not domain_for(cfg.data.name).has_attributes:
        with_attrs = [DOMAINS.get(n) for n in DOMAINS.names() if DOMAINS.get(n).has_attributes]
        scored = " or ".join(d.name for d in with_attrs)
        titles = " or ".join(d.title for d in with_attrs)
        raise RunError(f"run '{run.name}' trains on {cfg.data.name}, not {scored}: directions "
                       f"are found and measured with the {titles} attribute classifier, so they "
                       "need a face run (e.g. `ganscope train e6-faces`)")


def attribute_scorer(run: Run) -> Any:
    """The shipped attribute classifier of the run's domain (see ``Domain.attribute_scorer``)."""
    return domain_for(run.config().data.name).attribute_scorer()


def resolve_attribute(name: str, columns: Sequence[str]) -> str:
    """A scorer column by name, any case (``male`` -> ``Male``); UserError naming them all."""
    for c in columns:
        if c.lower() == name.strip().lower():
            return c
    raise UserError(f"unknown attribute '{name}': choose from {', '.join(columns)}")


class _Counted:
    """A scorer that advances a progress bar by the images it scores."""

    def __init__(self, scorer: Callable[[torch.Tensor], torch.Tensor], total: int, desc: str,
                 progress: bool) -> None:
        self.scorer, self.total, self.desc = scorer, total, desc
        self.enabled = progress and total >= 1000
        self.bar: Any = None  # opened at the first batch: nothing is drawn before an error

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.bar is None and self.enabled:
            self.bar = tqdm(total=self.total, desc=self.desc, unit="img", leave=False)
        out = self.scorer(x)
        if self.bar is not None:
            self.bar.update(x.shape[0])
        return out

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def face_context(run: Run, *, classifier: Any = None, n: int = DEFAULT_N, seed: int = 0,
                 epoch: int | None = None, progress: bool = False) -> DirectionContext:
    """A DirectionContext on the run's generator scored by the attribute classifier (+ Yaw)."""
    check_face_run(run)
    if classifier is None:
        classifier = attribute_scorer(run)
    scorer = _Counted(classifier, n, "scoring faces", progress)
    return context_for_run(run, epoch=epoch, scorer=scorer, attributes=classifier.columns,
                           n_samples=n, seed=seed)


def default_name(method: str, attribute: str | None) -> str | None:
    """InterFaceGAN's directions are named after their attribute (``male``); other methods add
    theirs (``male-mean``); unsupervised components get ``<attr>-<method>-<k>`` or the method's
    own ``sefa-<k>``; the conditional one ``<attr>-without-<conditions>`` (library default)."""
    if attribute is None or method == "interfacegan-cond":
        return None
    if method == "interfacegan":
        return slug(attribute)
    return slug(f"{attribute}-{method}")


def find_run_directions(run: Run, method: str, attributes: Sequence[str], *,
                        conditions: Sequence[str] = (), n: int = DEFAULT_N, seed: int = 0,
                        epoch: int | None = None, components: int = 5, name: str | None = None,
                        classifier: Any = None, progress: bool = False
                        ) -> tuple[list[dict[str, Any]], DirectionContext]:
    """Find directions with ``method`` for each attribute (or once, unsupervised, without one),
    save them in RUN/directions/, and return one summary row per direction."""
    spec = METHODS.get(method)
    if n < 2:
        raise UserError("-n must be at least 2")
    if components < 1:
        raise UserError("--components must be at least 1")
    if spec.needs_attribute and not attributes:
        raise UserError(f"{method} needs --attr (e.g. --attr Male,Smiling,Young)")
    if conditions and method != "interfacegan-cond":
        raise UserError("--condition applies to --method interfacegan-cond only")
    if method == "interfacegan-cond" and not conditions:
        raise UserError("interfacegan-cond needs --condition (e.g. --attr Young --condition Male)")
    if name is not None and len(attributes) > 1:
        raise UserError("--name applies to one attribute at a time")
    check_face_run(run)
    if classifier is None:
        classifier = attribute_scorer(run)
    attrs = [resolve_attribute(a, classifier.columns) for a in attributes]
    conds = (["all"] if [c.strip().lower() for c in conditions] == ["all"]  # every other
             else [resolve_attribute(c, classifier.columns) for c in conditions])
    ctx = face_context(run, classifier=classifier, n=n, seed=seed, epoch=epoch,
                       progress=progress)
    rows = []
    try:
        for attr in attrs or [None]:
            opts: dict[str, Any] = {"attribute": attr}
            if method in ("sefa", "ganspace"):
                opts["n_components"] = components
            if method == "interfacegan-cond":
                opts["conditions"] = conds
            nm = name or default_name(method, attr)
            if nm is not None:
                opts["name"] = nm
            for d in find_directions(method, ctx, **opts):
                d.details.setdefault("epoch", epoch)
                path = save_direction(run, d)
                rows.append(summary_row(ctx, d, path))
    finally:
        if isinstance(ctx.scorer, _Counted):
            ctx.scorer.close()
    return rows, ctx


def summary_row(ctx: DirectionContext, d: Direction, path: Path) -> dict[str, Any]:
    """What the table prints: the method's own quality number and, with an attribute, the
    correlation of z.d with the attribute's score over the sample."""
    det = d.details
    if d.method in ("interfacegan", "interfacegan-cond"):
        quality = f"boundary acc {det.get('accuracy_val', float('nan')):.3f}"
    elif d.method == "mean":
        quality = f"separation {det.get('separation') or float('nan'):.2f}"
    elif d.method == "sefa":
        quality = (f"eigenvalue {det['eigenvalue']:.3g} "
                   f"({100 * det['eigenvalue_ratio']:.1f}%)")
    elif d.method == "ganspace":
        quality = (f"variance {det['explained_variance']:.3g} "
                   f"({100 * det['explained_variance_ratio']:.1f}%)")
    else:  # pragma: no cover - every registered method is named above
        quality = ""
    corr = None
    if d.attribute is not None and ctx.scorer is not None:
        z, s = ctx.attribute_scores(d.attribute)
        corr = pearson(z.double().numpy() @ d.vector, s.numpy())
    return {"name": d.name, "method": d.method, "attribute": d.attribute, "quality": quality,
            "correlation": corr, "path": str(path), "details": det}


def label_summary(ctx: DirectionContext) -> list[dict[str, Any]]:
    """The generated faces labelled by the classifier: mean P and share above 0.5 per
    attribute, and Yaw's mean and spread (over the context's sample)."""
    z, s = ctx.sample()
    out = []
    for j, c in enumerate(ctx.attributes):
        v = s[:, j]
        if c == YAW:
            out.append({"attribute": c, "mean": float(v.mean()), "std": float(v.std()),
                        "share": None})
        else:
            out.append({"attribute": c, "mean": float(v.mean()), "std": float(v.std()),
                        "share": float((v > 0.5).double().mean())})
    return out


# ----------------------------------------------------------------------------------------------
# Walking


def walk_run(run: Run, names: Sequence[str], steps: Sequence[float], *, seed: int = 0,
             n_strip: int = DEFAULT_STRIP, n_measure: int = DEFAULT_MEASURE_N,
             epoch: int | None = None, out: str | Path | None = None, target: str | None = None,
             classifier: Any = None, progress: bool = False) -> dict[str, Any]:
    """Walk each named direction of the run, measure it, write the files; return the results."""
    check_face_run(run)
    steps = [float(s) for s in steps]
    if len(steps) < 2 or not all(math.isfinite(s) for s in steps):
        raise UserError("--steps must give at least 2 finite steps, e.g. -3:3:9")
    if n_strip < 1 or n_measure < 2:
        raise UserError("-n must be at least 1 and --measure-n at least 2")
    if not names:
        raise UserError("give --direction NAME[,NAME...] (see RUN/directions/)")
    dirs = [load_direction(run, nm) for nm in names]  # every name checked before any work
    z_dim = run.config().model.z_dim
    for d in dirs:
        if d.z_dim != z_dim:
            raise RunError(f"direction '{d.name}' has {d.z_dim} dims but the run's z has "
                           f"{z_dim}: find it again with `ganscope directions find`")
    if classifier is None:
        classifier = attribute_scorer(run)
    columns = list(classifier.columns)
    tgt_override = resolve_attribute(target, columns) if target else None
    G = load_generator(run, epoch)
    z = latents_from_seed(seed, max(n_strip, n_measure), z_dim)
    root = Path(out) if out is not None else run.direction_figures_dir
    results = []
    for d in dirs:
        tgt = tgt_override or (d.attribute if d.attribute in columns else None)
        m = measure_walk(G, z, d.vector, steps, classifier, columns, target=tgt,
                         features=classifier.features, n_strip=n_strip, progress=progress)
        files = write_walk(root / d.name, run, d, m, seed, epoch)
        results.append({"direction": d, "measurement": m, "files": files,
                        "summary": walk_summary(d, m)})
    matrix_files = write_side_effects(root, results, columns)
    return {"out": str(root), "results": results, "matrix_files": matrix_files,
            "columns": columns, "steps": steps, "seed": seed, "n_measure": z.shape[0]}


def walk_summary(d: Direction, m: WalkMeasurement) -> dict[str, Any]:
    """The numbers a direction is reported with: target change, monotonicity, largest side
    effect (probabilities only; Yaw's change is given separately), distance at the ends."""
    skip = () if m.target == YAW else (YAW,)
    se = m.side_effects(skip)
    out: dict[str, Any] = {"name": d.name, "method": d.method, "target": m.target,
                           "steps": [m.steps[0], m.steps[-1]]}
    if m.target is not None:
        j = m.columns.index(m.target)
        mono = m.monotonicity
        assert mono is not None
        out.update({"target_from": float(m.curve[0, j]), "target_to": float(m.curve[-1, j]),
                    "spearman": mono["spearman"],
                    "non_increasing_steps": mono["non_increasing_steps"],
                    "monotonic": mono["monotonic"],
                    "per_sample_monotonic_share": m.monotone_share})
    out.update({"largest_side_effect": se["largest"],
                "largest_side_effect_delta": se["largest_delta"],
                "yaw_delta": se["delta"].get(YAW),
                "pixel_rms_end": float(max(m.pixel_rms[0], m.pixel_rms[-1])),
                "pixel_rms_relative_end": (float(max(m.pixel_rms[0], m.pixel_rms[-1])
                                                 / m.pixel_ref) if m.pixel_ref else None),
                "feature_relative_end": (
                    float(max(m.feature_dist[0], m.feature_dist[-1]) / m.feature_ref)
                    if m.feature_dist is not None and m.feature_ref else None)})
    return out


def strip_array(strip: torch.Tensor) -> np.ndarray:
    """(S, N, C, H, W) uint8 frames -> one grid (rows: samples, columns: steps)."""
    S, N = strip.shape[:2]
    by_row = strip.transpose(0, 1).reshape(S * N, *strip.shape[2:])
    return grid_array(by_row, nrow=S)


def write_walk(folder: Path, run: Run, d: Direction, m: WalkMeasurement, seed: int,
               epoch: int | None) -> list[Path]:
    folder = Path(folder)
    files = []
    grid = strip_array(m.strip)
    img = Image.fromarray(grid)
    img = img.resize((img.width * SCALE, img.height * SCALE), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(folder / "strip.png", buf.getvalue())
    files.append(folder / "strip.png")
    files.append(write_gif(folder / "walk.gif", m.strip))
    # curve.csv: one row per step
    lines = io.StringIO()
    w = csv.writer(lines, lineterminator="\n")
    w.writerow(["step", *m.columns, "pixel_rms", "feature_l2"])
    for k, s in enumerate(m.steps):
        w.writerow([f"{s:g}", *[f"{v:.6f}" for v in m.curve[k]], f"{m.pixel_rms[k]:.4f}",
                    "" if m.feature_dist is None else f"{m.feature_dist[k]:.4f}"])
    atomic_write_text(folder / "curve.csv", lines.getvalue())
    files.append(folder / "curve.csv")
    skip = () if m.target == YAW else (YAW,)
    info = {"run": run.name, "direction": d.name, "method": d.method,
            "attribute": d.attribute, "epoch": epoch, "seed": seed,
            "strip_rows": int(m.strip.shape[1]) if m.strip.numel() else 0,
            "step_unit": "standard deviations of z along the unit direction",
            "summary": walk_summary(d, m), **m.to_json(skip)}
    atomic_write_text(folder / "walk.json", json.dumps(info, indent=1) + "\n")
    files.append(folder / "walk.json")

    ep = f"epoch {epoch}" if epoch is not None else "latest"
    title = (f"{run.name} ({ep}): direction '{d.name}' ({d.method}"
             + (f", {d.attribute}" if d.attribute else "") + f"), z from seed {seed}")
    files.append(save_figure(walk_figure(grid, m, title), folder / "walk.png", dpi=100))
    return files


def write_gif(path: Path, strip: torch.Tensor, scale: int = 3, ms: int = 180) -> Path:
    """One frame per step (the strip's samples side by side, a position bar underneath),
    forward then back, looping."""
    S, N = strip.shape[:2]
    frames = []
    for k in range(S):
        row = grid_array(strip[k], nrow=N)
        bar = np.full((4, row.shape[1], 3), 64, dtype=np.uint8)
        bar[1:3, : max(1, round(row.shape[1] * (k + 1) / S))] = (230, 200, 60)
        a = np.concatenate([row if row.ndim == 3 else np.stack([row] * 3, -1), bar])
        im = Image.fromarray(a).resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST)
        frames.append(im)
    seq = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=ms, loop=0)
    atomic_write_bytes(path, buf.getvalue())
    return path


def walk_figure(grid: np.ndarray, m: WalkMeasurement, title: str):
    """The strip with step labels over two panels: the attribute curves (target bold, the
    three largest side effects labelled) and the distance moved."""
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from matplotlib.figure import Figure

    S = len(m.steps)
    h, w = grid.shape[:2]
    width = min(16.0, max(7.0, w / 40))
    fig = Figure(figsize=(width, width * h / w + 5.2), layout="constrained")
    gs = fig.add_gridspec(2, 2, height_ratios=[width * h / w, 4.4])
    ax = fig.add_subplot(gs[0, :])
    ax.imshow(grid, interpolation="nearest")
    cell = (w - 2) / S
    ax.set_xticks([2 + cell * (k + 0.5) for k in range(S)], [f"{s:+g}" for s in m.steps])
    ax.set_yticks([])
    ax.xaxis.tick_top()
    ax.set_title(title, fontsize=10)
    ax1, ax2 = fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 1])
    probs = [c for c in m.columns if c != YAW]
    skip = () if m.target == YAW else (YAW,)
    se = m.side_effects(skip)["delta"]
    top = sorted((c for c in probs if c != m.target), key=lambda c: -abs(se[c]))[:3]
    handles = []
    for j, c in enumerate(m.columns):
        if c == YAW:
            continue
        if c == m.target:
            handles += ax1.plot(m.steps, m.curve[:, j], "o-", color="black", lw=2.2,
                                label=f"{c} (target)")
        elif c in top:
            handles += ax1.plot(m.steps, m.curve[:, j], ".-", lw=1.4, label=f"{c} ({se[c]:+.2f})")
        else:
            ax1.plot(m.steps, m.curve[:, j], "-", color="0.75", lw=0.8)
    if m.target == YAW:  # the pose proxy has its own units: its own axis
        axy = ax1.twinx()
        handles += axy.plot(m.steps, m.curve[:, m.columns.index(YAW)], "o-", color="black",
                            lw=2.2, label="Yaw (target, right axis)")
        axy.set_ylabel("mean Yaw (proxy units; > 0 turned to the image's right)")
    ax1.set_xlabel("step (std of z along the direction)")
    ax1.set_ylabel("mean P(attribute)")
    ax1.set_ylim(-0.02, 1.02)
    ax1.legend(handles=handles, fontsize="small", loc="best")
    ax1.grid(alpha=0.3)
    rel_px = m.pixel_rms / m.pixel_ref if m.pixel_ref else m.pixel_rms
    ax2.plot(m.steps, rel_px, "o-", label="pixel RMS")
    if m.feature_dist is not None and m.feature_ref:
        ax2.plot(m.steps, m.feature_dist / m.feature_ref, "s-", label="classifier features")
    ax2.set_xlabel("step")
    ax2.set_ylabel("distance from the unedited face\n(1 = two different random faces)")
    ax2.legend(fontsize="small")
    ax2.grid(alpha=0.3)
    return fig


def write_side_effects(root: Path, results: list[dict[str, Any]], columns: Sequence[str]
                       ) -> list[Path]:
    """The side-effect matrix of the directions walked in this call: rows = directions,
    columns = attributes (+ Yaw), entries = change of the mean from the first to the last step."""
    root = Path(root)
    rows = []
    for r in results:
        m: WalkMeasurement = r["measurement"]
        delta = m.side_effects()["delta"]
        rows.append({"direction": r["direction"].name, "target": m.target,
                     "delta": {c: delta[c] for c in columns}, "summary": r["summary"]})
    lines = io.StringIO()
    w = csv.writer(lines, lineterminator="\n")
    w.writerow(["direction", "target", *columns])
    for row in rows:
        w.writerow([row["direction"], row["target"] or "",
                    *[f"{row['delta'][c]:+.4f}" for c in columns]])
    atomic_write_text(root / "side_effects.csv", lines.getvalue())
    atomic_write_text(root / "side_effects.json", json.dumps(
        {"columns": list(columns), "rows": rows,
         "meaning": "change of the mean score from the first to the last step of each walk; "
                    "probabilities for attributes, proxy units for Yaw"}, indent=1) + "\n")

    fig = matrix_figure(rows, list(columns))
    png = save_figure(fig, root / "side_effects.png", dpi=100)
    return [root / "side_effects.csv", root / "side_effects.json", png]


def matrix_figure(rows: list[dict[str, Any]], columns: list[str]):
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from matplotlib.figure import Figure

    vals = np.array([[r["delta"][c] for c in columns] for r in rows], dtype=float)
    colour = vals.copy()
    if YAW in columns:
        colour[:, columns.index(YAW)] = vals[:, columns.index(YAW)] / YAW_COLOUR_SCALE
    fig = Figure(figsize=(1.6 + 0.62 * len(columns), 2.2 + 0.45 * len(rows)),
                 layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.clip(colour, -1, 1), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)),
                  [c + ("*" if c == YAW else "") for c in columns], rotation=45, ha="right",
                  fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{r['direction']} ({r['target'] or '-'})" for r in rows],
                  fontsize=8)
    for i, r in enumerate(rows):
        for j, c in enumerate(columns):
            bold = c == r["target"]
            ax.text(j, i, f"{vals[i, j]:+.2f}", ha="center", va="center", fontsize=7,
                    fontweight="bold" if bold else "normal",
                    color="white" if abs(colour[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.9, label="change of mean P")
    ax.set_title("side effects: change of each attribute's mean from the first to the last "
                 f"step (target in bold; *Yaw colour x{1 / YAW_COLOUR_SCALE:g})", fontsize=9)
    return fig
