"""Paths through latent space: interpolation between two latents, and walks along class
directions measured with the shipped classifier.

Interpolation: a Gaussian z of dimension 100 lies near the sphere of radius 10; the straight
line between two such points dips towards the origin (norm ~7 at the midpoint), where G saw
few samples, so ``slerp`` (along the great circle) is the default and ``lerp`` the comparison.

Class directions (lab-spec E6 on the class-labelled images): sample many z, let the classifier label
G(z), and take mean(z | class B) - mean(z | class A). Walking z + s * direction for s = 0..1
moves by the whole distance between the two class means, so s = 1 from a typical A sample
should look like B. Class shares per step are measured, not guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ganscope.domains import class_domain
from ganscope.errors import UserError
from ganscope.latent.edit import (
    DPI,
    cell_size,
    draw_image_rows,
    epoch_text,
    set_title,
    title_height,
)
from ganscope.render import save_figure
from ganscope.sampling import generate_images, latents_from_seed
from ganscope.training.run import Run, load_generator

METHODS = ("slerp", "lerp")
MIN_CLASS_SAMPLES = 10
PARALLEL_EPS = 1e-6  # |sin(angle)| below this: the great circle is undefined, use the line


class ExtractorLike(Protocol):
    def extract(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]: ...


# --- interpolation ----------------------------------------------------------------------------


def _prepare(z0: torch.Tensor, z1: torch.Tensor, t: float | Sequence[float] | np.ndarray |
             torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """float64 copies of z0, z1 (broadcast) and t shaped (T, 1, ..., 1) to broadcast against."""
    a = torch.as_tensor(z0).to(torch.float64)
    b = torch.as_tensor(z1).to(torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"z0 and z1 must have the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    tt = torch.as_tensor(np.asarray(t, dtype=np.float64) if not isinstance(t, torch.Tensor)
                         else t.to(torch.float64))
    scalar = tt.ndim == 0
    tt = tt.reshape(-1, *([1] * a.ndim))
    return a, b, tt, scalar


def _finish(out: torch.Tensor, like: torch.Tensor, scalar: bool) -> torch.Tensor:
    out = out.to(torch.as_tensor(like).dtype)
    return out[0] if scalar else out


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float | Sequence[float] | np.ndarray |
         torch.Tensor) -> torch.Tensor:
    """(1 - t) z0 + t z1: shape of z0 for a scalar t, else (T, *z0.shape); exact endpoints."""
    a, b, tt, scalar = _prepare(z0, z1, t)
    return _finish((1 - tt) * a + tt * b, z0, scalar)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float | Sequence[float] | np.ndarray |
          torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the last axis (rows of (N, Z) pairs independently).

    sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1 with w the angle between z0 and z1: between two
    unit vectors every point is a unit vector. Where the vectors are (nearly) parallel or
    opposite (|sin w| < 1e-6) or one is zero, the circle is undefined and lerp is used. Shape as
    :func:`lerp`; t = 0 and t = 1 give z0 and z1 exactly.
    """
    a, b, tt, scalar = _prepare(z0, z1, t)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    cos = ((a / na.clamp_min(1e-300)) * (b / nb.clamp_min(1e-300))).sum(-1, keepdim=True)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    flat = (so.abs() < PARALLEL_EPS) | (na == 0) | (nb == 0)
    safe = torch.where(flat, torch.ones_like(so), so)
    w0 = torch.where(flat, 1 - tt, torch.sin((1 - tt) * omega) / safe)
    w1 = torch.where(flat, tt, torch.sin(tt * omega) / safe)
    out = w0 * a + w1 * b
    out = torch.where(tt == 0, a, torch.where(tt == 1, b, out))  # exact, whatever the rounding
    return _finish(out, z0, scalar)


def interpolation_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "slerp"
                          ) -> torch.Tensor:
    """``steps`` latents from z0 to z1 inclusive, evenly spaced in t: (steps, *z0.shape)."""
    if method not in METHODS:
        raise UserError(f"interpolation method must be slerp or lerp, got '{method}'")
    if steps < 2:
        raise UserError(f"--steps must be at least 2 (the two end points), got {steps}")
    t = np.linspace(0.0, 1.0, steps)
    return (slerp if method == "slerp" else lerp)(z0, z1, t)


