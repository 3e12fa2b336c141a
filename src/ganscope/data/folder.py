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

Memory (``data.memory``): ``ram`` holds the decoded uint8 set in memory (and the training loop
its float32 copy, 4 bytes more per value). ``mmap`` is for sets larger than memory: the images
are decoded once, streaming (file i decoded, row i written; a chunk of ``CHUNK`` rows is all
that is held), into a ``.npy`` file under the same cache folder and key, with a JSON sidecar
(format, key, shape, files, labels, class names, ``complete``); both are written to temporary
names, fsynced and renamed, the ``.npy`` first and the sidecar last, so a killed build leaves no
sidecar and is rebuilt (its temporary files are swept when their process is gone). Loading maps
the file copy-on-write and returns ``mapped=True``: training gathers each batch's rows from the
file and converts just them. An array input is streamed into such a cache too, keyed by its
path, size and mtime (a ``.npy`` is read through a read-only map; an ``.npz`` member cannot be
mapped, so it is read whole while the cache is built: use ``.npy`` or a folder for sets larger
than memory). ``data.limit`` works on both paths: the cache holds just the chosen images.
``auto`` (the default) reuses a complete mmap cache of the same key when there is one, else
picks ``mmap`` when the decoded set (N*C*S*S bytes, known from the listing before decoding)
exceeds :func:`mmap_threshold`: ``AUTO_FRACTION`` (10 %) of the memory available now (Linux
``MemAvailable``, else ``SC_AVPHYS_PAGES * SC_PAGE_SIZE``), or ``FALLBACK_THRESHOLD`` (1 GiB)
when neither is known. 10 %, not more, because the in-memory path holds the set 5 times over
(uint8 plus the float32 training copy): at the threshold that is half the available memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ganscope.data.cache import read_image_cache
from ganscope.errors import DataError
from ganscope.io import atomic_torch_save, atomic_write_text, file_mode, unlink_quietly
from ganscope.paths import cache_root

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".npz")
CACHE_FORMAT = "ganscope-folder-cache-v1"
MMAP_FORMAT = "ganscope-folder-mmap-v1"  # the sidecar of a memory-mapped cache
MEMORY_MODES = ("auto", "ram", "mmap")
AUTO_FRACTION = 0.10  # auto: mmap when the decoded set exceeds this part of available memory
FALLBACK_THRESHOLD = 1 << 30  # auto's threshold when the available memory is unknown
CHUNK = 256  # rows decoded (or converted) before they are written to a mapped cache
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
    mapped: bool = False  # images are a copy-on-write map of a cache file (data.memory mmap)

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
    return _apply_rule(a, _uint8_rule(a.dtype, [a], path))


def _uint8_rule(dtype: np.dtype, chunks, path: Path) -> str:
    """How :func:`to_uint8` converts values of ``dtype`` whose chunks (together the whole
    array) are ``chunks``: 'uint8', 'int', 'unit' ([0, 1]) or 'tanh' ([-1, 1]); one DataError
    line otherwise. Chunked, so a mapped array is checked without reading it whole."""
    if dtype == np.uint8:
        return "uint8"
    if dtype.kind not in "iuf":  # not np.issubdtype(.., np.integer): timedelta64 is one too
        raise DataError(f"{path} holds {dtype} values: expected uint8 or float images")
    lo, hi, finite = np.inf, -np.inf, True
    for c in chunks:
        if c.size == 0:
            continue
        finite = finite and (dtype.kind != "f" or bool(np.isfinite(c).all()))
        if finite:
            lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
    if dtype.kind in "iu":
        if lo < 0 or hi > 255:
            raise DataError(f"{path} holds integers outside 0..255: scale them to uint8 images")
        return "int"
    if not finite:
        raise DataError(f"{path} holds non-finite values (nan or inf): fix the images first")
    if lo >= 0.0 and hi <= 1.0:
        return "unit"
    if lo >= -1.0 and hi <= 1.0:  # a generator's tanh output
        return "tanh"
    raise DataError(f"{path} holds floats in [{lo:.3g}, {hi:.3g}]: float images must lie "
                    "in [0, 1] (or [-1, 1] for tanh output)")


