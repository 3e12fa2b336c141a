"""Latents that ask a conditional or InfoGAN run's generator for chosen classes (``generate
--class``): only z's first number changes, the one G reads its class from
(``ganscope.models.conditional``)."""

from __future__ import annotations

import torch

from ganscope.config import RunConfig
from ganscope.domains import class_domain
from ganscope.errors import UserError
from ganscope.latent.interpolate import resolve_class
from ganscope.models.conditional import class_latent


def class_latents(cfg: RunConfig, z: torch.Tensor, spec: str) -> tuple[torch.Tensor, int]:
    """Latents that ask a conditional (or InfoGAN) run's G for given classes (categorical
    codes): ``spec`` is ``all`` (one row of ``len(z)`` images per class) or comma-separated
    names or indices (each class gets the same ``z``, one row each). Returns (latents, row
    length). Only z's first number changes (``ganscope.models.conditional``): the rows differ
    in their class alone."""
    m = cfg.model
    if m.conditional == "none":
        raise UserError("--class needs a conditional or InfoGAN run (model.conditional); this "
                        "run's G was trained without classes")
    k = m.n_classes
    if spec.strip().lower() == "all":
        classes = list(range(k))
    else:
        classes = [_class_index(cfg, part.strip(), k) for part in spec.split(",") if part.strip()]
        if not classes:
            raise UserError("--class takes a class name, an index or 'all'")
    rows = []
    for c in classes:
        zc = z.clone()
        zc[:, 0] = class_latent(c, k)
        rows.append(zc)
    return torch.cat(rows), int(z.shape[0])


def _class_index(cfg: RunConfig, part: str, k: int) -> int:
    """A class of a conditional run: an index 0..k-1, or (labelled data with named classes) a
    name as ``latent`` takes it."""
    if part.isdigit():
        idx = int(part)
    else:
        domain = class_domain()
        if cfg.model.conditional == "infogan" or cfg.data.name != domain.name:
            raise UserError(f"class '{part}': this run's classes are numbered, give an index "
                            f"0..{k - 1}")
        idx = resolve_class(part)
    if not 0 <= idx < k:
        raise UserError(f"class index {idx} is out of range: the run has classes 0..{k - 1}")
    return idx
