"""Image sets from files for ``ganscope eval --images``: a ``.npy`` array or a folder of PNGs.

Any generator's output can be scored this way, ganscope's or not. Values are normalised to the
uint8 0..255 the extractor was trained on, exactly as ganscope quantises its own samples.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganscope.data.folder import to_uint8
from ganscope.errors import UserError

PNG_SUFFIXES = (".png",)


def load_image_set(path: str | os.PathLike) -> torch.Tensor:
    """uint8 (N, H, W) from ``FILE.npy`` (uint8, or float in [0, 1] or [-1, 1]) or a PNG folder."""
    p = Path(path)
    if p.is_dir():
        return _load_png_dir(p)
    if not p.is_file():
        raise UserError(f"image set {p} not found: give a .npy file or a folder of PNG images")
    if p.suffix != ".npy":
        raise UserError(f"unknown image set type {p.suffix or '(none)'} for {p}: "
                        "use a .npy array (N, 28, 28) or a folder of PNG images")
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"cannot read {p} as a .npy array ({str(e)[:80]}): "
                        "save it with numpy.save") from None
    if not isinstance(a, np.ndarray):  # np.load opens an .npz archive whatever its name
        a.close()
        raise UserError(f"{p} is an .npz archive, not one .npy array: save the images with "
                        "numpy.save")
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3 or 0 in a.shape:
        raise UserError(f"{p} holds an array of shape {a.shape}: expected images (N, 28, 28)")
    return torch.from_numpy(to_uint8(a, p))


def _load_png_dir(d: Path) -> torch.Tensor:
    files = sorted(f for f in d.iterdir() if f.suffix.lower() in PNG_SUFFIXES)
    if not files:
        raise UserError(f"folder {d} holds no .png images: put one image per file in it")
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("L"))
        except (OSError, UnidentifiedImageError):
            raise UserError(f"cannot read image {f}: it is damaged or not a PNG") from None
        if out and arr.shape != out[0].shape:
            raise UserError(f"image {f} is {arr.shape[1]}x{arr.shape[0]} but {files[0].name} is "
                            f"{out[0].shape[1]}x{out[0].shape[0]}: all images must be one size")
        out.append(arr)
    return torch.from_numpy(np.stack(out))