def _apply_rule(a: np.ndarray, rule: str) -> np.ndarray:
    """Values to uint8 by :func:`_uint8_rule`'s answer; elementwise, so chunks give the same."""
    if rule == "uint8":
        return np.ascontiguousarray(a)
    if rule == "int":
        return a.astype(np.uint8)
    x = a.astype(np.float64) * 255.0 if rule == "unit" else (a.astype(np.float64) + 1.0) * 127.5
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
                use_cache: bool = True, memory: str = "auto") -> ImageFolder:
    """The images of ``data.dir`` as uint8 (N, C, S, S) plus labels; DataError (one line) for a
    missing, empty or mixed folder, a bad array and for unreadable files. ``memory``: ram,
    mmap or auto (see the module doc); ``mapped`` in the result says which it became.
    ``use_cache=False`` reads no cache (and writes no ``.pt``); mmap still needs its file, so
    it is rebuilt."""
    if not 8 <= image_size <= 512:
        raise DataError(f"image folder image_size {image_size} is out of range: use 8..512")
    if channels not in (0, 1, 3):
        raise DataError(f"data.channels {channels} must be 1 (grey), 3 (RGB) or 0 (auto)")
    if memory not in MEMORY_MODES:
        raise DataError(f"data.memory {memory!r} must be auto, ram or mmap")
    p = locate(data_dir)
    c = folder_channels(p, channels)
    if p.is_file():
        return _load_array(p, image_size, c, limit, memory, progress, use_cache)
    listing = list_images(p)
    files = [f for f, _, _ in listing]
    class_names, labels = classes_of(files, p)
    idx = _selection(len(files), limit)
    spec = {"format": CACHE_FORMAT, "listing": listing_key(p, listing), "image_size": image_size,
            "channels": c, "limit": limit}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    source = {"dataset": "folder", "dir": str(p), "kind": "folder", "image_size": image_size,
              "channels": c, "channels_from": "data.channels" if channels else "auto",
              "limit": limit}
    chosen = [files[i] for i in idx]
    show = (len(chosen) > PROGRESS_MIN) if progress is None else progress
    shape = (len(chosen), c, image_size, image_size)
    if _use_mmap(memory, shape, key, use_cache):
        return _mapped(key, source, lambda: _decoded_chunks(p, chosen, image_size, c, show),
                       shape, chosen, None if labels is None else labels[idx], class_names,
                       use_cache)
    cpath = cache_dir() / f"{key[:24]}.pt"
    obj = (read_image_cache(cpath, CACHE_FORMAT, key, what="image cache", source="files")
           if use_cache else None)
    cached = obj is not None
    if obj is None:
        images = np.empty(shape, dtype=np.uint8)
        k = 0
        for rows in _decoded_chunks(p, chosen, image_size, c, show):
            images[k:k + len(rows)] = rows
            k += len(rows)
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
        source={**source, "n": len(obj["files"]), "class_names": list(obj["class_names"]),
                "memory": "ram", "cache": str(cpath) if use_cache else None,
                "from_cache": cached},
    )


def _decoded_chunks(p: Path, chosen: list[str], image_size: int, c: int, show: bool
                    ) -> Iterator[np.ndarray]:
    """The files ``chosen`` decoded in order, ``CHUNK`` rows at a time (one reused buffer);
    after the last, one DataError line naming the files that could not be read."""
    buf = np.zeros((min(CHUNK, max(1, len(chosen))), c, image_size, image_size), dtype=np.uint8)
    bad: list[tuple[str, str]] = []
    k = 0
    bar = tqdm(chosen, desc="decoding images", unit="img", leave=False,
               disable=not show, file=sys.stderr)
    for name in bar:
        try:
            buf[k] = decode_image(p / name, image_size, c)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            bad.append((name, type(e).__name__))
        k += 1
        if k == len(buf):
            yield buf
            k = 0
    if k:
        yield buf[:k]
    if bad:
        raise DataError(_bad_line(p, bad, len(chosen)))


# --- memory-mapped caches ------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes of memory available now: Linux's ``MemAvailable`` (free plus reclaimable page
    cache), else ``SC_AVPHYS_PAGES * SC_PAGE_SIZE`` (free pages only); None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        n = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(n) if n > 0 else None
    except (ValueError, OSError, AttributeError):
        return None


def mmap_threshold() -> int:
    """The decoded size (bytes) above which ``data.memory: auto`` maps the set from a file."""
    avail = available_memory()
    return int(avail * AUTO_FRACTION) if avail else FALLBACK_THRESHOLD


def _mmap_paths(key: str) -> tuple[Path, Path]:
    return cache_dir() / f"{key[:24]}.npy", cache_dir() / f"{key[:24]}.mmap.json"


def _use_mmap(memory: str, shape: tuple[int, ...], key: str, use_cache: bool) -> bool:
    if memory != "auto":
        return memory == "mmap"
    if use_cache and _mmap_paths(key)[1].is_file():  # built before: reuse, do not decode again
        return True
    return int(np.prod(shape)) > mmap_threshold()


