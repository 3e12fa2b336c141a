"""Dataset registry: each loader returns the whole data set as one tensor plus provenance.

Images are uint8 (N, C, H, W) that the training loop scales to [-1, 1] once, on the device,
instead of per sample through PIL. Point sets (the 2-D lab) are float32 (N, 2) used as they are;
``data.name`` is then a point-set spec: ``ring8``, ``ring8:radius=1.5``, ``points:FILE``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ganscope.config import DataConfig
from ganscope.registry import Registry


@dataclass
class Dataset:
    images: torch.Tensor  # uint8 (N, C, H, W) images, or float32 (N, 2) points
    labels: torch.Tensor | None
    source: dict
    kind: str = "images"  # images | points
    point_set: Any = None  # ganscope.data.points.PointSet for points: modes, std, spec

    def training_tensor(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """What G learns to produce, as float32 on ``device``: images in [-1, 1], points as is."""
        if self.kind == "points":
            return self.images.to(device=device, dtype=torch.float32)
        return to_unit_range(self.images, device)


DATASETS: Registry[Callable[[DataConfig], Dataset]] = Registry("dataset")


@DATASETS.register("fashion-mnist")
def _fashion_mnist(cfg: DataConfig) -> Dataset:
    from ganscope.data.fashion_mnist import load_fashion_mnist

    ds = load_fashion_mnist(cfg.split, cfg.dir, limit=cfg.limit)
    return Dataset(ds.images.unsqueeze(1), ds.labels, ds.source)


@DATASETS.register("celeba")
def _celeba(cfg: DataConfig) -> Dataset:
    """CelebA faces: uint8 (N, 3, S, S); labels are the 40 attributes as 0/1 (N, 40)."""
    from ganscope.data.celeba import load_celeba

    ds = load_celeba(cfg.dir, cfg.split, cfg.image_size, cfg.crop, limit=cfg.limit)
    return Dataset(ds.images, ds.attributes, {**ds.source, "attributes": list(ds.attribute_names)})


def is_point_spec(name: str) -> bool:
    from ganscope.data.points import POINT_SETS

    head = name.partition(":")[0].strip()
    return head == "points" or head in POINT_SETS


def load_dataset(cfg: DataConfig, seed: int = 0) -> Dataset:
    """The data set of a config; point sets are drawn with ``seed`` (the run's seed)."""
    if cfg.name not in DATASETS and is_point_spec(cfg.name):
        from ganscope.data.points import load_points

        ps = load_points(cfg.name, cfg.n_points, seed)
        pts = torch.from_numpy(ps.points.astype("float32"))
        if cfg.limit is not None:
            pts = pts[:cfg.limit]
        return Dataset(pts, None, {**ps.source, "n": int(pts.shape[0])}, kind="points",
                       point_set=ps)
    if cfg.name not in DATASETS:
        from ganscope.data.points import POINT_SETS
        from ganscope.errors import ConfigError

        raise ConfigError(
            f"unknown dataset {cfg.name!r}: choose one of {', '.join(DATASETS.names())}, a point "
            f"set ({', '.join(POINT_SETS.names())}) or points:FILE"
        )
    return DATASETS.get(cfg.name)(cfg)


def to_unit_range(images: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], in one pass over the whole tensor."""
    return images.to(device=device, dtype=torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] (clamped: tiny-cnn's G is unbounded) -> uint8 [0, 255]."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)
