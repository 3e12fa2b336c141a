"""The seeded stand-in for the FID Inception weights, and the fixed images it is compared on.

Tests cannot download the real ``pt_inception-2015-12-05-6726825d.pth``, so they write a file
of the same format (a state dict with the same keys and shapes) whose values come from NumPy
seeded by each key's name: the same bytes in any venv and with any torch version, which is what
lets ``make_inception_reference.py`` compute pytorch-fid's features on it once, in a throwaway
venv with torchvision, and the tests compare ganscope's features with those numbers here.

Scale: He-normal convolutions and near-identity batch norms keep the activations O(1) through
all 94 layers, so the features are neither all zero nor huge (a plain N(0, 1) init overflows).
Importable without ganscope: only numpy and torch.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def standin_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.tensor(0, dtype=torch.long)
    if key.startswith("fc."):
        v = rng.normal(0, 0.01, shape) if leaf == "weight" else np.zeros(shape)
    elif ".conv." in key:
        fan_in = int(np.prod(shape[1:]))
        v = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
    elif leaf == "weight":  # batch norm scale
        v = rng.uniform(0.8, 1.2, shape)
    elif leaf == "bias" or leaf == "running_mean":
        v = rng.normal(0, 0.1, shape)
    elif leaf == "running_var":
        v = rng.uniform(0.8, 1.2, shape)
    else:
        raise KeyError(f"unexpected key {key}")
    return torch.from_numpy(np.asarray(v, dtype=np.float32))


def standin_state_dict(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """The stand-in for a network whose state dict has these keys and shapes."""
    return {k: standin_value(k, tuple(s)) for k, s in shapes.items()}


def fixed_images() -> np.ndarray:
    """Six uint8 RGB images (6, 3, 48, 40) of different content: smooth gradients, noise,
    flat colour, a checkerboard, a grey one; not square, so the resize to 299 is exercised."""
    rng = np.random.default_rng(1234)
    h, w = 48, 40
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((6, 3, h, w), dtype=np.uint8)
    out[0] = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) * 255 // (h + w - 2)])
    out[1] = rng.integers(0, 256, (3, h, w))
    out[2] = np.array([200, 40, 90], dtype=np.uint8)[:, None, None]
    out[3] = (((yy // 6) + (xx // 6)) % 2 * 255).astype(np.uint8)[None]
    grey = rng.integers(0, 256, (h, w)).astype(np.uint8)
    out[4] = grey[None]
    out[5] = np.clip(out[0].astype(int) + rng.integers(-40, 41, (3, h, w)), 0, 255)
    return out