def _read_mapped(key: str) -> tuple[dict, np.memmap] | None:
    """The complete mapped cache of ``key`` (sidecar and array), or None: when there is none,
    or, with one warning line, when it is damaged, stale or a killed build's leftover."""
    npy, side = _mmap_paths(key)
    if not side.is_file() and not npy.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
        if (not isinstance(meta, dict) or meta.get("format") != MMAP_FORMAT
                or meta.get("key") != key or meta.get("complete") is not True):
            raise ValueError("not this cache's format or key, or not complete")
        if npy.stat().st_size != meta["nbytes"]:
            raise ValueError("the array file's size does not match")
        # copy-on-write ("c"), not read-only ("r"): torch.from_numpy warns on a non-writable
        # array (writing to it would be undefined behaviour); a "c" map is writable but a write
        # lands in a private copy of that page, never in the file
        a = np.load(npy, mmap_mode="c", allow_pickle=False)
        n = len(meta["files"])
        labels = meta["labels"]
        if (not isinstance(a, np.memmap) or a.dtype != np.uint8 or a.ndim != 4
                or list(a.shape) != meta["shape"] or a.shape[0] != n
                or (labels is not None and len(labels) != n)):
            raise ValueError("array shapes do not match")
        return meta, a
    except Exception as e:  # noqa: BLE001  (a cache is disposable: any failure means rebuild)
        print(f"warning: ignoring damaged memory-mapped image cache {npy} ({type(e).__name__}); "
              "rebuilding it from the images", file=sys.stderr)
        return None


def _sweep_stale(npy: Path) -> None:
    """Remove this cache's temporary files left by builds whose process is gone (killed)."""
    for t in npy.parent.glob(f".{npy.stem}.*.tmp"):
        try:
            pid = int(t.name.split(".")[-3])
            if pid == os.getpid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            unlink_quietly(str(t))
        except (ValueError, IndexError, OSError):  # not ours to judge, or alive elsewhere
            continue


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_mapped(key: str, shape: tuple[int, ...], chunks: Iterator[np.ndarray], meta: dict
                  ) -> None:
    """Stream ``chunks`` (uint8 rows in order, ``shape[0]`` in all) into the cache of ``key``:
    temporary ``.npy`` (header by ``open_memmap``, rows by plain writes, so only a chunk is
    ever held) and sidecar, fsynced, renamed ``.npy`` first and sidecar last. Anything raised
    (a bad file, a full disk, Ctrl-C) removes the temporary files and leaves no sidecar."""
    npy, side = _mmap_paths(key)
    npy.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(npy)
    tmp_npy = npy.parent / f".{npy.stem}.{os.getpid()}.npy.tmp"
    tmp_side = npy.parent / f".{npy.stem}.{os.getpid()}.json.tmp"
    try:
        head = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=np.uint8, shape=shape)
        offset = head.offset
        del head  # unmapped: rows go in by write(), not through the map (no RSS for them)
        k = 0
        with open(tmp_npy, "r+b") as f:
            f.seek(offset)
            for rows in chunks:
                f.write(np.ascontiguousarray(rows, dtype=np.uint8).data)
                k += len(rows)
            if k != shape[0]:
                raise RuntimeError(f"{k} rows written for {shape[0]} images")
            f.flush()
            os.fsync(f.fileno())
        nbytes = tmp_npy.stat().st_size
        with open(tmp_side, "w") as f:
            json.dump({**meta, "format": MMAP_FORMAT, "key": key, "shape": list(shape),
                       "nbytes": nbytes, "complete": True}, f)
            f.flush()
            os.fsync(f.fileno())
        for t in (tmp_npy, tmp_side):
            os.chmod(t, file_mode())
        os.replace(tmp_npy, npy)
        os.replace(tmp_side, side)  # last: a sidecar means the array before it is complete
        _fsync_dir(npy.parent)
    except BaseException:
        unlink_quietly(str(tmp_npy))
        unlink_quietly(str(tmp_side))
        raise


def _mapped(key: str, source: dict, chunks, shape: tuple[int, ...], files: list[str],
            labels: np.ndarray | None, class_names: tuple[str, ...], use_cache: bool
            ) -> ImageFolder:
    """The mapped cache of ``key``, built first (from ``chunks()``) when there is none."""
    got = _read_mapped(key) if use_cache else None
    cached = got is not None
    if got is None:
        meta = {"files": files, "class_names": list(class_names),
                "labels": None if labels is None else [int(x) for x in labels]}
        _write_mapped(key, shape, chunks(), meta)
        got = _read_mapped(key)
        if got is None:
            raise DataError(f"the memory-mapped image cache {_mmap_paths(key)[0]} could not be "
                            "read back after writing it: check the cache folder's disk")
    meta, a = got
    names = tuple(meta["class_names"])
    return ImageFolder(
        images=torch.from_numpy(a),
        labels=None if meta["labels"] is None else torch.tensor(meta["labels"],
                                                                dtype=torch.int64),
        class_names=names, files=list(meta["files"]), mapped=True,
        source={**source, "n": len(meta["files"]), "class_names": list(names),
                "memory": "mmap", "cache": str(_mmap_paths(key)[0]), "from_cache": cached})


