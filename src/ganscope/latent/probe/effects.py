"""What the probe measures on each image: the effects, and their fast vectorised form.

An effect is one number per generated image (a class probability from the shipped classifier,
brightness, a region's intensity, the silhouette area, the pixel change from the unswept image)
that the probe averages over its base vectors. :data:`EFFECTS` defines each one on its own so
that its meaning is readable and testable; :func:`_chunk_means` computes the same numbers for a
whole chunk at once (the linear ones as one matmul), because the probe measures ~200k images.
The names are CSV-safe and keep their order (``EFFECT_NAMES``): it is the column order of the
probe's curves, slopes and files.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch

from ganscope.domains import class_domain

FRAME = 4  # width of the border frame in pixels
AREA_THRESHOLD = 0.5 * 255  # a pixel belongs to the silhouette when brighter than half scale
CLASSES = class_domain().class_names  # the classes the shipped classifier gives probabilities of


def class_effect_name(cls: str) -> str:
    """'T-shirt/top' -> 'p_T_shirt_top', 'Ankle boot' -> 'p_Ankle_boot' (CSV-safe names)."""
    return "p_" + re.sub(r"[^A-Za-z0-9]+", "_", cls).strip("_")


CLASS_EFFECTS = tuple(class_effect_name(c) for c in CLASSES)
REGIONS = ("top", "bottom", "left", "right", "centre", "border")
IMAGE_EFFECTS = ("brightness", *REGIONS, "area", "pixel_change")


def region_masks(h: int = 28, w: int = 28) -> dict[str, np.ndarray]:
    """Boolean masks (H, W) of the regions.

    top / bottom: rows [0, H/2) / [H/2, H); left / right: columns [0, W/2) / [W/2, W);
    centre: the central (H/2) x (W/2) block, rows and columns [H/4, H/4 + H/2) (14x14 at 28x28:
    7..20); border: the outer frame of FRAME = 4 pixels (rows or columns < 4 or >= H - 4).
    """
    r = np.arange(h)[:, None]
    c = np.arange(w)[None, :]
    full = np.ones((h, w), dtype=bool)
    return {
        "top": full & (r < h // 2), "bottom": full & (r >= h // 2),
        "left": full & (c < w // 2), "right": full & (c >= w // 2),
        "centre": ((r >= h // 4) & (r < h // 4 + h // 2) & (c >= w // 4) & (c < w // 4 + w // 2)),
        "border": (r < FRAME) | (r >= h - FRAME) | (c < FRAME) | (c >= w - FRAME),
    }


def _f(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float64) / 255.0


def _region_effect(name: str) -> Callable[..., np.ndarray]:
    def fn(images: np.ndarray, probs: np.ndarray | None = None,
           base: np.ndarray | None = None) -> np.ndarray:
        m = region_masks(*images.shape[1:])[name]
        return _f(images)[:, m].mean(axis=1)

    fn.__doc__ = f"mean intensity (0..1) of the {name} region, per image"
    return fn


def _class_effect(i: int) -> Callable[..., np.ndarray]:
    def fn(images: np.ndarray, probs: np.ndarray | None = None,
           base: np.ndarray | None = None) -> np.ndarray:
        if probs is None:
            raise ValueError("class effects need the classifier's probabilities")
        return np.asarray(probs, dtype=np.float64)[:, i]

    fn.__doc__ = f"classifier probability of {CLASSES[i]}, per image"
    return fn


def _brightness(images: np.ndarray, probs: np.ndarray | None = None,
                base: np.ndarray | None = None) -> np.ndarray:
    """mean pixel / 255, per image"""
    return _f(images).reshape(len(images), -1).mean(axis=1)


def _area(images: np.ndarray, probs: np.ndarray | None = None,
          base: np.ndarray | None = None) -> np.ndarray:
    """silhouette: fraction of pixels > 0.5 * 255, per image"""
    return (np.asarray(images).reshape(len(images), -1) > AREA_THRESHOLD).mean(axis=1)


def _pixel_change(images: np.ndarray, probs: np.ndarray | None = None,
                  base: np.ndarray | None = None) -> np.ndarray:
    """mean |x - x0| / 255 against the unswept image x0, per image"""
    if base is None:
        raise ValueError("pixel_change needs the unswept base images")
    return np.abs(_f(images) - _f(base)).reshape(len(images), -1).mean(axis=1)


#: name -> fn(images uint8 (N, H, W), probs (N, 10) or None, base uint8 (N, H, W) or None)
#: returning one value per image; the probe averages them over the base vectors.
EFFECTS: dict[str, Callable[..., np.ndarray]] = {
    **{name: _class_effect(i) for i, name in enumerate(CLASS_EFFECTS)},
    "brightness": _brightness,
    **{r: _region_effect(r) for r in REGIONS},
    "area": _area,
    "pixel_change": _pixel_change,
}
EFFECT_NAMES = tuple(EFFECTS)
CLASS_NAME = dict(zip(CLASS_EFFECTS, CLASSES))


def _stat_matrix(h: int, w: int) -> torch.Tensor:
    """(H*W, 7) weights: brightness and the six region means as one matmul on flat images."""
    masks = region_masks(h, w)
    cols = [np.full(h * w, 1.0 / (h * w))]
    for r in REGIONS:
        m = masks[r].ravel().astype(np.float64)
        cols.append(m / m.sum())
    return torch.from_numpy(np.stack(cols, axis=1) / 255.0).float()


def _chunk_means(images: torch.Tensor, probs: np.ndarray, base: torch.Tensor, groups: int,
                 W: torch.Tensor) -> np.ndarray:
    """Mean of every effect per group of N images: (groups, n_effects), in EFFECT_NAMES order.

    The same quantities as :data:`EFFECTS`, vectorised: the linear ones as one matmul.
    """
    n = base.shape[0]
    x = images.reshape(groups, n, -1).float()
    lin = (x @ W).mean(dim=1)  # (groups, 7)
    area = (x > AREA_THRESHOLD).float().mean(dim=2).mean(dim=1, keepdim=True)
    change = (x - base.reshape(1, n, -1).float()).abs().mean(dim=2).mean(dim=1, keepdim=True)
    p = probs.reshape(groups, n, -1).astype(np.float64).mean(axis=1)
    return np.concatenate([p, lin.double().numpy(), area.double().numpy(),
                           change.double().numpy() / 255.0], axis=1)
