"""E4: change single latent dimensions, generate, and measure what changed.

The seeds picked five of z's 100 dimensions, shifted or set each to three values and looked at
one grid per dimension (rows: the values, columns: the same 8 samples). Their verdicts ("dim 20
turns trousers into heels") disagree, partly because they were guessed by eye and partly because
seed 001's code set *all five* dimensions at once (``temp[i][mylist1] = change``). This module
makes the experiment exact and repeatable: the edits are computed on a copy of z, each row's
images are generated in a batch of the same size as the unedited ones (so a shift by 0 gives the
original pixels bit for bit), and every row records its mean absolute pixel change, so a row that
changed nothing is visible as a number, not a matter of squinting. ``together=True`` reproduces
seed 001's variant on purpose.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from ganscope.environment import now_iso
from ganscope.errors import UserError
from ganscope.io import atomic_save_npy, atomic_write_text, file_sha256
from ganscope.latent.generate import load_latents
from ganscope.render import grid_array, save_figure
from ganscope.sampling import generate_images, latents_from_seed
from ganscope.training.run import Run, load_generator

MODES = ("shift", "set")
DEFAULT_SEED = 23231  # seed 001's torch.manual_seed(23231)
DEFAULT_N = 8
CELL_IN = 0.72  # inches per 28x28 image in a figure: ~80 px at DPI 110, crisp and readable
MAX_IMAGES_WIDTH_IN = 18.0
PAD = 2  # pixels between images (grid_array's dark-grey gutter)
DPI = 110

# The seeds' own choices (lab-spec E4), as data. Seed 002's "15 (random vectors) x 8 (images per
# vector) = 120 images" counts the 15 *edited* copies (5 dims x 3 shifts) of 8 latent vectors:
# its text says the adjustments were made to "each selected random number (indices 1, 20, 40,
# 60, 80)", and 5 x 3 x 8 = 120. So it too draws 8 vectors; 15 of them would make 225 images.
SEED_EDITS: dict[str, dict[str, Any]] = {
    "seed000": {"dims": [20, 50, 60, 70, 90], "values": [-10.0, 0.0, 10.0], "mode": "shift",
                "together": False, "seed": DEFAULT_SEED, "n": 8,
                "note": "seed 000: dims 20, 50, 60, 70, 90 shifted by -10 / 0 / +10"},
    "seed001": {"dims": [0, 20, 40, 60, 80], "values": [-1.0, 5.0, 10.0], "mode": "set",
                "together": False, "seed": DEFAULT_SEED, "n": 8,
                "note": "seed 001 (intended): dims 0, 20, 40, 60, 80 set to -1 / 5 / 10, "
                        "z from torch.manual_seed(23231); torch.randn(8, 100)"},
    "seed001-together": {"dims": [0, 20, 40, 60, 80], "values": [-1.0, 5.0, 10.0],
                         "mode": "set", "together": True, "seed": DEFAULT_SEED, "n": 8,
                         "note": "seed 001 as its code ran: `temp[i][mylist1] = change` sets "
                                 "all five dims at once, so its five grids were identical"},
    "seed002": {"dims": [1, 20, 40, 60, 80], "values": [-2.0, 0.0, 2.0], "mode": "shift",
                "together": False, "seed": DEFAULT_SEED, "n": 8,
                "note": "seed 002: dims 1, 20, 40, 60, 80 shifted by -2 / 0 / +2: 15 edited "
                        "vectors x 8 images = 120 images"},
    "seed003": {"dims": [5, 25, 45, 65, 85], "values": [-3.0, 0.0, 3.0], "mode": "set",
                "together": False, "seed": DEFAULT_SEED, "n": 8,
                "note": "seed 003: dims 5, 25, 45, 65, 85 set to -3 / 0 / 3"},
}


def preset_edit(name: str) -> dict[str, Any]:
    """A copy of one seed's E4 choices (dims, values, mode, together, seed, n, note)."""
    key = name.strip().lower()
    if key not in SEED_EDITS:
        raise UserError(f"unknown edit preset '{name}': choose one of {', '.join(SEED_EDITS)}")
    p = SEED_EDITS[key]
    return {**p, "dims": list(p["dims"]), "values": list(p["values"]), "name": key}


# --- validation and the edits themselves ------------------------------------------------------


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"edit mode must be 'shift' or 'set', got '{mode}'")
    return mode


