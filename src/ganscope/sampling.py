"""The one path from a generator to samples: ``sample(G, z)``.

Every caller that turns G's output into samples (the loop's sample figures, eval, generate,
the latent tools and the probe, directions and walks, the 2-D lab and its server) goes through
``sample``: G in eval mode (BatchNorm running stats; its mode is restored afterwards), no
gradients, z in batches moved to G's device, each batch's output turned into samples
(``to_samples``: uint8 images by default, a ``Domain``'s samples, or any function) and the
batches concatenated on the CPU.

The batch size is part of the result: a different batching runs different BLAS kernels and can
round differently, so a caller that must reproduce earlier numbers passes the batch size it
always used (``batch_size=None`` is one forward pass over all of z).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganscope.data import to_uint8
from ganscope.models import eval_mode

if TYPE_CHECKING:  # annotations only: domains sample through this module
    from ganscope.domains.base import Domain

ToSamples = Callable[[torch.Tensor], torch.Tensor]

#: the batch size of ``sample`` when a caller names none (10,000 eval images are 10 batches)
DEFAULT_BATCH = 1000


def to_images(x: torch.Tensor) -> torch.Tensor:
    """G's output in [-1, 1] as uint8 images on the CPU (the default ``to_samples``)."""
    return to_uint8(x).cpu()


def to_floats(x: torch.Tensor) -> torch.Tensor:
    """G's output as it is, float32 on the CPU (points, or images still in [-1, 1])."""
    return x.detach().float().cpu()


def generator_device(G: nn.Module) -> torch.device | None:
    """The device of G's parameters; None for a generator without parameters."""
    p = next(G.parameters(), None)
    return p.device if p is not None else None


@torch.no_grad()
def sample(G: nn.Module, z: torch.Tensor, *, to_samples: ToSamples | Domain = to_images,
           batch_size: int | None = DEFAULT_BATCH, device: str | torch.device | None = None,
           labels: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
    """Samples of G for the latents ``z`` (N, z_dim), concatenated on the CPU.

    ``to_samples`` turns each batch of G's output into samples: a function, or a ``Domain``
    (its ``to_samples``); uint8 images by default. ``batch_size`` latents go through G at a
    time (None: all of them in one pass). ``device`` is where each batch of z is moved; by
    default G's device (z stays where it is for a generator without parameters).

    ``labels`` is reserved for conditional generators: when given, a tensor with one row per
    latent, batched like z and passed to G as its second input, ``G(z, labels)``; generators
    today are unconditional and take z alone, so leave it None for them.
    """
    convert = to_samples.to_samples if hasattr(to_samples, "to_samples") else to_samples
    n = int(z.shape[0])
    if labels is not None and int(labels.shape[0]) != n:
        raise ValueError(f"labels has {int(labels.shape[0])} rows for {n} latents: give one "
                         "label per latent")
    if batch_size is None:
        batch_size = max(n, 1)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if device is None:
        device = generator_device(G)
    starts = range(0, max(n, 1), batch_size)  # an empty z still makes one (empty) pass
    out = []
    with eval_mode(G):
        for i in tqdm(starts, disable=not progress or len(starts) < 3, desc="generating",
                      unit="batch"):
            zb = z[i:i + batch_size]
            if device is not None:
                zb = zb.to(device)
            if labels is None:
                x = G(zb)
            else:
                lb = labels[i:i + batch_size]
                x = G(zb, lb.to(device) if device is not None else lb)
            out.append(convert(x))
    return torch.cat(out)


def latents_from_seed(seed: int, n: int, z_dim: int = 100) -> torch.Tensor:
    """The numbers of ``torch.manual_seed(seed); torch.randn(n, z_dim)``, as the seeds did,
    drawn from a CPU generator of their own: seeding torch's global one is not thread-safe
    (the server's requests run in threads and drew each other's latents) and would move a
    training run's random stream in the same process."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def generate_images(G: nn.Module, z: torch.Tensor, batch_size: int = 1000,
                    progress: bool = False) -> np.ndarray:
    """uint8 images (N, H, W) from G in eval mode for latents z (N, z_dim), in batches of
    ``batch_size`` (10,000 is normal): ``sample`` as numpy."""
    imgs = sample(G, z, batch_size=batch_size, progress=progress).numpy()
    return imgs[:, 0] if imgs.shape[1] == 1 else imgs
