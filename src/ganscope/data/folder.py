"""The user's own images: a folder of PNG/JPEG files, or a ``.npy`` / ``.npz`` array of images.

``data.dir`` names either

- a **folder**, searched recursively for ``.png``, ``.jpg`` and ``.jpeg`` files (hidden files
  and folders skipped), in sorted path order. When every image lies in a sub-folder, the
  top-level sub-folder's name is its class: labels 0..K-1 in sorted name order, and the class
  names are kept (for the conditional models to come). Images at the top level beside
  sub-folders of images are refused: the labels would be half missing.
- an **array file**: ``.npy`` holding images (N, H, W), (N, C, H, W) or (N, H, W, C) with C 1
  or 3; ``.npz`` holding ``images`` (or its only array), optionally ``labels`` (N,) and
  ``class_names``. uint8, or float in [0, 1] (or [-1, 1], a generator's tanh output).

Every image is cut to its largest centred square and resized once to ``data.image_size`` (PIL
bicubic, antialiased), kept as uint8 (N, C, S, S).

Channels (``data.channels``): 1 (grey) or 3 (RGB) converts every image (grey to RGB repeats
the value; RGB to grey is PIL's ITU-R 601 luma). 0 (auto, the default) decides from the files
themselves, without decoding them: a folder is RGB when any file is a colour image (by its
header's mode: palette images count as grey only when their palette is), else grey; an array
has the channels of its shape. The decision is made when the config is validated, before a run
directory exists, because the generator's output shape depends on it.

Cache: decoding thousands of JPEGs takes a while, so a folder's result is stored once under
``cache_root()/folder/``, keyed by the folder, every file's relative name, size and mtime, the
size, channels and limit; a changed, added or removed file means a new key. The channel peek is
cached beside it under the same listing key. Arrays are read directly (loading one is fast).
Unreadable or corrupt files fail the load with one line naming them (the first few and a count).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ganscope.data.cache import read_image_cache
from ganscope.errors import DataError
from ganscope.io import atomic_torch_save, atomic_write_text
from ganscope.paths import cache_root

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".npz")
CACHE_FORMAT = "ganscope-folder-cache-v1"
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
PROGRESS_MIN = 300  # images to decode before a progress bar is worth showing
SHOW_BAD = 3  # corrupt files named in the one error line
GET_IT = ("set data.dir (or --data-dir) to a folder of PNG/JPEG images (sub-folders = classes) "
          "or to a .npy/.npz array of images")


@dataclass
class ImageFolder:
    """The images in memory, in sorted file order, with their labels if the folder has classes."""

    images: torch.Tensor  # uint8 (N, C, S, S)
    labels: torch.Tensor | None  # int64 (N,) class indices, or None without sub-folders
    class_names: tuple[str, ...]
    files: list[str]  # relative paths (a folder) or "name.npy[i]"
    source: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def cache_dir() -> Path:
    return cache_root() / "folder"


def locate(data_dir: str | os.PathLike | None) -> Path:
    """The folder or array file of ``data.dir``; DataError (one line) when it is not usable."""
    if not data_dir:
        raise DataError(f"data.name folder needs its images: {GET_IT}")
    p = Path(data_dir).expanduser()
    if p.is_dir():
        return p.resolve()
    if p.is_file():
        if p.suffix.lower() not in ARRAY_SUFFIXES:
            raise DataError(f"{p} is a {p.suffix or 'suffix-less'} file: {GET_IT}")
        return p.resolve()
    raise DataError(f"image folder {p} does not exist: {GET_IT}")


# --- folders -------------------------------------------------------------------------------------


def list_images(d: Path) -> list[tuple[str, int, int]]:
    """(relative posix path, size, mtime_ns) of every image under ``d``, sorted; hidden skipped."""
    out = []
    for root, dirs, names in os.walk(d):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for name in names:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            full = Path(root) / name
            try:
                st = full.stat()
            except OSError:  # a dangling link or a file removed while listing
                continue
            out.append((full.relative_to(d).as_posix(), st.st_size, st.st_mtime_ns))
    out.sort()
    if not out:
        raise DataError(f"image folder {d} holds no .png/.jpg/.jpeg images (searched "
                        "recursively): put the images there, one per file")
    return out


def classes_of(files: list[str], d: Path) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The class names (top-level sub-folders, sorted) and each file's label; no classes when
    every image lies at the top level."""
    tops = [f.split("/", 1)[0] if "/" in f else None for f in files]
    if all(t is None for t in tops):
        return (), None
    loose = [f for f, t in zip(files, tops) if t is None]
    if loose:
        raise DataError(f"image folder {d} mixes images at its top level ({loose[0]}, "
                        f"{len(loose)} in all) with class sub-folders: move every image into "
                        "a sub-folder named after its class, or use no sub-folders")
    names = tuple(sorted(set(tops)))
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index[t] for t in tops], dtype=np.int64)