def check_dims(dims: Sequence[int], z_dim: int) -> list[int]:
    """Integers in [0, z_dim), each once: a repeated dim would silently draw the same grid."""
    if len(dims) == 0:
        raise UserError("give at least one latent dim to edit, e.g. --dims 20,50")
    out: list[int] = []
    for d in dims:
        try:
            if isinstance(d, bool):
                raise TypeError
            d = operator.index(d)
        except TypeError:
            raise UserError(f"dim {d!r} is not an integer: dims are indices into z") from None
        if not 0 <= d < z_dim:
            raise UserError(f"dim {d} is out of range for z of size {z_dim} (0..{z_dim - 1})")
        if d in out:
            raise UserError(f"dim {d} is listed twice: give each dim once")
        out.append(d)
    return out


def check_values(values: Sequence[float]) -> list[float]:
    if len(values) == 0:
        raise UserError("give at least one value to shift or set the dims to, e.g. -10,0,10")
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise UserError(f"edit value {v!r} is not a number") from None
        if not math.isfinite(f):
            raise UserError(f"edit value {v} is not a finite number: use ordinary numbers")
        out.append(f)
    return out


def edit_latents(z: torch.Tensor, dims: Sequence[int], values: Sequence[float], mode: str,
                 together: bool = False) -> torch.Tensor:
    """Edited copies of z (N, Z), never z itself.

    Per dim (default): shape (len(dims), len(values), N, Z); row (d, v) differs from z only in
    column dims[d] (``shift``: z[:, d] + v, ``set``: z[:, d] = v). ``together=True`` changes all
    dims in every row, as seed 001's code did: shape (1, len(values), N, Z).
    """
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] == 0:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise UserError(f"latents must be a non-empty (N, z_dim) tensor, got {shape}")
    dims = check_dims(dims, z.shape[1])
    values = check_values(values)
    check_mode(mode)
    groups = [dims] if together else [[d] for d in dims]
    out = z.detach().clone().unsqueeze(0).unsqueeze(0).repeat(len(groups), len(values), 1, 1)
    for g, ds in enumerate(groups):
        for j, v in enumerate(values):
            if mode == "shift":
                out[g, j, :, ds] = out[g, j, :, ds] + v
            else:
                out[g, j, :, ds] = v
    return out


@torch.no_grad()
def generate_edits(G: nn.Module, edited: torch.Tensor) -> np.ndarray:
    """uint8 images (D, V, N, H, W) for edited latents (D, V, N, Z).

    One forward per row, each of N latents like the unedited batch: BLAS kernels may round
    differently for other batch sizes, and a shift by 0 must give the original pixels exactly.
    """
    D, V, N, _ = edited.shape
    rows = [generate_images(G, edited[d, v], batch_size=max(N, 1))
            for d in range(D) for v in range(V)]
    return np.stack(rows).reshape(D, V, N, *rows[0].shape[1:])


