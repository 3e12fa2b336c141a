"""SeFa (Shen & Zhou, CVPR 2021): closed-form directions from the generator's first weights.

The first layer maps z linearly: y = A z (+ b). A unit step along d changes y by A d, whose size
|A d|^2 = d^T A^T A d is largest for the top eigenvectors of A^T A. So the directions that move
the first layer's output most are the eigenvectors of A^T A, sorted by eigenvalue (descending);
no sampling, no labels. A is the layer's weight (Linear), or for a ConvTranspose2d applied to z
as a 1x1 map, its weight (z, C, k, k) reshaped to (C*k*k) x z (see ``layer_matrix``).

``normalize=True`` first scales each row of A (each output unit's weights) to unit norm, as the
official SeFa code does for its GANs; off by default, so the eigenvalues are |A d|^2 themselves.
BatchNorm after the first layer rescales channels and is ignored (as in the paper).
"""

from __future__ import annotations

import numpy as np

from ganscope.directions.base import (
    DirectionContext,
    first_layer,
    layer_matrix,
    make_direction,
    orient,
    register_method,
)
from ganscope.directions.store import Direction
from ganscope.errors import UserError


def eigen(A: np.ndarray, normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of A^T A."""
    A = np.asarray(A, dtype=np.float64)
    if normalize:
        A = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    vals, vecs = np.linalg.eigh(A.T @ A)
    order = np.argsort(vals)[::-1]
    return np.clip(vals[order], 0.0, None), vecs[:, order]


@register_method("sefa", "closed form: top eigenvectors of A^T A, A = G's first weights "
                 "(unsupervised)", needs_attribute=False)
def find(ctx: DirectionContext, *, attribute: str | None = None, n_components: int = 5,
         layer: str | None = None, normalize: bool = False, name: str | None = None
         ) -> list[Direction]:
    lname, module = first_layer(ctx.G, ctx.z_dim, layer)
    A = layer_matrix(module).numpy()
    if A.shape[1] != ctx.z_dim:
        raise UserError(f"layer '{lname}' takes {A.shape[1]} inputs, not the {ctx.z_dim}-d "
                        "latent: name the first layer with layer=NAME")
    if not 1 <= n_components <= ctx.z_dim:
        raise UserError(f"n_components must lie in 1..{ctx.z_dim}")
    vals, vecs = eigen(A, normalize)
    dirs, corr = orient(ctx, [vecs[:, k] for k in range(n_components)], attribute)
    total = float(vals.sum())
    out = []
    for k, d in enumerate(dirs):
        details = {"component": k, "eigenvalue": float(vals[k]),
                   "eigenvalue_ratio": float(vals[k] / total) if total > 0 else 0.0,
                   "layer": lname, "layer_shape": list(A.shape), "normalize": normalize}
        if attribute is not None:
            details["attribute_correlation"] = corr[k]
        nm = f"{name}-{k}" if name else f"sefa-{k}"
        out.append(make_direction(nm, "sefa", d, attribute, details))
    return out
