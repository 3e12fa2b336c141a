"""Fashion-MNIST from its four original IDX ``.gz`` files: locate, verify, download, load.

Search order (the first folder holding the split's two files wins): ``--data-dir`` / ``data.dir``,
``$GANSCOPE_DATA``, the user cache dir, Debian's ``/usr/share/datasets/fashion-mnist``, then the
official download into the cache, checked against the official MD5s before it is kept.

Every file is verified on load: gzip integrity, IDX magic number, header shape, byte count, and
labels in 0..9. Files that match the official checksums (the ``.gz`` MD5s, or the SHA-256 of the
decompressed IDX payload — Debian re-compresses the same bytes) are recorded as verified
originals; other well-formed files (a user's own slice, a test fixture) load with
``verified=False`` in their provenance.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ganscope.data import to_unit_range
from ganscope.errors import DataError
from ganscope.paths import cache_root

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
SIZES = {"train": 60000, "test": 10000}

# The MD5s published with the dataset (zalandoresearch/fashion-mnist README) for the .gz files.
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
# SHA-256 of the decompressed IDX bytes (gzip headers differ between re-compressions; the
# payload does not). Measured on Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1.
OFFICIAL_PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEFAULT_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801


def cache_dir() -> Path:
    return cache_root() / "fashion-mnist"


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The folders searched, in order, with where each came from."""
    out: list[tuple[str, Path]] = []
    if data_dir:
        out.append(("--data-dir", Path(data_dir)))
    if os.environ.get("GANSCOPE_DATA"):
        out.append(("GANSCOPE_DATA", Path(os.environ["GANSCOPE_DATA"])))
    out.append(("cache", cache_dir()))
    out.append(("debian", DEBIAN_DIR))
    return out


def _has_split(d: Path, split: str) -> bool:
    return all((d / FILES[(split, kind)]).is_file() for kind in ("images", "labels"))


@dataclass
class FashionMNIST:
    """One split in memory: uint8 images (N, 28, 28) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    split: str
    source: dict = field(default_factory=dict)  # provenance: dir, how it was found, checksums

    def __len__(self) -> int:
        return self.images.shape[0]

    def as_float(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """(N, 1, 28, 28) float32 in [-1, 1], scaled once for the whole split."""
        return to_unit_range(self.images.unsqueeze(1), device)


def locate(split: str = "train", data_dir: str | os.PathLike | None = None,
           download: bool = True) -> tuple[Path, str]:
    """Find (or download) the folder holding ``split``'s two files; return it and its origin."""
    explicit = Path(data_dir) if data_dir else None
    if explicit is not None:
        # An explicit folder is a promise: looking elsewhere would hide the user's mistake.
        if _has_split(explicit, split):
            return explicit, "--data-dir"
        missing = [FILES[(split, k)] for k in ("images", "labels")
                   if not (explicit / FILES[(split, k)]).is_file()]
        raise DataError(
            f"Fashion-MNIST {split} files missing in {explicit}: {', '.join(missing)}; "
            "put the original .gz files there or drop --data-dir to search the usual places"
        )
    for origin, d in candidate_dirs(None):
        if _has_split(d, split):
            return d, origin
    if not download:
        raise DataError(
            f"Fashion-MNIST not found in {', '.join(str(d) for _, d in candidate_dirs(None))}: "
            "pass --data-dir DIR with the four .gz files, or `apt-get install dataset-fashion-mnist`"
        )
    d = cache_dir()
    for kind in ("images", "labels"):
        download_file(FILES[(split, kind)], d)
    return d, "download"


def _download_error(url: str, reason: object) -> DataError:
    return DataError(
        f"could not download {url} ({reason}); put the four Fashion-MNIST .gz files "
        "in a folder and pass --data-dir, or `apt-get install dataset-fashion-mnist`"
    )