def change_stats(images: np.ndarray, original: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: mean |pixel change| (0..255) vs the unedited images, and how many images changed.

    ``images`` (D, V, N, H, W), ``original`` (N, H, W); both results have shape (D, V).
    """
    diff = np.abs(images.astype(np.int16) - original.astype(np.int16)[None, None])
    mean = diff.reshape(*diff.shape[:3], -1).mean(axis=(2, 3))
    changed = (diff.reshape(*diff.shape[:3], -1).max(axis=3) > 0).sum(axis=2)
    return mean, changed


# --- labels and figures -----------------------------------------------------------------------


def _num(v: float) -> str:
    return f"{v:g}"


def row_label(dims: Sequence[int], value: float, mode: str) -> str:
    """``z[20] + 10``, ``z[20] - 10``, ``z[20] = 5``, ``z[0,20,40] = 5``: the edit of one row."""
    target = f"z[{','.join(str(d) for d in dims)}]"
    if mode == "set":
        return f"{target} = {_num(value)}"
    return f"{target} {'-' if value < 0 else '+'} {_num(abs(value))}"


def draw_image_rows(ax: Axes, images: np.ndarray, row_labels: Sequence[str] | None = None,
                    col_labels: Sequence[str] | None = None,
                    right_labels: Sequence[str] | None = None, title: str | None = None) -> None:
    """One tiled image (R, C, H, W) in one Axes: exact pixels, labels at row/column centres.

    One imshow per panel instead of one Axes per image: 120 images stay fast to draw and the
    labels line up with the tiles.
    """
    R, C = images.shape[:2]
    H, W = images.shape[-2:]  # grey (R, C, H, W), or colour (R, C, 3, H, W): an image folder
    grid = grid_array(np.ascontiguousarray(images.reshape(R * C, *images.shape[2:])), nrow=C,
                      pad=PAD)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255,
              interpolation="nearest")
    ys = [PAD + r * (H + PAD) + (H - 1) / 2 for r in range(R)]
    xs = [PAD + c * (W + PAD) + (W - 1) / 2 for c in range(C)]
    ax.set_yticks(ys, list(row_labels) if row_labels is not None else [])
    ax.set_xticks(xs, list(col_labels) if col_labels is not None else [])
    ax.tick_params(length=0, labelsize="small")
    for s in ax.spines.values():
        s.set_visible(False)
    if right_labels is not None:
        sec = ax.secondary_yaxis("right")
        sec.set_yticks(ys, list(right_labels))
        sec.tick_params(length=0, labelsize="small")
        for s in sec.spines.values():
            s.set_visible(False)
    if title:
        ax.set_title(title, loc="left", fontsize="medium")


def cell_size(n_cols: int) -> float:
    """Inches per image: CELL_IN, smaller for many columns so a figure stays ~20 in wide."""
    return min(CELL_IN, MAX_IMAGES_WIDTH_IN / max(n_cols, 1))


def wrap_title(text: str, width_in: float) -> str:
    """Wrap to a figure ``width_in`` inches wide, so a long provenance line is never cut."""
    chars = max(40, int(width_in * DPI / 8.5))  # ~8.5 px per character at 10 pt
    return "\n".join(textwrap.fill(part, chars) for part in text.split("\n"))


def set_title(fig: Figure, text: str) -> None:
    fig.suptitle(wrap_title(text, fig.get_figwidth()), fontsize="medium")


def title_height(text: str, width_in: float) -> float:
    return 0.22 * wrap_title(text, width_in).count("\n")


def _panel_title(dims: Sequence[int], mode: str, together: bool) -> str:
    if together:
        return f"dims {', '.join(map(str, dims))} edited together ({mode})"
    return f"dim {dims[0]} ({mode})"


def _check_images(images: np.ndarray, n_dims: int, n_values: int) -> np.ndarray:
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim != 5 or a.shape[:2] != (n_dims, n_values):
        raise ValueError(f"expected uint8 images ({n_dims}, {n_values}, N, H, W), "
                         f"got {a.dtype} {a.shape}")
    return a


def edit_figure(images: np.ndarray, dims: Sequence[int], values: Sequence[float], mode: str,
                title: str, changes: np.ndarray | None = None, together: bool = False
                ) -> Figure:
    """All dims in one figure: a panel per dim (one panel for ``together``), rows = values,
    columns = the N samples; ``changes`` (D, V) is written right of each row as ``Δ``."""
    groups = [list(dims)] if together else [[d] for d in dims]
    a = _check_images(images, len(groups), len(values))
    D, V, N = a.shape[:3]
    cell = cell_size(N)
    width = 1.9 + (1.0 if changes is not None else 0.0) + cell * N
    height = 0.55 + (0.35 if changes is not None else 0.0) + D * (0.4 + cell * V)
    width = max(width, 5.0)
    fig = Figure(figsize=(width, height + title_height(title, width)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(D, 1, squeeze=False)[:, 0])
    for g, ax in enumerate(axes):
        right = ([f"Δ {c:.1f}" for c in changes[g]] if changes is not None else None)
        draw_image_rows(ax, a[g], [row_label(groups[g], v, mode) for v in values],
                        col_labels=[f"#{i}" for i in range(N)] if g == D - 1 else None,
                        right_labels=right, title=_panel_title(groups[g], mode, together))
    set_title(fig, title)
    if changes is not None:
        fig.supxlabel("columns: the same latent samples in every row; Δ: mean |pixel change| "
                      "vs the unedited images (0..255)", fontsize="small", color="0.3")
    return fig


def edit_grid_figure(images: np.ndarray, dim: int, values: Sequence[float], mode: str,
                     title: str, changes: np.ndarray | None = None) -> Figure:
    """One dim's grid (V, N, H, W): the seeds' per-dim picture, with the measured change."""
    a = np.asarray(images)[None]
    ch = None if changes is None else np.asarray(changes)[None]
    return edit_figure(a, [dim], values, mode, title, changes=ch)


# --- the whole E4 experiment on a run ---------------------------------------------------------


def default_edit_dir(run: Run, mode: str, dims: Sequence[int], together: bool = False) -> Path:
    """``RUN/figures/latent-edit-<mode>[-together]-<dims>``; long dim lists get a short hash."""
    part = "-".join(map(str, dims))
    if len(dims) > 10:
        h = hashlib.sha1(part.encode()).hexdigest()[:6]
        part = f"{dims[0]}-{dims[-1]}-{len(dims)}dims-{h}"
    return run.figures / f"latent-edit-{mode}{'-together' if together else ''}-{part}"


def epoch_text(run: Run, epoch: int | None) -> str:
    """'epoch 3', or 'epoch 10, latest' from meta.json when no epoch was asked for."""
    if epoch is not None:
        return f"epoch {epoch}"
    done = run.meta().get("epochs_done")
    return f"epoch {done}, latest" if isinstance(done, int) else "latest epoch"


def run_edit(run: Run, dims: Sequence[int], values: Sequence[float], mode: str, *,
             seed: int = DEFAULT_SEED, n: int = DEFAULT_N, z_file: str | Path | None = None,
             epoch: int | None = None, together: bool = False,
             out_dir: str | Path | None = None) -> dict[str, Any]:
    """Edit, generate and write figures + raw images + a JSON record; returns that record.

    Writes into ``out_dir`` (default :func:`default_edit_dir`): ``edits.png`` (all dims),
    ``dim-NNN.png`` per dim (not for ``together``), ``edits.npy`` (uint8 (D, V, N, H, W)),
    ``z.npy`` (the unedited latents) and ``edits.json``. Inputs are checked before any work.
    """
    check_mode(mode)
    values = check_values(values)
    z_dim = run.config().model.z_dim
    dims = check_dims(dims, z_dim)
    if z_file is None and n < 1:
        raise UserError("-n must be at least 1")
    out = Path(out_dir) if out_dir is not None else default_edit_dir(run, mode, dims, together)
    if out.suffix.lower() in (".png", ".npy", ".json") or (out.exists() and not out.is_dir()):
        raise UserError(f"--out {out} must be a folder: the edit writes edits.png, "
                        "dim-NNN.png, edits.npy, z.npy and edits.json into it")
    G = load_generator(run, epoch)
    if z_file is not None:
        z = load_latents(z_file, z_dim)
        z_info: dict[str, Any] = {"source": "file", "path": str(z_file),
                                  "sha256": file_sha256(z_file)}
        z_text = f"z from {Path(z_file).name}"
    else:
        z = latents_from_seed(seed, n, z_dim)
        z_info = {"source": "seed", "seed": seed, "n": n,
                  "code": f"torch.manual_seed({seed}); torch.randn({n}, {z_dim})"}
        z_text = f"z from seed {seed}, n={n}"

    edited = edit_latents(z, dims, values, mode, together)
    original = generate_images(G, z, batch_size=max(z.shape[0], 1))
    images = generate_edits(G, edited)
    mean, changed = change_stats(images, original)

    ep = epoch_text(run, epoch)
    title = f"{run.name} ({ep}): {z_text}; {'together' if together else 'one dim per panel'}"
    figures = [save_figure(edit_figure(images, dims, values, mode, title, mean, together),
                           out / "edits.png", DPI)]
    if not together:
        for i, d in enumerate(dims):
            figures.append(save_figure(
                edit_grid_figure(images[i], d, values, mode, f"{run.name} ({ep}): {z_text}",
                                 mean[i]), out / f"dim-{d:03d}.png", DPI))
    atomic_save_npy(out / "edits.npy", images)
    atomic_save_npy(out / "z.npy", z.numpy())

    groups = [dims] if together else [[d] for d in dims]
    rows = [{"dims": groups[g], "value": v, "label": row_label(groups[g], v, mode),
             "mean_abs_change": round(float(mean[g, j]), 4), "changed": int(changed[g, j]),
             "of": int(z.shape[0])}
            for g in range(len(groups)) for j, v in enumerate(values)]
    record: dict[str, Any] = {
        "experiment": "E4 latent edit",
        "run": run.name, "run_path": str(run.path), "epoch": epoch,
        "epochs_done": run.meta().get("epochs_done"),
        "dims": dims, "values": values, "mode": mode, "together": together,
        "z": z_info, "z_shape": list(z.shape), "z_file": "z.npy",
        "images": {"file": "edits.npy", "shape": list(images.shape),
                   "axes": ["dim", "value", "sample", "y", "x"]},
        "change": "mean |pixel change| (0..255) of each row vs the unedited images; "
                  "changed = images with any pixel different",
        "rows": rows,
        "figures": [f.name for f in figures],
        "created": now_iso(),
    }
    atomic_write_text(out / "edits.json", json.dumps(record, indent=2) + "\n")
    files = [*figures, out / "edits.npy", out / "z.npy", out / "edits.json"]
    return {**record, "out_dir": str(out), "files": [str(f) for f in files]}
