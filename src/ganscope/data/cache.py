"""The decoded-image caches of the image loaders (CelebA, image folders): read back or rebuilt.

Decoding and resizing thousands of JPEG/PNG files takes minutes; a loader saves the result once
(``atomic_torch_save``) under a key of everything that decides it (the files, the size, the crop)
and reads it back here. A cache is disposable: anything wrong with it (another format or key,
shapes that do not match, a torn file) is one warning line and a rebuild, never an error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def read_image_cache(path: Path, fmt: str, key: str, *, what: str, source: str,
                     per_image: tuple[str, ...] = ()) -> dict | None:
    """The cache at ``path`` when it holds ``fmt`` under ``key`` with uint8 (N, C, H, W)
    ``images`` for its N ``files`` (and N rows of each uint8 tensor named in ``per_image``);
    None when there is none, or, with a warning naming ``what`` and ``source``, when it is
    damaged or stale."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, dict) or obj.get("format") != fmt or obj.get("key") != key:
            raise ValueError("not this cache's format or key")
        images, n = obj["images"], len(obj["files"])
        rows = [obj[k] for k in per_image]
        if (images.dtype != torch.uint8 or images.ndim != 4 or images.shape[0] != n
                or any(t.shape[0] != n or t.dtype != torch.uint8 for t in rows)):
            raise ValueError("tensor shapes do not match")
        return obj
    except Exception as e:  # noqa: BLE001  (a cache is disposable: any failure means rebuild)
        print(f"warning: ignoring damaged {what} {path} ({type(e).__name__}); "
              f"rebuilding it from the {source}", file=sys.stderr)
        return None
