"""InterFaceGAN (Shen et al., CVPR 2020): an attribute's direction is the normal of a linear
boundary that separates latents by the attribute.

Sample z, score G(z) for the attribute, keep the ``ratio`` most and least attribute-like samples
(confident labels, as the paper's top/bottom 2 %), and fit a linear classifier on z: here an
L2-regularised logistic regression solved with L-BFGS in torch (no scikit-learn; the paper's
linear SVM gives the same normal up to scale on such data). The unit normal, oriented towards
the attribute, is the direction; ``details`` has the boundary's accuracy on the fitting part and
on a held-out part of the labelled samples.

The conditional variant (``interfacegan-cond``) removes other attributes from the edit: with the
boundaries' unit normals n1 (target) and n2, ..., nk (conditions), the direction is n1 projected
onto the orthogonal complement of span(n2, ..., nk), renormalised — for one condition
n1 - (n1.n2) n2 — so moving along it leaves the conditions' linear scores unchanged (e.g. age
without gender).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

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
MIN_KEPT_NORM = 1e-3  # below this, the target normal lies (almost) in the conditions' span


def fit_boundary(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, max_iter: int = 200
                 ) -> tuple[np.ndarray, float]:
    """Logistic regression ``p(y=1|x) = sigmoid(x.w + b)`` with penalty ``l2/2 |w|^2``.

    Returns (w, b) in float64. L2 keeps w finite when the classes are separable.
    """
    x = x.double()
    y = y.double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().copy(), float(b.item())


def accuracy(x: torch.Tensor, y: torch.Tensor, w: np.ndarray, b: float) -> float:
    if x.shape[0] == 0:
        return float("nan")
    pred = (x.double().numpy() @ w + b) > 0
    return float((pred == y.numpy().astype(bool)).mean())


def boundary(ctx: DirectionContext, attribute: str, ratio: float = DEFAULT_RATIO,
             val_fraction: float = 0.2, l2: float = 1e-3) -> tuple[np.ndarray, dict]:
    """The unit normal of ``attribute``'s boundary (pointing towards the attribute) + details."""
    if not 0 <= val_fraction < 1:
        raise UserError(f"val_fraction {val_fraction} must lie in [0, 1)")
    z, s = ctx.attribute_scores(attribute)
    neg, pos = split_extremes(s, ratio)
    idx = np.concatenate([neg, pos])
    y = torch.cat([torch.zeros(len(neg)), torch.ones(len(pos))])
    perm = np.random.default_rng(ctx.seed).permutation(len(idx))
    n_val = int(len(idx) * val_fraction)
    val, fit = perm[:n_val], perm[n_val:]
    x = z[idx]
    w, b = fit_boundary(x[fit], y[fit], l2)
    norm = float(np.linalg.norm(w))
    if norm == 0.0 or not np.isfinite(norm):
        raise UserError(f"the boundary for '{attribute}' came out zero: the scores do not depend "
                        "on z here; try more samples")
    details = {
        "accuracy_fit": accuracy(x[fit], y[fit], w, b),
        "accuracy_val": accuracy(x[val], y[val], w, b),
        "n_fit": int(len(fit)), "n_val": int(len(val)), "ratio": ratio,
        "n_samples": int(z.shape[0]), "seed": ctx.seed,
        "score_low": float(s[neg].max()), "score_high": float(s[pos].min()),
        "offset": -b / norm,  # signed distance of the boundary from the origin along n
        "l2": l2,
    }
    return w / norm, details


@register_method("interfacegan", "linear boundary on z labelled by attribute scores (supervised)",
                 needs_attribute=True)
def find(ctx: DirectionContext, *, attribute: str | None = None, ratio: float = DEFAULT_RATIO,
         val_fraction: float = 0.2, l2: float = 1e-3, name: str | None = None) -> list[Direction]:
    if attribute is None:
        raise UserError("interfacegan needs an attribute (e.g. Male, Smiling, Young)")
    n, details = boundary(ctx, attribute, ratio, val_fraction, l2)
    return [make_direction(name or slug(f"{attribute}-interfacegan"), "interfacegan", n,
                           attribute, details)]


def project_out(v: np.ndarray, others: Sequence[np.ndarray]) -> np.ndarray:
    """``v`` minus its projection onto span(others) (not renormalised)."""
    v = np.asarray(v, dtype=np.float64)
    if not others:
        return v.copy()
    q, _ = np.linalg.qr(np.stack([np.asarray(o, dtype=np.float64) for o in others], axis=1))
    return v - q @ (q.T @ v)


@register_method("interfacegan-cond", "InterFaceGAN with other attributes projected out "
                 "(e.g. age without gender)", needs_attribute=True)
def find_conditional(ctx: DirectionContext, *, attribute: str | None = None,
                     conditions: Sequence[str] = (), ratio: float = DEFAULT_RATIO,
                     val_fraction: float = 0.2, l2: float = 1e-3, name: str | None = None
                     ) -> list[Direction]:
    if attribute is None:
        raise UserError("interfacegan-cond needs an attribute and conditions, e.g. "
                        "Young conditioned on Male")
    conditions = [c for c in conditions if c]
    all_others = [c.lower() for c in conditions] == ["all"]
    if all_others:
        # every other attribute the scorer measures: an edit that should move its target alone
        conditions = [c for c in ctx.attributes if c != attribute]
    if not conditions:
        raise UserError("interfacegan-cond needs at least one condition attribute to project "
                        "out (e.g. conditions=Male, or all)")
    if attribute in conditions:
        raise UserError(f"'{attribute}' cannot be conditioned on itself")
    n1, details = boundary(ctx, attribute, ratio, val_fraction, l2)
    normals = [boundary(ctx, c, ratio, val_fraction, l2)[0] for c in conditions]
    kept = project_out(n1, normals)
    kept_norm = float(np.linalg.norm(kept))
    if kept_norm < MIN_KEPT_NORM:
        raise UserError(f"'{attribute}' lies in the span of {', '.join(conditions)} here: "
                        "nothing is left after projecting them out")
    details = {**details, "conditioned_on": list(conditions),
               "cosine_before": [float(n1 @ n2) for n2 in normals],
               "kept_norm": kept_norm}
    nm = name or slug(f"{attribute}-without-{'all' if all_others else '-'.join(conditions)}")
    return [make_direction(nm, "interfacegan-cond", kept, attribute, details)]
