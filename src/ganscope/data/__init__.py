"""The in-memory data set every loader returns: the whole set as one tensor plus provenance.

Which loader a ``data.name`` means is the domains' business (``ganscope.domains``).

Images are uint8 (N, C, H, W) that the training loop scales to [-1, 1] once, on the device,
instead of per sample through PIL. Point sets (the 2-D lab) are float32 (N, 2) used as they are;
``data.name`` is then a point-set spec: ``ring8``, ``ring8:radius=1.5``, ``points:FILE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

#: ``data.name`` when a config names none: the seeds' data set (a domain of that name exists)
DEFAULT_DATA = "fashion-mnist"


@dataclass
class Dataset:
    images: torch.Tensor  # uint8 (N, C, H, W) images, or float32 (N, 2) points
    labels: torch.Tensor | None
    source: dict
    kind: str = "images"  # images | points
    point_set: Any = None  # ganscope.data.points.PointSet for points: modes, std, spec
    # images backed by a memory-mapped file (a folder larger than memory): training gathers
    # and converts each batch from the file instead of converting the whole set up front
    mapped: bool = False

    def training_tensor(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """What G learns to produce, as float32 on ``device``: images in [-1, 1], points as is.
        A mapped set is returned as it is (uint8 on the CPU): see :meth:`batch`."""
        if self.kind == "points":
            return self.images.to(device=device, dtype=torch.float32)
        if self.mapped:
            return self.images
        return to_unit_range(self.images, device)

    def batch(self, x: torch.Tensor, rows: torch.Tensor, device: str | torch.device
              ) -> torch.Tensor:
        """Rows ``rows`` of ``x`` (``training_tensor``'s result) as training samples on
        ``device``: an index into the converted tensor, or for a mapped set a gather from the
        file and a conversion of just those images."""
        if not self.mapped:
            return x.index_select(0, rows)
        return to_unit_range(x.index_select(0, rows.cpu()), device)


def to_unit_range(images: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], in one pass over the whole tensor."""
    return images.to(device=device, dtype=torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] (clamped: tiny-cnn's G is unbounded) -> uint8 [0, 255]."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)
