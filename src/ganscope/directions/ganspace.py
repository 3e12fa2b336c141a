"""GANSpace (Härkönen et al., NeurIPS 2020): principal components of an early layer's
activations over sampled z, carried back to z-space by linear regression.

Sample z_1..z_N, record the first layer's outputs y_i (or those of ``layer=NAME``), and run PCA:
y_i - mu = V x_i with x_i the coordinates on the top components (sorted by explained variance).
As the paper does for BigGAN, whose components live in activation space, each component is
mapped to a z-space direction by regressing z on the coordinates, U = argmin sum_i |U x_i - z_i|^2
(least squares); column k of U, normalised, is component k's direction. ``details`` has its
explained variance (and share of the total), and ``linear_r2``: how much of the component's
coordinate a linear function of z explains (1 for a linear first layer; lower for a deeper one).

For a linear first layer y = A z the components are A's left singular vectors and the
directions come out as its right singular vectors — SeFa's — so the two methods differ only
once ``layer`` names a nonlinear point of G.
"""

from __future__ import annotations

import numpy as np
import torch

from ganscope.directions.base import (
    DirectionContext,
    first_layer,
    layer_outputs,
    make_direction,
    orient,
    register_method,
)
from ganscope.directions.store import Direction
from ganscope.errors import UserError


def pca(y: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Top-k principal axes (D, k), their variances (k,) and the total variance of ``y``."""
    yc = y - y.mean(0, keepdim=True)
    total = float((yc.double() ** 2).sum() / (y.shape[0] - 1))
    if min(yc.shape) <= 2048:
        _, s, vh = torch.linalg.svd(yc.double(), full_matrices=False)
        v = vh[:k].T
    else:  # wide activations (e.g. 512x4x4): a randomized SVD of the top k is enough
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            _, s, v = torch.svd_lowrank(yc, q=min(k + 20, min(yc.shape)), niter=6)
        v = v[:, :k]
    var = (s[:k].double() ** 2 / (y.shape[0] - 1)).numpy()
    return v.double().numpy(), var, total


@register_method("ganspace", "PCA of first-layer activations over sampled z, regressed back to z "
                 "(unsupervised)", needs_attribute=False)
def find(ctx: DirectionContext, *, attribute: str | None = None, n_components: int = 5,
         layer: str | None = None, name: str | None = None) -> list[Direction]:
    lname, module = first_layer(ctx.G, ctx.z_dim, layer)
    if n_components < 1:
        raise UserError("n_components must be at least 1")
    z = ctx.latents()
    y = layer_outputs(ctx, z, module)
    if n_components > min(y.shape[1], z.shape[0] - 1):
        raise UserError(f"n_components {n_components} is more than layer '{lname}' gives "
                        f"({y.shape[1]} values)")
    v, var, total = pca(y, n_components)
    x = ((y - y.mean(0, keepdim=True)) @ torch.from_numpy(v).to(y.dtype)).double().numpy()
    zz = z.double().numpy()
    U = np.linalg.lstsq(x, zz, rcond=None)[0].T  # (z_dim, k): z ~ U x
    # How linear each coordinate is in z: R^2 of x_k ~ z.beta + c.
    zc = np.concatenate([zz, np.ones((zz.shape[0], 1))], axis=1)
    beta = np.linalg.lstsq(zc, x, rcond=None)[0]
    resid = x - zc @ beta
    r2 = 1 - resid.var(0) / np.maximum(x.var(0), 1e-300)
    dirs, corr = orient(ctx, [U[:, k] for k in range(n_components)], attribute)
    out = []
    for k, d in enumerate(dirs):
        details = {"component": k, "explained_variance": float(var[k]),
                   "explained_variance_ratio": float(var[k] / total) if total > 0 else 0.0,
                   "linear_r2": float(r2[k]), "layer": lname, "layer_size": int(y.shape[1]),
                   "n_samples": int(z.shape[0]), "seed": ctx.seed}
        if attribute is not None:
            details["attribute_correlation"] = corr[k]
        nm = f"{name}-{k}" if name else f"ganspace-{k}"
        out.append(make_direction(nm, "ganspace", d, attribute, details))
    return out
