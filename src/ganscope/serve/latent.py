"""The latent explorer: a seed's z, shifted along chosen dims and found directions, as a PNG.

The image comes from the same functions as ``ganscope generate`` (``load_generator``,
``latents_from_seed``, ``generate_images``). A slider move must come back well under 100 ms on
a CPU, so loaded generators are kept in a small LRU keyed by run, epoch and the checkpoint's
mtime and size (a rewritten checkpoint is loaded again), and the reply is the raw 28x28 PNG:
the browser scales it up with ``image-rendering: pixelated``.

Bounds: at most :data:`MAX_TERMS` dims and :data:`MAX_DIRECTIONS` directions per request,
|shift| <= :data:`MAX_SHIFT`, seeds in [0, 2**31 - 1], at most :data:`MAX_SAMPLES` images.

Conditional and InfoGAN runs read their class (categorical code) off z's first number
(``ganscope.models.conditional``). ``class=K`` sets ``z[:, 0]`` to the middle of class K's
interval, exactly as ``ganscope generate --class K`` does (``class_latents``), before the dim
shifts and directions move z (so a shift of dim 0 leaves the class, as asked); ``class=all``
gives one row of the ``n`` images per class, the rows differing in the class alone. The class
changes z, not G: the generator cache is keyed by checkpoint only, and the class is part of the
image's URL (what the browser caches by).
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganscope.config import RunConfig
from ganscope.directions.store import list_directions
from ganscope.domains import class_domain, domain_for
from ganscope.errors import ConfigError, RunError, UserError
from ganscope.latent.conditional import class_latents
from ganscope.latent.probe import load_probe
from ganscope.sampling import generate_images, latents_from_seed
from ganscope.serve.common import ApiError
from ganscope.training.run import Run, load_generator

MAX_SHIFT = 10.0
MAX_TERMS = 32
MAX_DIRECTIONS = 16
MAX_SEED = 2**31 - 1
MAX_SAMPLES = 16
MAX_EPOCH = 10**6
CACHE_SIZE = 8
GAP = 2  # pixels between images in a strip
GAP_VALUE = 48


def checkpoint_path(run: Run, epoch: int | None) -> Path:
    """The file ``load_generator(run, epoch)`` reads (for the cache key); the library's
    one-line RunError when there is none."""
    return run.checkpoint_for(epoch)[1]


@dataclass
class Loaded:
    G: nn.Module
    z_dim: int
    checkpoint: str
    cfg: RunConfig | None = None  # the run's config when G was loaded (its classes)


class GeneratorCache:
    """LRU of loaded generators, keyed by (run dir, epoch, checkpoint mtime and size)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.loads = 0

    def get(self, run: Run, epoch: int | None) -> Loaded:
        path = checkpoint_path(run, epoch)
        try:
            st = path.stat()
        except OSError:
            raise ApiError(404, f"checkpoint {path.name} of run '{run.name}' vanished: "
                                "reload the page") from None
        key = (str(run.path), epoch, path.name, st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return hit
        require_images(run)
        cfg = run.config()
        G = load_generator(run, epoch)
        for p in G.parameters():
            p.requires_grad_(False)
        item = Loaded(G, cfg.model.z_dim, path.name, cfg)
        with self._lock:
            self.loads += 1
            self._items[key] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return item

    def info(self) -> dict[str, int]:
        with self._lock:
            return {"size": len(self._items), "capacity": self.size, "hits": self.hits,
                    "loads": self.loads}


def parse_epoch(value: str | None) -> int | None:
    if value is None or value in ("", "last"):
        return None
    try:
        e = int(value)
    except ValueError:
        raise ApiError(400, f"bad epoch {value[:20]!r}: give an epoch number or 'last'") from None
    if not 1 <= e <= MAX_EPOCH:
        raise ApiError(400, f"bad epoch {e}: give an epoch number from the run's list or 'last'")
    return e


def _value(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ApiError(400, f"bad {what} value {text[:20]!r}: give a number") from None
    if not math.isfinite(v) or abs(v) > MAX_SHIFT:
        raise ApiError(400, f"{what} value {text[:20]} is out of range: |value| must be at most "
                            f"{MAX_SHIFT:g}")
    return v


def _pairs(text: str | None, what: str, limit: int) -> list[tuple[str, float]]:
    """``KEY:VALUE,KEY:VALUE`` -> [(key, value)], bounded in count; keys unique."""
    if not text:
        return []
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) > limit:
        raise ApiError(400, f"too many {what}s in one request ({len(parts)}): at most {limit}")
    out, seen = [], set()
    for part in parts:
        key, sep, val = part.strip().partition(":")
        if not sep or not key:
            raise ApiError(400, f"bad {what} {part[:40]!r}: use {what.upper()}:VALUE pairs "
                                "separated by commas, e.g. 20:1.5,50:-3")
        if key in seen:
            raise ApiError(400, f"{what} {key[:40]} is given twice: give each once")
        seen.add(key)
        out.append((key, _value(val, f"{what} {key[:40]}")))
    return out


def parse_shifts(text: str | None, z_dim: int) -> list[tuple[int, float]]:
    """``20:1.5,50:-3``: add 1.5 to z[20] and -3 to z[50]."""
    out = []
    for key, v in _pairs(text, "dim", MAX_TERMS):
        if not key.isdigit() or int(key) >= z_dim:
            raise ApiError(400, f"dim {key[:20]} is out of range: this run's z has {z_dim} dims "
                                f"(0..{z_dim - 1})")
        out.append((int(key), v))
    return out


def parse_directions(text: str | None, run: Run) -> list[tuple[np.ndarray, float]]:
    """``male:2``: move z by 2 along the run's saved unit direction ``male``."""
    pairs = _pairs(text, "direction", MAX_DIRECTIONS)
    if not pairs:
        return []

    have = {d.name: d for d in list_directions(run)}
    out = []
    for name, v in pairs:
        d = have.get(name)
        if d is None:
            names = ", ".join(sorted(have)) or "none"
            raise ApiError(400, f"run '{run.name}' has no direction '{name[:64]}' (has: {names})")
        out.append((d.vector, v))
    return out


def parse_class(value: str | None, run: Run, cfg: RunConfig) -> int | str | None:
    """``class=``: None (z's own class), a class index, or ``"all"``; one-line 400s."""
    if value is None or value == "":
        return None
    m = cfg.model
    if m.conditional == "none":
        raise ApiError(400, f"run '{run.name}' has no classes: class= is for conditional and "
                            "InfoGAN runs (model.conditional)")
    k = m.n_classes
    if value.strip().lower() == "all":
        return "all"
    try:
        c = int(value)
    except ValueError:
        raise ApiError(400, f"bad class {value[:20]!r}: give a class index from 0 to {k - 1} "
                            "or 'all'") from None
    if not 0 <= c < k:
        raise ApiError(400, f"class {c} is out of range: give a class index from 0 to {k - 1} "
                            "or 'all'")
    return c


def latent_batch(seed: int, n: int, z_dim: int, shifts: list[tuple[int, float]],
                 directions: list[tuple[np.ndarray, float]], *, cfg: RunConfig | None = None,
                 cls: int | str | None = None) -> torch.Tensor:
    """The seed's first ``n`` latents (``torch.manual_seed(seed); randn(n, z_dim)``), set to
    class ``cls`` (an index, or ``"all"``: one row of the ``n`` per class; needs the run's
    ``cfg``) as ``generate --class`` does, then moved."""
    z = latents_from_seed(seed, n, z_dim)
    if cls is not None:
        if cfg is None:
            raise ValueError("a class needs the run's config")
        z, _ = class_latents(cfg, z, str(cls))
    for d, v in shifts:
        z[:, d] += v
    for vec, v in directions:
        if vec.shape[0] != z_dim:
            raise ApiError(400, f"a direction has {vec.shape[0]} dims but the run's z has "
                                f"{z_dim}: find it again for this run")
        z += v * torch.from_numpy(vec.astype(np.float32))
    return z


def png_strip(images: np.ndarray, nrow: int | None = None) -> bytes:
    """uint8 (N, H, W) or (N, C, H, W) -> one PNG (no scaling): the images side by side, in
    rows of ``nrow`` (default: one row) with :data:`GAP` pixels between images and rows."""
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1)
        if images.shape[-1] == 1:
            images = images[..., 0]
    n, h, w = images.shape[:3]
    cols = min(nrow or n, n)
    rows = -(-n // cols)
    shape = (rows * h + (rows - 1) * GAP, cols * w + (cols - 1) * GAP, *images.shape[3:])
    strip = np.full(shape, GAP_VALUE, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        strip[r * (h + GAP):r * (h + GAP) + h, c * (w + GAP):c * (w + GAP) + w] = images[i]
    buf = io.BytesIO()
    Image.fromarray(strip).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def require_images(run: Run) -> None:
    if domain_for(run.config().data.name).kind == "points":
        raise ApiError(400, f"run '{run.name}' generates 2-D points, not images: the latent "
                            "explorer is for image runs; watch point runs on their run page or "
                            "in the live 2-D lab")


def latent_image(cache: GeneratorCache, run: Run, *, epoch: int | None, seed: int, n: int,
                 shift: str | None, dirs: str | None,
                 cls: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The PNG for one slider position (``cls``: the ``class=`` parameter), and headers saying
    what it shows."""
    item = cache.get(run, epoch)  # checks the run makes images when it loads the generator
    cfg = item.cfg or run.config()
    c = parse_class(cls, run, cfg)
    shifts = parse_shifts(shift, item.z_dim)
    moves = parse_directions(dirs, run)
    z = latent_batch(seed, n, item.z_dim, shifts, moves, cfg=cfg, cls=c)
    images = generate_images(item.G, z)
    headers = {"X-Checkpoint": item.checkpoint}
    if c is not None:
        headers["X-Class"] = str(c)
    return png_strip(images, nrow=n), headers


def class_names(cfg: RunConfig) -> list[str]:
    """The names of a conditional run's classes (InfoGAN: its categorical codes); [] if none."""
    m = cfg.model
    if m.conditional == "none":
        return []
    k = m.n_classes
    if m.conditional == "infogan":
        return [f"code {i}" for i in range(k)]
    try:
        domain = class_domain()
    except ConfigError:
        domain = None
    if domain is not None and cfg.data.name == domain.name and len(domain.class_names) == k:
        return list(domain.class_names)
    return [f"class {i}" for i in range(k)]


def code_dims(cfg: RunConfig) -> dict[int, str]:
    """The dims of z that are codes, each with what it is; {} for an unconditional run."""
    m = cfg.model
    if m.conditional == "none":
        return {}
    if m.conditional == "infogan":
        out = {0: f"the categorical code ({m.n_classes} values)"}
        out.update({i: f"continuous code {i}" for i in range(1, 1 + m.n_cont)})
        return out
    return {0: "the class"}


def latent_info(run: Run) -> dict[str, Any]:
    """What the explorer needs: z size, checkpoints, directions and the probe's sentences."""
    require_images(run)
    cfg = run.config()
    eps = run.generator_epochs()
    out: dict[str, Any] = {
        "name": run.name, "model": cfg.model.name, "z_dim": cfg.model.z_dim,
        "epochs": eps, "has_last": run.last_checkpoint.is_file(),
        "limits": {"max_shift": MAX_SHIFT, "max_dims": MAX_TERMS,
                   "max_directions": MAX_DIRECTIONS, "max_seed": MAX_SEED,
                   "max_samples": MAX_SAMPLES},
        "directions": [{"name": d.name, "method": d.method, "attribute": d.attribute,
                        "details": d.details} for d in list_directions(run)],
        "probe": None,
        "conditional": None if cfg.model.conditional == "none" else cfg.model.conditional,
        "classes": class_names(cfg),
        "codes": code_dims(cfg),
    }
    if not eps and not out["has_last"]:
        try:
            run.checkpoint_for()  # raises the library's "no checkpoint yet" line
        except RunError as e:
            out["error"] = str(e)
    probe_dir = run.probe_dir
    if (probe_dir / "probe.json").is_file():
        try:
            res = load_probe(probe_dir)
            out["probe"] = {"epoch": res.info.get("epoch"), "n_base": res.info.get("n_base"),
                            "ranked": res.ranked(),
                            "sentences": {str(d): res.sentence(d) for d in res.dims}}
        except UserError as e:
            out["probe_error"] = str(e)
    return out