def listing_key(d: Path, listing: list[tuple[str, int, int]]) -> str:
    h = hashlib.sha256(json.dumps([CACHE_FORMAT, str(d)]).encode())
    for name, size, mtime in listing:
        h.update(f"{name}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def _is_colour(img: Image.Image) -> bool:
    if img.mode in GREY_MODES:
        return False
    if img.mode in ("P", "PA"):
        pal = img.getpalette() or []
        return any(pal[i] != pal[i + 1] or pal[i] != pal[i + 2] for i in range(0, len(pal), 3))
    return True


def _bad_line(d: Path, bad: list[tuple[str, str]], total: int) -> str:
    shown = ", ".join(f"{f} ({why})" for f, why in bad[:SHOW_BAD])
    more = f" and {len(bad) - SHOW_BAD} more" if len(bad) > SHOW_BAD else ""
    return (f"{len(bad)} of {total} images in {d} cannot be read: {shown}{more}: "
            "replace or remove them")


def _peek_folder(d: Path, listing: list[tuple[str, int, int]]) -> int:
    """1 or 3 from the files' headers (no pixels decoded); DataError naming unreadable ones."""
    colour, bad = False, []
    for name, _, _ in listing:
        try:
            with Image.open(d / name) as img:
                colour = colour or _is_colour(img)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            bad.append((name, type(e).__name__))
    if bad:
        raise DataError(_bad_line(d, bad, len(listing)))
    return 3 if colour else 1


def decode_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """One file: largest centred square, resized to ``image_size``; uint8 (C, S, S)."""
    with Image.open(path) as img:
        w, h = img.size
        side = min(w, h)
        if img.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale while the crop stays >= S
            scale = max(1, side // image_size)
            img.draft(img.mode, (max(1, w // scale), max(1, h // scale)))
        if img.mode.startswith("I;16") or img.mode == "I":  # 16-bit grey: scale, not clip
            a = np.asarray(img, dtype=np.float64)
            img = Image.fromarray(np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8))
        img = img.convert("L" if channels == 1 else "RGB")
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        out = img.resize((image_size, image_size), Image.BICUBIC,
                         box=(left, top, left + side, top + side))
    a = np.asarray(out, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _selection(n: int, limit: int | None) -> np.ndarray:
    """Which of n sorted files ``data.limit`` keeps: evenly spread over the whole listing, so a
    small limit still holds every class of a class folder (the first N would be one class)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


# --- arrays --------------------------------------------------------------------------------------


def _npz_header_shape(path: Path) -> tuple[int, ...]:
    with zipfile.ZipFile(path) as z:
        names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
        k = _npz_key(path, names)
        with z.open(k + ".npy") as f:
            return _header_shape(f)


def _header_shape(f) -> tuple[int, ...]:
    fmt = np.lib.format
    version = fmt.read_magic(f)
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    return tuple(read(f)[0])


def _npz_key(path: Path, names: list[str]) -> str:
    if "images" in names:
        return "images"
    arrays = [n for n in names if n not in ("labels", "class_names")]
    if len(arrays) == 1:
        return arrays[0]
    raise DataError(f"{path} holds arrays {', '.join(sorted(names)) or '(none)'}: name the "
                    "images 'images' (and optionally 'labels', 'class_names')")


def array_shape(path: Path) -> tuple[int, ...]:
    """The image array's shape from the file's header, without reading the data."""
    try:
        if path.suffix.lower() == ".npz":
            return _npz_header_shape(path)
        with open(path, "rb") as f:
            return _header_shape(f)
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, KeyError, EOFError) as e:
        raise DataError(f"cannot read {path} as a {path.suffix} array ({type(e).__name__}): "
                        "save the images with numpy.save / numpy.savez") from None


def _layout(path: Path, shape: tuple[int, ...]) -> tuple[str, int]:
    """'nhw', 'nchw' or 'nhwc' and the channels of an image array's shape."""
    if len(shape) == 3 and 0 not in shape:
        return "nhw", 1
    if len(shape) == 4 and 0 not in shape:
        if shape[1] in (1, 3):
            return "nchw", shape[1]
        if shape[3] in (1, 3):
            return "nhwc", shape[3]
    raise DataError(f"{path} holds an array of shape {shape}: expected images (N, H, W), "
                    "(N, C, H, W) or (N, H, W, C) with C 1 or 3")


def to_uint8(a: np.ndarray, path: Path) -> np.ndarray:
    """An array of images as uint8 0..255: uint8 as it is, integers in 0..255, floats in
    [0, 1] or in [-1, 1] (a generator's tanh output) scaled; anything else one DataError line
    naming ``path``. Shared by image folders' arrays and ``ganscope eval --images``."""
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind in "iu":  # not np.issubdtype(.., np.integer): timedelta64 is one too
        if a.min() < 0 or a.max() > 255:
            raise DataError(f"{path} holds integers outside 0..255: scale them to uint8 images")
        return a.astype(np.uint8)
    if a.dtype.kind != "f":
        raise DataError(f"{path} holds {a.dtype} values: expected uint8 or float images")
    if not np.isfinite(a).all():
        raise DataError(f"{path} holds non-finite values (nan or inf): fix the images first")
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0.0 and hi <= 1.0:
        x = a.astype(np.float64) * 255.0
    elif lo >= -1.0 and hi <= 1.0:  # a generator's tanh output
        x = (a.astype(np.float64) + 1.0) * 127.5
    else:
        raise DataError(f"{path} holds floats in [{lo:.3g}, {hi:.3g}]: float images must lie "
                        "in [0, 1] (or [-1, 1] for tanh output)")
    return np.round(x).astype(np.uint8)


def _read_array(path: Path) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    try:
        obj = np.load(path, allow_pickle=False)
        if isinstance(obj, np.ndarray):
            return obj, None, ()
        with obj:
            key = _npz_key(path, list(obj.files))
            images = obj[key]
            labels = obj["labels"] if "labels" in obj.files else None
            names = tuple(str(s) for s in obj["class_names"]) if "class_names" in obj.files \
                else ()
        return images, labels, names
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, KeyError, EOFError) as e:
        raise DataError(f"cannot read {path} as a {path.suffix} array ({type(e).__name__}): "
                        "save the images with numpy.save / numpy.savez") from None


def _convert_channels(a: np.ndarray, channels: int) -> np.ndarray:
    """(N, C, H, W) uint8 to ``channels``: grey repeated, or RGB to PIL's ITU-R 601 luma."""
    if a.shape[1] == channels:
        return a
    if channels == 3:
        return np.repeat(a, 3, axis=1)
    return np.stack([np.asarray(Image.fromarray(x.transpose(1, 2, 0)).convert("L")) for x in a]
                    )[:, None]


def _square_resize(a: np.ndarray, image_size: int) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, C, S, S): largest centred square, PIL bicubic (as files)."""
    n, c, h, w = a.shape
    if h == w == image_size:
        return a
    side = min(h, w)
    left, top = (w - side) / 2, (h - side) / 2
    box = (left, top, left + side, top + side)
    out = np.empty((n, c, image_size, image_size), dtype=np.uint8)
    for i in range(n):
        img = Image.fromarray(a[i, 0] if c == 1 else a[i].transpose(1, 2, 0))
        r = np.asarray(img.resize((image_size, image_size), Image.BICUBIC, box=box))
        out[i] = r[None] if c == 1 else r.transpose(2, 0, 1)
    return out


# --- the one entry point -------------------------------------------------------------------------


def own_size(data_dir: str | os.PathLike) -> int:
    """The side of the (square) images of a folder (its first file) or array; DataError when
    they are not square, since then a size must be chosen."""
    p = locate(data_dir)
    if p.is_file():
        shape = array_shape(p)
        layout, _ = _layout(p, shape)
        h, w = shape[1:3] if layout in ("nhw", "nhwc") else shape[2:4]
        what = str(p)
    else:
        first = list_images(p)[0][0]
        try:
            with Image.open(p / first) as img:
                w, h = img.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise DataError(_bad_line(p, [(first, type(e).__name__)], 1)) from None
        what = str(p / first)
    if h != w:
        raise DataError(f"{what} holds {w}x{h} images, not square: choose the size to cut "
                        "them to with --image-size S")
    return int(h)


def folder_channels(data_dir: str | os.PathLike | None, channels: int = 0) -> int:
    """The channels the data will have: ``channels`` if set (1 or 3), else decided from the
    files (see the module doc). Reads headers only; a folder's answer is cached by its listing."""
    if channels in (1, 3):
        return channels
    p = locate(data_dir)
    if p.is_file():
        return _layout(p, array_shape(p))[1]
    listing = list_images(p)
    key = listing_key(p, listing)
    memo = cache_dir() / f"{key[:24]}.channels.json"
    try:
        got = json.loads(memo.read_text())
        if got.get("key") == key and got.get("channels") in (1, 3):
            return int(got["channels"])
    except (OSError, ValueError, AttributeError):
        pass
    c = _peek_folder(p, listing)
    with contextlib.suppress(Exception):  # a cache that cannot be written costs time only
        atomic_write_text(memo, json.dumps({"key": key, "channels": c}))
    return c


def load_folder(data_dir: str | os.PathLike | None, image_size: int = 64, channels: int = 0,
                limit: int | None = None, progress: bool | None = None,
                use_cache: bool = True) -> ImageFolder:
    """The images of ``data.dir`` as uint8 (N, C, S, S) plus labels; DataError (one line) for a
    missing, empty or mixed folder, a bad array and for unreadable files."""
    if not 8 <= image_size <= 512:
        raise DataError(f"image folder image_size {image_size} is out of range: use 8..512")
    if channels not in (0, 1, 3):
        raise DataError(f"data.channels {channels} must be 1 (grey), 3 (RGB) or 0 (auto)")
    p = locate(data_dir)
    c = folder_channels(p, channels)
    if p.is_file():
        return _load_array(p, image_size, c, limit)
    listing = list_images(p)
    files = [f for f, _, _ in listing]
    class_names, labels = classes_of(files, p)
    idx = _selection(len(files), limit)
    spec = {"format": CACHE_FORMAT, "listing": listing_key(p, listing), "image_size": image_size,
            "channels": c, "limit": limit}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    cpath = cache_dir() / f"{key[:24]}.pt"
    obj = (read_image_cache(cpath, CACHE_FORMAT, key, what="image cache", source="files")
           if use_cache else None)
    cached = obj is not None
    if obj is None:
        chosen = [files[i] for i in idx]
        images = np.empty((len(chosen), c, image_size, image_size), dtype=np.uint8)
        show = (len(chosen) > PROGRESS_MIN) if progress is None else progress
        bad: list[tuple[str, str]] = []
        bar = tqdm(chosen, desc="decoding images", unit="img", leave=False,
                   disable=not show, file=sys.stderr)
        for k, name in enumerate(bar):
            try:
                images[k] = decode_image(p / name, image_size, c)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
                bad.append((name, type(e).__name__))
        if bad:
            raise DataError(_bad_line(p, bad, len(chosen)))
        obj = {"format": CACHE_FORMAT, "key": key, "images": torch.from_numpy(images),
               "labels": None if labels is None else torch.from_numpy(labels[idx]),
               "class_names": list(class_names), "files": chosen}
        if use_cache:
            try:
                atomic_torch_save(obj, cpath)
            except Exception as e:  # noqa: BLE001  (a read-only cache costs time, not results)
                print(f"warning: could not write the image cache {cpath} ({type(e).__name__}); "
                      "the next load decodes the images again", file=sys.stderr)
    return ImageFolder(
        images=obj["images"], labels=obj["labels"], class_names=tuple(obj["class_names"]),
        files=list(obj["files"]),
        source={"dataset": "folder", "dir": str(p), "kind": "folder", "image_size": image_size,
                "channels": c, "channels_from": "data.channels" if channels else "auto",
                "limit": limit, "n": len(obj["files"]), "class_names": list(obj["class_names"]),
                "cache": str(cpath) if use_cache else None, "from_cache": cached},
    )


def _load_array(p: Path, image_size: int, channels: int, limit: int | None) -> ImageFolder:
    raw, labels, class_names = _read_array(p)
    layout, _ = _layout(p, tuple(raw.shape))
    a = to_uint8(raw, p)
    a = {"nhw": lambda x: x[:, None], "nchw": lambda x: x,
         "nhwc": lambda x: x.transpose(0, 3, 1, 2)}[layout](a)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (a.shape[0],) or labels.dtype.kind not in "iu" or labels.min() < 0:
            raise DataError(f"{p}: 'labels' must be {a.shape[0]} non-negative integers, one per "
                            f"image (got shape {labels.shape}, {labels.dtype})")
        labels = labels.astype(np.int64)
        if not class_names:
            class_names = tuple(str(i) for i in range(int(labels.max()) + 1))
        elif len(class_names) <= int(labels.max()):
            raise DataError(f"{p}: 'class_names' names {len(class_names)} classes but a label "
                            f"is {int(labels.max())}")
    idx = _selection(a.shape[0], limit)
    a = _square_resize(np.ascontiguousarray(_convert_channels(a[idx], channels)), image_size)
    return ImageFolder(
        images=torch.from_numpy(np.ascontiguousarray(a)),
        labels=None if labels is None else torch.from_numpy(labels[idx]),
        class_names=tuple(class_names), files=[f"{p.name}[{i}]" for i in idx],
        source={"dataset": "folder", "dir": str(p), "kind": p.suffix.lower()[1:],
                "image_size": image_size, "channels": channels, "limit": limit,
                "n": int(len(idx)), "class_names": list(class_names), "cache": None,
                "from_cache": False})


__all__ = ["ImageFolder", "folder_channels", "load_folder", "locate", "own_size"]