def download_file(name: str, dest_dir: Path, base_url: str | None = None) -> Path:
    """Download one official file into ``dest_dir``, keeping it only if its MD5 matches."""
    base = base_url or os.environ.get("GANSCOPE_FASHION_MNIST_URL") or DEFAULT_URL
    url = base.rstrip("/") + "/" + name
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest_dir)
    md5 = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=30)
            except (urllib.error.URLError, OSError) as e:
                raise _download_error(url, getattr(e, "reason", None) or e) from None
            with resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False) as bar:
                    while True:
                        try:  # the connection can also fail mid-transfer (reset, timeout)
                            chunk = resp.read(1 << 16)
                        except (OSError, http.client.HTTPException) as e:
                            raise _download_error(url, e) from None
                        if not chunk:
                            break
                        out.write(chunk)
                        md5.update(chunk)
                        bar.update(len(chunk))
        expected = OFFICIAL_MD5.get(name)
        if expected and md5.hexdigest() != expected:
            raise DataError(
                f"downloaded {name} has MD5 {md5.hexdigest()}, expected {expected}: the download "
                "was corrupted or the server changed; try again, or pass --data-dir"
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _read_gz(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"corrupt Fashion-MNIST file {path}: not a readable gzip file ({e}); "
            "replace it with the original .gz file"
        ) from None


def parse_idx(raw: bytes, path: Path, kind: str) -> np.ndarray:
    """Parse IDX bytes (images: magic 2051, N x 28 x 28; labels: magic 2049, N)."""
    magic = IMAGE_MAGIC if kind == "images" else LABEL_MAGIC
    hdr = 16 if kind == "images" else 8
    fix = "replace it with the original .gz file"
    if len(raw) < hdr:
        raise DataError(f"corrupt Fashion-MNIST file {path}: truncated header; {fix}")
    got = struct.unpack(">I", raw[:4])[0]
    if got != magic:
        raise DataError(
            f"corrupt Fashion-MNIST file {path}: magic number 0x{got:08x}, expected "
            f"0x{magic:08x} ({kind}); {fix}"
        )
    if kind == "images":
        n, rows, cols = struct.unpack(">III", raw[4:16])
        if (rows, cols) != (28, 28):
            raise DataError(
                f"corrupt Fashion-MNIST file {path}: images are {rows}x{cols}, expected 28x28; {fix}"
            )
        shape: tuple[int, ...] = (n, 28, 28)
    else:
        (n,) = struct.unpack(">I", raw[4:8])
        shape = (n,)
    need = hdr + int(np.prod(shape))
    if len(raw) != need:
        raise DataError(
            f"corrupt Fashion-MNIST file {path}: {len(raw) - hdr} data bytes for {n} items, "
            f"expected {need - hdr}; {fix}"
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=hdr).reshape(shape)
    if kind == "labels" and n and int(arr.max()) > 9:
        raise DataError(f"corrupt Fashion-MNIST file {path}: label {int(arr.max())} outside 0..9; {fix}")
    return arr


def _checksum_status(path: Path, raw: bytes) -> str:
    name = path.name
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    if h.hexdigest() == OFFICIAL_MD5.get(name):
        return "official-md5"
    if hashlib.sha256(raw).hexdigest() == OFFICIAL_PAYLOAD_SHA256.get(name):
        return "official-payload-sha256"
    return "unverified"


def load_fashion_mnist(split: str = "train", data_dir: str | os.PathLike | None = None,
                       download: bool = True, limit: int | None = None) -> FashionMNIST:
    """Load one split as tensors; raise DataError with the fix for anything wrong."""
    if split not in SIZES:
        raise DataError(f"unknown Fashion-MNIST split {split!r}: use 'train' or 'test'")
    d, origin = locate(split, data_dir, download)
    arrays, checks = {}, {}
    for kind in ("images", "labels"):
        path = d / FILES[(split, kind)]
        raw = _read_gz(path)
        arrays[kind] = parse_idx(raw, path, kind)
        checks[path.name] = _checksum_status(path, raw)
    images, labels = arrays["images"], arrays["labels"]
    if len(images) != len(labels):
        raise DataError(
            f"Fashion-MNIST {split} files in {d} disagree: {len(images)} images but "
            f"{len(labels)} labels; replace them with the original .gz files"
        )
    verified = all(v != "unverified" for v in checks.values())
    if verified and len(images) != SIZES[split]:  # pragma: no cover - checksums imply the size
        raise DataError(f"Fashion-MNIST {split} in {d} has {len(images)} images, expected {SIZES[split]}")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return FashionMNIST(
        images=torch.from_numpy(images.copy()),
        labels=torch.from_numpy(labels.astype(np.int64)),
        split=split,
        source={"dir": str(d), "found_by": origin, "checksums": checks, "verified": verified,
                "n": int(len(images))},
    )


def write_idx_gz(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write uint8 images (N, 28, 28) or labels (N,) in the original IDX .gz format.

    Used by the tests (tiny synthetic data in the real format) and to save user slices.
    """
    a = np.ascontiguousarray(array, dtype=np.uint8)
    if a.ndim == 3:
        header = struct.pack(">IIII", IMAGE_MAGIC, a.shape[0], a.shape[1], a.shape[2])
    elif a.ndim == 1:
        header = struct.pack(">II", LABEL_MAGIC, a.shape[0])
    else:
        raise ValueError("expected (N, 28, 28) images or (N,) labels")
    with gzip.open(path, "wb") as f:
        f.write(header + a.tobytes())
