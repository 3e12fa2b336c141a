"""Dataset registry: each loader returns the whole split as one uint8 tensor plus provenance.

The training loop scales to [-1, 1] once, on the device, instead of per sample through PIL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ganscope.config import DataConfig
from ganscope.registry import Registry


@dataclass
class Dataset:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor | None
    source: dict


DATASETS: Registry[Callable[[DataConfig], Dataset]] = Registry("dataset")


@DATASETS.register("fashion-mnist")
def _fashion_mnist(cfg: DataConfig) -> Dataset:
    from ganscope.data.fashion_mnist import load_fashion_mnist

    ds = load_fashion_mnist(cfg.split, cfg.dir, limit=cfg.limit)
    return Dataset(ds.images.unsqueeze(1), ds.labels, ds.source)


def load_dataset(cfg: DataConfig) -> Dataset:
    return DATASETS.get(cfg.name)(cfg)


def to_unit_range(images: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], in one pass over the whole tensor."""
    return images.to(device=device, dtype=torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] (clamped: tiny-cnn's G is unbounded) -> uint8 [0, 255]."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)