@torch.no_grad()
def interpolation_strip(G: nn.Module, z0: torch.Tensor, z1: torch.Tensor, steps: int,
                        method: str = "slerp") -> np.ndarray:
    """uint8 images (steps, H, W) from z0 (Z,) to z1; for pairs (N, Z): (N, steps, H, W)."""
    lat = interpolation_latents(z0, z1, steps, method)
    if lat.ndim == 2:
        return generate_images(G, lat.float())
    T, N = lat.shape[:2]
    imgs = generate_images(G, lat.reshape(T * N, -1).float())
    return imgs.reshape(T, N, *imgs.shape[1:]).swapaxes(0, 1).copy()


# --- class directions -------------------------------------------------------------------------


def _norm_name(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


CLASS_DOMAIN = class_domain()  # whose classes and classifier these tools use
CLASSES = CLASS_DOMAIN.class_names
_ALIASES = CLASS_DOMAIN.class_aliases


def load_extractor(device: str = "cpu") -> ExtractorLike:
    """The class domain's shipped classifier (a module-level name so tests can plant one)."""
    return CLASS_DOMAIN.extractor(device)


def resolve_class(name: str | int) -> int:
    """A class index from a name (any case: 'shirt' is Shirt, not T-shirt/top; the domain's
    aliases such as 't-shirt', 'top', 'boot' and plurals are accepted) or from an index."""
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        idx = int(name)
    else:
        s = str(name).strip()
        if re.fullmatch(r"\d+", s):
            idx = int(s)
        else:
            key = _norm_name(s)
            names = {_norm_name(c): i for i, c in enumerate(CLASSES)}
            cand = names.get(key, _ALIASES.get(key))
            if cand is None and key.endswith("s"):
                cand = names.get(key[:-1])
            if cand is None:
                raise UserError(f"unknown class '{name}': use one of {', '.join(CLASSES)} "
                                f"(any case) or an index 0..{len(CLASSES) - 1}")
            idx = cand
    if not 0 <= idx < len(CLASSES):
        raise UserError(f"class index {idx} is out of range: {CLASS_DOMAIN.title} has classes "
                        f"0..{len(CLASSES) - 1}")
    return idx


@dataclass
class ClassDirection:
    """mean(z | B) - mean(z | A) and the evidence behind it."""

    direction: torch.Tensor
    class_a: int
    class_b: int
    count_a: int
    count_b: int
    n: int
    seed: int

    @property
    def distance(self) -> float:
        return float(self.direction.norm())


def classify(extractor: ExtractorLike, images: np.ndarray) -> np.ndarray:
    """The classifier's most probable class per uint8 image (N, H, W)."""
    _, probs = extractor.extract(torch.from_numpy(np.ascontiguousarray(images)))
    return np.asarray(probs).argmax(axis=1)


@torch.no_grad()
def find_class_direction(G: nn.Module, z_dim: int, extractor: ExtractorLike,
                         class_a: str | int, class_b: str | int, n: int = 2048, seed: int = 0
                         ) -> ClassDirection:
    """Sample n latents (seed ``seed``), label G(z) with the classifier, subtract class means."""
    a, b = resolve_class(class_a), resolve_class(class_b)
    if a == b:
        raise UserError(f"the two classes are the same ({CLASSES[a]}): pick two different ones")
    if n < 2 * MIN_CLASS_SAMPLES:
        raise UserError(f"n must be at least {2 * MIN_CLASS_SAMPLES} to find a class direction, "
                        f"got {n}")
    z = latents_from_seed(seed, n, z_dim)
    labels = classify(extractor, generate_images(G, z))
    for c in (a, b):
        k = int((labels == c).sum())
        if k < MIN_CLASS_SAMPLES:
            share = k / n
            more = (max(4 * n, math.ceil(2 * MIN_CLASS_SAMPLES / share)) if share > 0
                    else 4 * n)
            raise UserError(
                f"only {k} of {n} generated samples are classified as {CLASSES[c]} (need at "
                f"least {MIN_CLASS_SAMPLES}): sample more latents (--direction-n {more}) or "
                "use a better-trained generator"
            )
    za, zb = z[torch.from_numpy(labels == a)], z[torch.from_numpy(labels == b)]
    return ClassDirection(zb.mean(0) - za.mean(0), a, b, int(za.shape[0]), int(zb.shape[0]), n,
                          seed)


def class_direction(G: nn.Module, z_dim: int, extractor: ExtractorLike, class_a: str | int,
                    class_b: str | int, n: int = 2048, seed: int = 0) -> torch.Tensor:
    """mean(z | classified B) - mean(z | classified A), shape (Z,): +direction moves A -> B."""
    return find_class_direction(G, z_dim, extractor, class_a, class_b, n, seed).direction


@torch.no_grad()
def walk(G: nn.Module, z: torch.Tensor, direction: torch.Tensor, steps: Sequence[float]
         ) -> np.ndarray:
    """uint8 images (len(steps), N, H, W) of G(z + s * direction); z is (N, Z) or (Z,).

    Each step is one batch of N, like G(z) alone, so step 0 reproduces G(z) bit for bit.
    """
    z = z[None] if z.ndim == 1 else z
    d = direction.to(z.dtype).reshape(1, -1)
    if d.shape[1] != z.shape[1]:
        raise UserError(f"direction has size {d.shape[1]} but z has size {z.shape[1]}")
    if len(steps) == 0:
        raise UserError("give at least one step")
    return np.stack([generate_images(G, z + float(s) * d, batch_size=max(z.shape[0], 1))
                     for s in steps])


# --- figures ----------------------------------------------------------------------------------


def _strip_figure(images: np.ndarray, row_labels: Sequence[str] | None,
                  col_labels: Sequence[str], title: str, xlabel: str | None = None) -> Figure:
    R, C = images.shape[:2]
    left = 1.2 if row_labels is not None else 0.4
    lines = max(s.count("\n") for s in col_labels) + 1
    cell = cell_size(C)
    width = max(left + 0.3 + cell * C, 5.0)
    height = (0.9 + 0.18 * lines + (0.2 + 0.18 * xlabel.count("\n") if xlabel else 0)
              + cell * R + title_height(title, width))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    draw_image_rows(ax, images, row_labels, col_labels)
    if xlabel:
        fig.supxlabel(xlabel, fontsize="small", color="0.3")
    set_title(fig, title)
    return fig


def interpolation_figure(images: np.ndarray, method: str, title: str,
                         row_labels: Sequence[str] | None = None) -> Figure:
    """Strip(s) (steps, H, W) or (N, steps, H, W): columns are t = 0 .. 1."""
    a = np.asarray(images)
    a = a[None] if a.ndim == 3 else a
    T = a.shape[1]
    cols = [f"{t:.2g}" for t in np.linspace(0, 1, T)]
    return _strip_figure(a, row_labels, cols, title, xlabel=f"t ({method})")


def walk_figure(images: np.ndarray, steps: Sequence[float], class_a: str, class_b: str,
                title: str, shares: np.ndarray | None = None) -> Figure:
    """Walk (len(steps), N, H, W) drawn as N rows, one column per step; ``shares`` (2, steps)
    are the fractions classified as A and B, printed under each column."""
    a = np.asarray(images).swapaxes(0, 1)
    cols = [f"{s:+.3g}" for s in steps]
    xlabel = f"step along {class_a} -> {class_b} (1 = distance between the class means)"
    if shares is not None:
        cols = [f"{c}\n{100 * sa:.0f}%|{100 * sb:.0f}%"
                for c, sa, sb in zip(cols, shares[0], shares[1])]
        xlabel += f"\nunder each step: % classified {class_a} | % {class_b}"
    rows = [f"#{i}" for i in range(a.shape[0])]
    return _strip_figure(a, rows, cols, title, xlabel=xlabel)


def _check_png(out: str | Path) -> Path:
    p = Path(out)
    if p.suffix.lower() != ".png":
        raise UserError(f"--out must be a .png file, got {p}")
    return p


def run_interp(run: Run, from_seed: int, to_seed: int, *, steps: int = 10,
               method: str = "slerp", n: int = 1, epoch: int | None = None,
               out: str | Path | None = None) -> dict[str, Any]:
    """Interpolate latents_from_seed(from_seed, n)[i] -> latents_from_seed(to_seed, n)[i], one
    strip per i; writes a PNG (default RUN/figures/latent-interp-METHOD-FROM-TO.png)."""
    if n < 1:
        raise UserError("-n must be at least 1")
    interpolation_latents(torch.zeros(1), torch.zeros(1), steps, method)  # check before loading
    path = (_check_png(out) if out is not None else
            run.figures / f"latent-interp-{method}-{from_seed}-{to_seed}.png")
    G = load_generator(run, epoch)
    z_dim = run.config().model.z_dim
    z0, z1 = latents_from_seed(from_seed, n, z_dim), latents_from_seed(to_seed, n, z_dim)
    images = interpolation_strip(G, z0, z1, steps, method)
    ep = epoch_text(run, epoch)
    title = f"{run.name} ({ep}): {method} from seed {from_seed} to seed {to_seed}"
    rows = [f"#{i}" for i in range(n)] if n > 1 else None
    save_figure(interpolation_figure(images, method, title, rows), path, DPI)
    return {"out": str(path), "shape": list(images.shape), "method": method, "steps": steps,
            "n": n, "from_seed": from_seed, "to_seed": to_seed,
            "norms": {"from": [round(float(v), 3) for v in z0.norm(dim=1)],
                      "to": [round(float(v), 3) for v in z1.norm(dim=1)]}}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_walk(run: Run, class_from: str | int, class_to: str | int, *,
             steps: Sequence[float] = (-3, -2, -1, 0, 1, 2, 3), seed: int = 23231, n: int = 8,
             direction_n: int = 2048, direction_seed: int = 0, epoch: int | None = None,
             out: str | Path | None = None, extractor: ExtractorLike | None = None
             ) -> dict[str, Any]:
    """Find the A -> B direction, walk n samples along it, measure the class shares per step,
    and write the PNG (default RUN/figures/latent-walk-A-B.png)."""
    a, b = resolve_class(class_from), resolve_class(class_to)
    if n < 1:
        raise UserError("-n must be at least 1")
    if not steps or not all(math.isfinite(float(s)) for s in steps):
        raise UserError("--steps must be finite numbers")
    name_a, name_b = CLASSES[a], CLASSES[b]
    path = (_check_png(out) if out is not None else
            run.figures / f"latent-walk-{_slug(name_a)}-{_slug(name_b)}.png")
    G = load_generator(run, epoch)
    z_dim = run.config().model.z_dim
    if extractor is None:
        extractor = load_extractor()
    cd = find_class_direction(G, z_dim, extractor, a, b, direction_n, direction_seed)
    # Unit direction times the class-mean distance: step 1 = from mean(A) to mean(B).
    direction = cd.direction / cd.direction.norm() * cd.distance
    z = latents_from_seed(seed, n, z_dim)
    images = walk(G, z, direction, list(steps))
    labels = classify(extractor, images.reshape(-1, *images.shape[2:])).reshape(len(steps), n)
    shares = np.stack([(labels == a).mean(axis=1), (labels == b).mean(axis=1)])
    ep = epoch_text(run, epoch)
    title = (f"{run.name} ({ep}): walk {name_a} -> {name_b}, z from seed {seed}\ndirection "
             f"from {direction_n} samples ({cd.count_a} {name_a}, {cd.count_b} {name_b})")
    save_figure(walk_figure(images, list(steps), name_a, name_b, title, shares), path, DPI)
    return {"out": str(path), "class_from": name_a, "class_to": name_b,
            "distance": round(cd.distance, 4), "count_from": cd.count_a,
            "count_to": cd.count_b, "direction_n": direction_n,
            "direction_seed": direction_seed, "steps": [float(s) for s in steps],
            "share_from": [round(float(v), 4) for v in shares[0]],
            "share_to": [round(float(v), 4) for v in shares[1]], "seed": seed, "n": n,
            "shape": list(images.shape)}
