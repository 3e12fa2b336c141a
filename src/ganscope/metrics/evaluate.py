"""Evaluation: images -> a domain's extractor's features -> registered metrics, with provenance.

One function, :func:`evaluate_images`, scores a set of generated images against a reference split.
Training (``--eval-every``), ``ganscope eval RUN`` and ``ganscope eval --images`` all end in it, so
their numbers are the same numbers (stylegan2-ada's ``metric_main`` works the same way). What
reads and writes run directories (which checkpoints, metrics.jsonl records, the best epoch) is
:mod:`ganscope.training.evaluation`, above this module. The
reference side is extracted once and cached in the user cache dir, keyed by the extractor's hash
and the exact bytes of the real images used, so a changed file or extractor can never reuse
stale statistics.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

from ganscope.errors import ConfigError
from ganscope.io import atomic_write_bytes
from ganscope.metrics.registry import FeatureSet, compute_metrics
from ganscope.paths import cache_root
from ganscope.sampling import generate_images, latents_from_seed

if TYPE_CHECKING:  # annotations only: config imports the metric registry to check its names
    from ganscope.config import EvalConfig

STATS_FORMAT = "ganscope-real-features-v1"
REFERENCE_SELECTION_SEED = 0  # which real images a subset of a split holds: fixed, so it caches


def stats_cache_dir() -> Path:
    return cache_root() / "stats"


# --- the reference (real) side ------------------------------------------------------------------


class Extractor(Protocol):
    """What scores images: a frozen network shipped with a domain (a classifier whose
    penultimate layer gives the features and softmax the class probabilities). ``accepts`` is the (C, H, W) of the uint8 images it takes; ``label`` names
    it in messages. Its name and weights' SHA-256 key every cache and every record."""

    name: str
    sha256: str
    label: str
    accepts: tuple[int, int, int]

    def extract(self, images: torch.Tensor, batch_size: int = ..., progress: bool = ...
                ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class Reference:
    features: FeatureSet
    info: dict[str, Any]  # provenance: dataset, split, n, image hash, cache file
    #: the extractor the features came from: generated images must be scored by the same one
    extractor: Extractor


def reference_from_images(images: torch.Tensor, *, dataset: str, split: str, n: int,
                          extractor: Extractor, source: dict[str, Any] | None = None,
                          progress: bool = False, labels: torch.Tensor | None = None
                          ) -> Reference:
    """Features of ``min(n, len(images))`` real images of a domain's split, from the cache
    when it has them.

    A subset of a split is a fixed random selection (seed ``REFERENCE_SELECTION_SEED``), the
    same for every run, so its statistics are shared and cached like the full split's. The
    cache file is named after ``dataset`` and keyed by the extractor and the images' bytes.
    """
    ex, source = extractor, source or {}
    total = int(images.shape[0])
    if n < total:
        g = torch.Generator().manual_seed(REFERENCE_SELECTION_SEED)
        chosen = torch.randperm(total, generator=g)[:n].sort().values
        images = images[chosen]
        labels = labels[chosen] if labels is not None else None
    digest = hashlib.sha256(np.ascontiguousarray(images.numpy()).tobytes()).hexdigest()
    key = hashlib.sha256(json.dumps([STATS_FORMAT, ex.name, ex.sha256, digest]).encode())
    path = stats_cache_dir() / (f"{dataset}-{split}-n{len(images)}-{ex.name}-"
                                f"{key.hexdigest()[:16]}.npz")
    info = {"dataset": dataset, "split": split, "n": int(len(images)), "of": total,
            "images_sha256": digest, "verified": bool(source.get("verified")),
            "dir": source.get("dir"), "cache": str(path)}
    fs = _read_stats(path)
    info["cache_hit"] = fs is not None
    if fs is None:
        feats, probs = ex.extract(images, progress=progress)
        fs = FeatureSet(feats, probs)
        _write_stats(path, fs)
    # the class labels of the selected images (intra-class FID); cheap, so not in the cache
    fs.labels = labels.numpy() if labels is not None else None
    return Reference(fs, info, ex)


def _read_stats(path: Path) -> FeatureSet | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != STATS_FORMAT:
                return None
            return FeatureSet(z["features"], z["probs"], mu=z["mu"], sigma=z["sigma"])
    except (OSError, ValueError, KeyError, EOFError) as e:
        # A cache is disposable: say so once and rebuild it rather than fail the evaluation.
        print(f"warning: ignoring damaged statistics cache {path} ({type(e).__name__}); "
              "recomputing it", file=sys.stderr)
        return None


def _write_stats(path: Path, fs: FeatureSet) -> None:
    mu, sigma = fs.stats
    buf = io.BytesIO()
    np.savez(buf, format=np.array(STATS_FORMAT), features=fs.features, probs=fs.probs,
             mu=mu, sigma=sigma)
    atomic_write_bytes(path, buf.getvalue())


# --- the generated side --------------------------------------------------------------------------


def check_images(images: np.ndarray | torch.Tensor, what: str, extractor: Extractor
                 ) -> torch.Tensor:
    """uint8 images in the extractor's shape (grey ones may come without their channel axis),
    as a tensor, or one ConfigError line saying why these cannot be scored."""
    t = torch.as_tensor(images)
    c, h, w = extractor.accepts
    if c == 1 and t.ndim == 4 and t.shape[1] == 1:
        t = t[:, 0]
    want = (h, w) if c == 1 else (c, h, w)
    if t.ndim != len(want) + 1 or tuple(t.shape[1:]) != want:
        colour = "grey" if c == 1 else "RGB"
        raise ConfigError(
            f"{what} has images of shape {tuple(t.shape[1:])}: {extractor.label} "
            f"measures {c}x{h}x{w} {colour} images only"
        )
    if t.dtype != torch.uint8:
        raise ConfigError(f"{what} holds {t.dtype} images: convert them to uint8 0..255 first")
    return t


def generate_for_eval(G: nn.Module, z_dim: int, n: int, seed: int, batch_size: int = 1000,
                      progress: bool = False) -> tuple[torch.Tensor, np.ndarray | None]:
    """n uint8 images from G in eval mode, on the latents of ``seed`` (the same z every time),
    and the data class each was asked to be for a G conditioned on the data's labels
    (``ganscope.models.conditional``: read off the same z), else None."""
    z = latents_from_seed(seed, n, z_dim)
    images = torch.from_numpy(generate_images(G, z, batch_size=batch_size, progress=progress))
    asked = G.codes(z)[0].numpy() if getattr(G, "labelled", False) else None
    return images, asked


def evaluate_images(images: np.ndarray | torch.Tensor, reference: Reference, *,
                    metrics: tuple[str, ...] | list[str] = ("fid", "kid", "prdc", "classes"),
                    seed: int = 0, extractor: Extractor | None = None, progress: bool = False,
                    what: str = "the image set", labels: np.ndarray | None = None
                    ) -> dict[str, Any]:
    """Score uint8 images against ``reference`` in the reference's extractor (``extractor``
    only to pass the same one explicitly); returns the metrics plus their provenance."""
    ex = extractor or reference.extractor
    if (ex.name, ex.sha256) != (reference.extractor.name, reference.extractor.sha256):
        raise ConfigError(f"the reference was measured with {reference.extractor.name}, not "
                          f"{ex.name}: score both sides with the same extractor")
    t0 = time.perf_counter()
    imgs = check_images(images, what, ex)
    feats, probs = ex.extract(imgs, progress=progress)
    fake = FeatureSet(feats, probs, labels=labels)
    try:
        values = compute_metrics(reference.features, fake, tuple(metrics), seed=seed)
    except ValueError as e:  # too few samples for a metric, said by the metric itself
        raise ConfigError(f"cannot score {what}: {e}") from None
    return {
        "metrics": values,
        "extractor": {"name": ex.name, "sha256": ex.sha256},
        "reference": {k: reference.info[k] for k in
                      ("dataset", "split", "n", "of", "images_sha256", "verified")},
        "n_real": int(reference.features.features.shape[0]),
        "n_fake": int(imgs.shape[0]),
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def evaluate_generator(G: nn.Module, z_dim: int, ec: EvalConfig, reference: Reference, *,
                       extractor: Extractor | None = None, progress: bool = False
                       ) -> dict[str, Any]:
    """The one evaluation of a generator: training and ``ganscope eval`` both call this."""
    t0 = time.perf_counter()
    images, asked = generate_for_eval(G, z_dim, ec.n, ec.seed, progress=progress)
    rec = evaluate_images(images, reference, metrics=ec.metric_names(), seed=ec.seed,
                          extractor=extractor, progress=progress, what="the generated set",
                          labels=asked)
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec
