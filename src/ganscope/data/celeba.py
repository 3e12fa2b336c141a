"""CelebA from its own folder layout: locate, check, centre-crop, resize once, cache.

The folder (``--data-dir`` / ``data.dir``, else ``$GANSCOPE_CELEBA``; CelebA has no reliable
public direct download, so nothing is fetched) holds what the CelebA download calls
"Align&Cropped" images and its annotation files::

    DIR/img_align_celeba/000001.jpg ...    178x218 RGB JPEGs (or any size: a half-size copy works)
    DIR/list_attr_celeba.txt               line 1: image count; line 2: the 40 attribute names;
                                           then "000001.jpg -1  1  1 ..." (1 = has it, -1 = not)
    DIR/list_eval_partition.txt            optional: "000001.jpg 0" (0 train, 1 valid, 2 test)

Each image is cut to a centred square whose side is ``crop`` times the image width (0.8 by
default: the face, some hair, little background), resized to ``image_size`` (PIL bicubic with
antialiasing) and kept as uint8 (N, 3, S, S). The result is cached once under
``cache_root()/celeba/`` in one file keyed by the source folder, the attribute file's SHA-256,
its image count, the size, crop, split, limit and partition file; later loads read only that
file. A damaged cache is reported with one warning line and rebuilt.

Splits: with ``list_eval_partition.txt``, ``train`` / ``valid`` / ``test`` are the official
partitions and ``all`` is every image; without it ``train`` and ``all`` are every image and
``valid`` / ``test`` are an error (there is nothing to hold out by).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ganscope.data.cache import read_image_cache
from ganscope.errors import DataError
from ganscope.io import atomic_torch_save
from ganscope.paths import cache_root

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
ENV_VAR = "GANSCOPE_CELEBA"
SPLITS = ("train", "valid", "test", "all")
PARTITION_CODES = {"train": 0, "valid": 1, "test": 2}
CACHE_FORMAT = "ganscope-celeba-cache-v1"
PROGRESS_MIN = 300  # images to decode before a progress bar is worth showing

# The official order of CelebA's 40 attributes (line 2 of list_attr_celeba.txt).
ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)

GET_IT = (f"download CelebA's Align&Cropped images ({IMAGE_DIR}/) and {ATTR_FILE} from "
          "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into one folder, then pass "
          f"--data-dir DIR or set {ENV_VAR}=DIR")
REPLACE = "replace it with the original file from the CelebA download"


@dataclass
class CelebA:
    """Images and attributes in memory, in attribute-file order."""

    images: torch.Tensor  # uint8 (N, 3, S, S)
    attributes: torch.Tensor  # uint8 (N, A): 1 = the image has the attribute, 0 = not
    attribute_names: tuple[str, ...]
    files: list[str]  # image file names, e.g. "000001.jpg"
    split: str
    source: dict = field(default_factory=dict)  # provenance: dir, attr sha256, options, cache

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def attribute(self, name: str) -> torch.Tensor:
        """One attribute as a bool (N,) tensor; DataError naming the valid ones if unknown."""
        if name not in self.attribute_names:
            raise DataError(f"unknown CelebA attribute {name!r}: choose one of "
                            f"{', '.join(self.attribute_names)}")
        return self.attributes[:, self.attribute_names.index(name)].bool()


@dataclass
class AttributeFile:
    files: list[str]
    names: tuple[str, ...]
    values: np.ndarray  # int8 (N, A) in {-1, 1}
    lines: list[int]  # the line number of each image's row (for error messages)
    sha256: str


def cache_dir() -> Path:
    return cache_root() / "celeba"


def locate(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The CelebA folder and where it came from: ``--data-dir``, else ``$GANSCOPE_CELEBA``."""
    if data_dir:
        d, origin = Path(data_dir), "--data-dir"
    elif os.environ.get(ENV_VAR):
        d, origin = Path(os.environ[ENV_VAR]), ENV_VAR
    else:
        raise DataError(f"CelebA not found (no --data-dir and no ${ENV_VAR}): {GET_IT}")
    if not d.is_dir():
        raise DataError(f"CelebA folder {d} (from {origin}) does not exist: {GET_IT}")
    if not (d / ATTR_FILE).is_file():
        raise DataError(f"CelebA attribute file {d / ATTR_FILE} is missing: put the CelebA "
                        f"download's {ATTR_FILE} (folder Anno/) next to {IMAGE_DIR}/")
    if not (d / IMAGE_DIR).is_dir():
        raise DataError(f"CelebA image folder {d / IMAGE_DIR} is missing: unpack the CelebA "
                        f"download's img_align_celeba.zip into {d}")
    return d.resolve(), origin


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_attributes(path: str | os.PathLike) -> AttributeFile:
    """Parse ``list_attr_celeba.txt``; DataError with the line for anything malformed."""
    path = Path(path)
    bad = f"corrupt CelebA attribute file {path}"
    try:
        raw = path.read_bytes()
        text = raw.decode("ascii")
    except OSError as e:
        raise DataError(f"cannot read CelebA attribute file {path} ({e.strerror}); {REPLACE}"
                        ) from None
    except UnicodeDecodeError:
        raise DataError(f"{bad}: not a text file; {REPLACE}") from None
    lines = text.splitlines()
    if len(lines) < 2:
        raise DataError(f"{bad}: fewer than 2 lines (count, attribute names); {REPLACE}")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DataError(f"{bad}: line 1 is {lines[0].strip()[:30]!r}, expected the image count; "
                        f"{REPLACE}") from None
    names = tuple(lines[1].split())
    if not names:
        raise DataError(f"{bad}: line 2 holds no attribute names; {REPLACE}")
    rows = [(i + 3, ln) for i, ln in enumerate(lines[2:]) if ln.strip()]
    if len(rows) != count:
        raise DataError(f"{bad}: line 1 says {count} images but {len(rows)} rows follow; "
                        f"{REPLACE}")
    files: list[str] = []
    values = np.empty((count, len(names)), dtype=np.int8)
    for k, (lineno, ln) in enumerate(rows):
        parts = ln.split()
        if len(parts) != len(names) + 1:
            raise DataError(f"{bad}: line {lineno} has {len(parts) - 1} values, expected "
                            f"{len(names)}; {REPLACE}")
        for j, v in enumerate(parts[1:]):
            if v not in ("1", "-1"):
                raise DataError(f"{bad}: line {lineno}: value {v[:10]!r} for {names[j]}, "
                                f"expected 1 or -1; {REPLACE}")
        files.append(parts[0])
        values[k] = [int(v) for v in parts[1:]]
    return AttributeFile(files, names, values, [ln for ln, _ in rows],
                         hashlib.sha256(raw).hexdigest())


