"""Class-mean difference: the direction from the mean latent of samples without an attribute to
the mean latent of samples with it.

The simplest supervised direction (Radford et al. 2016 did it with a handful of hand-picked
samples; Larsen et al. 2016 with attribute labels). Samples are labelled as in InterFaceGAN: the
``ratio`` lowest and highest scores. For Gaussian z with a linear score it points the same way
as InterFaceGAN's normal; when the score is not linear in z the two differ, which is worth
seeing. ``details["separation"]`` is the gap between the two groups' mean projections divided by
the pooled standard deviation along the direction (a d' of how cleanly it splits them).
"""

from __future__ import annotations

import numpy as np

from ganscope.directions.base import (
    DirectionContext,
    make_direction,
    register_method,
    slug,
    split_extremes,
)
from ganscope.directions.store import Direction
from ganscope.errors import UserError

DEFAULT_RATIO = 0.25


@register_method("mean", "difference of the mean z of high- and low-scoring samples (supervised)",
                 needs_attribute=True)
def find(ctx: DirectionContext, *, attribute: str | None = None, ratio: float = DEFAULT_RATIO,
         name: str | None = None) -> list[Direction]:
    if attribute is None:
        raise UserError("mean needs an attribute (e.g. Male, Smiling, Young)")
    z, s = ctx.attribute_scores(attribute)
    neg, pos = split_extremes(s, ratio)
    zz = z.double().numpy()
    diff = zz[pos].mean(0) - zz[neg].mean(0)
    norm = float(np.linalg.norm(diff))
    if norm == 0.0:
        raise UserError(f"the '{attribute}' groups have the same mean latent: the scores do not "
                        "depend on z here")
    d = diff / norm
    a, b = zz[pos] @ d, zz[neg] @ d
    pooled = float(np.sqrt((a.var() + b.var()) / 2))
    details = {"n_pos": int(len(pos)), "n_neg": int(len(neg)), "ratio": ratio,
               "n_samples": int(z.shape[0]), "seed": ctx.seed, "mean_distance": norm,
               "separation": float((a.mean() - b.mean()) / pooled) if pooled > 0 else None,
               "score_low": float(s[neg].max()), "score_high": float(s[pos].min())}
    return [make_direction(name or slug(f"{attribute}-mean"), "mean", d, attribute, details)]
