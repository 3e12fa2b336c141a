"""R1 and R2 gradient penalties (Mescheder et al. 2018, "Which Training Methods for GANs do
actually Converge?"): ``gamma / 2 * E[||grad_x D(x)||^2]`` on real samples (R1) or generated
ones (R2), pushing D's surface flat where the data are, which makes the game converge locally.

Lazy (Karras et al. 2020, StyleGAN2): computed on every ``every``-th discriminator step only
and multiplied by ``every``, so its average weight is unchanged while its extra forward and
double backward cost 1/every of the time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def gradient_norm_sq(D: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
                     ) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||^2 (summed over all non-batch dims), differentiable w.r.t. D's
    weights (create_graph) so the penalty trains D. D's outputs are summed: sample i's output
    depends on x_i only (no batch statistics), so the sum's gradient row i is sample i's."""
    x = x.detach().requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
    return grad.flatten(1).float().pow(2).sum(1)


def gradient_penalty_r(D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                       fake: torch.Tensor, *, r1: float, r2: float, every: int, d_step: int,
                       D_fake: Callable[[torch.Tensor], torch.Tensor] | None = None
                       ) -> torch.Tensor | None:
    """The lazy R1 + R2 term for discriminator step ``d_step`` (0-based), or None when this step
    carries none (both weights 0, or not an ``every``-th step). ``D_fake``: D as it judges the
    generated batch, when that differs (a conditional D bound to the fakes' labels)."""
    if (r1 <= 0 and r2 <= 0) or d_step % every:
        return None
    total = torch.zeros((), device=real.device)
    if r1 > 0:
        total = total + r1 / 2 * gradient_norm_sq(D, real).mean()
    if r2 > 0:
        total = total + r2 / 2 * gradient_norm_sq(D_fake or D, fake).mean()
    return total * every