def read_partition(path: str | os.PathLike, files: list[str]) -> np.ndarray:
    """The partition code (0 train, 1 valid, 2 test) of each of ``files``."""
    path = Path(path)
    bad = f"corrupt CelebA partition file {path}"
    try:
        text = path.read_text(encoding="ascii")
    except OSError as e:
        raise DataError(f"cannot read CelebA partition file {path} ({e.strerror}); {REPLACE}"
                        ) from None
    except UnicodeDecodeError:
        raise DataError(f"{bad}: not a text file; {REPLACE}") from None
    codes: dict[str, int] = {}
    for lineno, ln in enumerate(text.splitlines(), 1):
        if not ln.strip():
            continue
        parts = ln.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{bad}: line {lineno} is {ln.strip()[:40]!r}, expected "
                            f"'NAME.jpg 0|1|2'; {REPLACE}")
        codes[parts[0]] = int(parts[1])
    missing = [f for f in files if f not in codes]
    if missing:
        raise DataError(f"{bad}: no partition for {len(missing)} images of {ATTR_FILE} "
                        f"(first: {missing[0]}); {REPLACE}")
    return np.array([codes[f] for f in files], dtype=np.int8)


def crop_box(width: int, height: int, crop: float) -> tuple[float, float, float, float]:
    """The centred square (left, top, right, bottom) whose side is ``crop`` x the width."""
    side = crop * width
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def decode_image(path: str | os.PathLike, image_size: int, crop: float) -> np.ndarray:
    """One image: centre-crop, resize to ``image_size``; uint8 (3, S, S). DataError if corrupt."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            side = crop * w
            # A JPEG can be decoded at 1/2, 1/4, 1/8 scale (much faster) while the crop is
            # still at least image_size: a full-size 178x218 image then decodes at 89x109.
            scale = max(1.0, side / image_size)
            img.draft("RGB", (int(w / scale), int(h / scale)))
            rgb = img.convert("RGB")
            box = crop_box(rgb.width, rgb.height, crop)
            out = rgb.resize((image_size, image_size), Image.BICUBIC, box=box)
    except FileNotFoundError:
        raise DataError(f"CelebA image {path} is missing: put the whole {IMAGE_DIR}/ folder "
                        f"there, or load fewer images with data.limit") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"corrupt CelebA image {path}: PIL cannot decode it "
                        f"({type(e).__name__}); {REPLACE}") from None
    return np.asarray(out, dtype=np.uint8).transpose(2, 0, 1)


def cache_key(d: Path, attrs: AttributeFile, image_size: int, crop: float, split: str,
              limit: int | None, partition_sha256: str | None) -> str:
    spec = {"format": CACHE_FORMAT, "dir": str(d), "attr_sha256": attrs.sha256,
            "n_images": len(attrs.files), "image_size": image_size, "crop": float(crop),
            "split": split, "limit": limit, "partition_sha256": partition_sha256}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def load_celeba(data_dir: str | os.PathLike | None = None, split: str = "train",
                image_size: int = 64, crop: float = 0.8, limit: int | None = None,
                progress: bool | None = None, use_cache: bool = True) -> CelebA:
    """CelebA as uint8 (N, 3, image_size, image_size) images plus 0/1 attributes.

    ``limit`` keeps the first N images of the split; ``progress`` None shows a bar only on a
    terminal and only for more than a few hundred images to decode. Raises DataError (one line,
    what is wrong and how to fix it) for a missing folder or file and for corrupt files.
    """
    if split not in SPLITS:
        raise DataError(f"unknown CelebA split {split!r}: use train, valid, test or all")
    if not 8 <= image_size <= 512:
        raise DataError(f"CelebA image_size {image_size} is out of range: use 32 or 64")
    if not 0 < crop <= 1:
        raise DataError(f"CelebA crop {crop} is out of range: use a fraction of the image "
                        "width in (0, 1], e.g. 0.8")
    if limit is not None and limit < 1:
        raise DataError(f"CelebA limit {limit} must be at least 1")
    d, origin = locate(data_dir)
    attrs = read_attributes(d / ATTR_FILE)
    part_path = d / PARTITION_FILE
    partition_sha = None
    idx = np.arange(len(attrs.files))
    if split in PARTITION_CODES and part_path.is_file():
        partition_sha = _sha256(part_path)
        codes = read_partition(part_path, attrs.files)
        idx = np.flatnonzero(codes == PARTITION_CODES[split])
    elif split in ("valid", "test"):
        raise DataError(f"CelebA split '{split}' needs {PARTITION_FILE} in {d} (the CelebA "
                        f"download's Eval/ folder); without it use data.split=train (all images)")
    if limit is not None:
        idx = idx[:limit]
    if len(idx) == 0:
        raise DataError(f"CelebA split '{split}' in {d} holds no images: check {PARTITION_FILE}")

    key = cache_key(d, attrs, image_size, crop, split, limit, partition_sha)
    cpath = cache_dir() / f"{key[:24]}.pt"
    obj = (read_image_cache(cpath, CACHE_FORMAT, key, what="CelebA cache", source="JPEGs",
                            per_image=("attributes",)) if use_cache else None)
    cached = obj is not None
    if obj is None:
        files = [attrs.files[i] for i in idx]
        paths = [d / IMAGE_DIR / f for f in files]
        for i, p in zip(idx, paths):  # all present before a long decode starts
            if not p.is_file():
                raise DataError(f"CelebA image {p} is missing (listed on line {attrs.lines[i]} "
                                f"of {ATTR_FILE}): put the whole {IMAGE_DIR}/ folder there, "
                                "or load fewer images with data.limit")
        images = np.empty((len(paths), 3, image_size, image_size), dtype=np.uint8)

        show = (len(paths) > PROGRESS_MIN) if progress is None else progress
        bar = tqdm(paths, desc="decoding CelebA", unit="img", leave=False,
                   disable=None if show else True, file=sys.stderr)
        for k, p in enumerate(bar):
            images[k] = decode_image(p, image_size, crop)
        obj = {"format": CACHE_FORMAT, "key": key, "images": torch.from_numpy(images),
               "attributes": torch.from_numpy((attrs.values[idx] > 0).astype(np.uint8)),
               "attribute_names": list(attrs.names), "files": files}
        if use_cache:
            try:
                atomic_torch_save(obj, cpath)
            except OSError as e:  # a read-only cache costs time, not correctness
                print(f"warning: could not write the CelebA cache {cpath} ({e.strerror}); "
                      "the next load decodes the JPEGs again", file=sys.stderr)
    return CelebA(
        images=obj["images"], attributes=obj["attributes"],
        attribute_names=tuple(obj["attribute_names"]), files=list(obj["files"]), split=split,
        source={"dataset": "celeba", "dir": str(d), "found_by": origin,
                "attr_sha256": attrs.sha256, "partition": PARTITION_FILE if partition_sha else None,
                "split": split, "image_size": image_size, "crop": float(crop), "limit": limit,
                "n": len(obj["files"]), "cache": str(cpath) if use_cache else None,
                "from_cache": cached},
    )