# --- arrays, loaded ------------------------------------------------------------------------------


def _check_labels(p: Path, labels, class_names: tuple[str, ...], n: int
                  ) -> tuple[np.ndarray | None, tuple[str, ...]]:
    if labels is None:
        return None, tuple(class_names)
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.dtype.kind not in "iu" or labels.min() < 0:
        raise DataError(f"{p}: 'labels' must be {n} non-negative integers, one per "
                        f"image (got shape {labels.shape}, {labels.dtype})")
    labels = labels.astype(np.int64)
    if not class_names:
        class_names = tuple(str(i) for i in range(int(labels.max()) + 1))
    elif len(class_names) <= int(labels.max()):
        raise DataError(f"{p}: 'class_names' names {len(class_names)} classes but a label "
                        f"is {int(labels.max())}")
    return labels, tuple(class_names)


_TO_NCHW = {"nhw": lambda x: x[:, None], "nchw": lambda x: x,
            "nhwc": lambda x: x.transpose(0, 3, 1, 2)}


def _load_array(p: Path, image_size: int, channels: int, limit: int | None,
                memory: str = "ram", progress: bool | None = None, use_cache: bool = True
                ) -> ImageFolder:
    shape = array_shape(p)
    layout, _ = _layout(p, shape)
    idx = _selection(shape[0], limit)
    st = p.stat()
    spec = {"format": MMAP_FORMAT, "array": str(p), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "image_size": image_size, "channels": channels,
            "limit": limit}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    source = {"dataset": "folder", "dir": str(p), "kind": p.suffix.lower()[1:],
              "image_size": image_size, "channels": channels, "limit": limit}
    files = [f"{p.name}[{i}]" for i in idx]
    out_shape = (len(idx), channels, image_size, image_size)
    if _use_mmap(memory, out_shape, key, use_cache):
        if p.suffix.lower() == ".npy":
            try:  # a read-only map of the input: rows are read as the chunks need them
                raw = np.load(p, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise DataError(f"cannot read {p} as a .npy array ({type(e).__name__}): "
                                "save the images with numpy.save / numpy.savez") from None
            labels, class_names = None, ()
        else:  # a zip member cannot be mapped: read whole while the cache is built
            raw, labels, class_names = _read_array(p)
        labels, class_names = _check_labels(p, labels, class_names, shape[0])
        show = (len(idx) > PROGRESS_MIN) if progress is None else progress

        def chunks() -> Iterator[np.ndarray]:
            rule = _uint8_rule(raw.dtype, (raw[i:i + CHUNK * 16]
                                           for i in range(0, raw.shape[0], CHUNK * 16)), p)
            bar = tqdm(total=len(idx), desc="caching images", unit="img", leave=False,
                       disable=not show, file=sys.stderr)
            with bar:
                for i in range(0, len(idx), CHUNK):
                    rows = _TO_NCHW[layout](_apply_rule(raw[idx[i:i + CHUNK]], rule))
                    yield _square_resize(np.ascontiguousarray(_convert_channels(rows, channels)),
                                         image_size)
                    bar.update(len(rows))

        return _mapped(key, source, chunks, out_shape, files,
                       None if labels is None else labels[idx], class_names, use_cache)
    raw, labels, class_names = _read_array(p)
    a = _TO_NCHW[layout](to_uint8(raw, p))
    labels, class_names = _check_labels(p, labels, class_names, a.shape[0])
    if len(idx) < a.shape[0]:  # no copy of the whole set when every image is kept
        a = a[idx]
    a = _square_resize(np.ascontiguousarray(_convert_channels(a, channels)), image_size)
    return ImageFolder(
        images=torch.from_numpy(np.ascontiguousarray(a)),
        labels=None if labels is None else torch.from_numpy(labels[idx]),
        class_names=class_names, files=files,
        source={**source, "n": int(len(idx)), "class_names": list(class_names),
                "memory": "ram", "cache": None, "from_cache": False})


__all__ = ["ImageFolder", "available_memory", "folder_channels", "load_folder", "locate",
           "mmap_threshold", "own_size"]
