"""A head-yaw proxy from pixels alone (CelebA has no pose labels): where the face's mirror axis is.

**What it measures.** A frontal face is close to mirror-symmetric about a vertical axis through
the nose; CelebA's aligned crops put that axis at the image centre. When the head turns, the
face band between the eyes and the mouth is still best matched by its own mirror image about
*some* vertical axis, but that axis moves off-centre: towards the visible (near) cheek, away from
the side the nose points to, because the aligned crop keeps the eyes' midpoint fixed while the
near half of the face widens and the far half narrows. ``yaw`` finds that axis: for each
horizontal shift s in [-W/5, W/5] it takes the normalised cross-correlation between the grey
band and its mirror image shifted by s (a mirror axis at (W-1)/2 + s/2), turns the scores into
weights with a softmax (temperature 0.03, so the result moves smoothly and can be
differentiated), and returns minus the weighted axis offset in units of the image width:

    yaw > 0: the face is turned towards the image's right (the nose points right; the person
             turns to their own left); yaw < 0: towards the image's left; ~0: frontal.

Typical values on CelebA 64x64 crops lie in about [-0.15, 0.15] (std ~0.05).

**Why this one.** It is exactly antisymmetric under a horizontal flip: flipping the image maps
the score at shift s to the score at -s, so yaw(flip(x)) = -yaw(x) up to float rounding (the
tests check 1e-6). Normalised cross-correlation ignores each image's brightness and contrast, so
uint8 [0, 255] and generator output in [-1, 1] give the same number and a left-right lighting
gradient moves it less than it moves a mask- or brightness-centroid. Two alternatives were tried
on real CelebA crops and rejected: the horizontal centroid of a YCbCr skin mask (skin-coloured
backgrounds and the weak chroma of small JPEGs pull it around, and it reverses sign between
three-quarter views and profiles), and the gradient-magnitude version of this axis search (its
ranking did not follow the turned faces).

**Limits.** A proxy, not a pose estimator: it has no angle unit, it saturates for full profiles
(the shift range ends at W/5), and strongly asymmetric hair, a hand at the face or side
lighting can move it. Use it to rank and to measure change along a latent walk, not to read off
degrees.
"""

from __future__ import annotations

import torch

YAW = "Yaw"  # the attribute name under which scorers report it
BAND = (0.35, 0.8)  # rows used, as fractions of the height: eyes to mouth in aligned crops
MAX_SHIFT = 0.2  # largest mirror shift searched, as a fraction of the width
TEMPERATURE = 0.03  # softmax temperature on the correlation scores


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W) float32 grey from (N, 3, H, W) RGB or (N, 1, H, W) / (N, H, W) grey, any range."""
    x = images.float()
    if x.ndim == 4 and x.shape[1] == 3:
        return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim == 3:
        return x
    raise ValueError(f"expected images (N, 3|1, H, W) or (N, H, W), got {tuple(images.shape)}")


def mirror_scores(images: torch.Tensor, band: tuple[float, float] = BAND,
                  max_shift: float = MAX_SHIFT) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlation of each image's band with its mirror image at each shift: (N, 2S+1), and the
    shifts (2S+1,) in pixels. Shift s compares column j with mirrored column j - s."""
    g = luminance(images)
    h, w = g.shape[-2:]
    f = g[:, int(round(band[0] * h)):max(int(round(band[1] * h)), int(round(band[0] * h)) + 1)]
    fm = f.flip(-1)
    s_max = max(1, int(round(max_shift * w)))
    out = []
    for s in range(-s_max, s_max + 1):
        a, b = (f[..., s:], fm[..., :w - s]) if s >= 0 else (f[..., :w + s], fm[..., -s:])
        a = a - a.mean((1, 2), keepdim=True)
        b = b - b.mean((1, 2), keepdim=True)
        den = (a.square().sum((1, 2)) * b.square().sum((1, 2))).sqrt().clamp_min(1e-12)
        out.append((a * b).sum((1, 2)) / den)
    return torch.stack(out, 1), torch.arange(-s_max, s_max + 1, dtype=torch.float32)


def yaw(images: torch.Tensor, band: tuple[float, float] = BAND, max_shift: float = MAX_SHIFT,
        temperature: float = TEMPERATURE) -> torch.Tensor:
    """The yaw proxy of each image, (N,) float32: > 0 turned towards the image's right.

    ``images``: (N, 3, H, W) RGB (or grey) in any intensity range; square aligned face crops
    (CelebA as loaded, or a face generator's output).
    """
    scores, shifts = mirror_scores(images, band, max_shift)
    weights = torch.softmax(scores / temperature, dim=1)
    axis_offset = (weights * shifts.to(weights.device)).sum(1) / 2  # pixels from the centre
    return -axis_offset / images.shape[-1]


def yaw_scorer(images: torch.Tensor) -> torch.Tensor:
    """``yaw`` as a one-column scorer, (N, 1), for a DirectionContext (attributes=("Yaw",))."""
    return yaw(images).unsqueeze(1)
