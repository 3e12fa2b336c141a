"""E5 (seed 004): the MLPs that fit 2-D point data, for GAN, WGAN and WGAN-GP alike.

G: Linear(z->512)+ReLU -> Linear(512->256)+ReLU -> Linear(256->2), no output squashing (points
live on the data's own scale). D: Linear(2->256)+ReLU -> Linear(256->256)+ReLU -> Linear(256->1),
with a sigmoid only for BCE-type losses: a critic must stay an unbounded score.
"""

from __future__ import annotations

from torch import nn

from ganscope.models import register_model

G_HIDDEN = (512, 256)
D_HIDDEN = (256, 256)


def mlp(sizes: list[int], sigmoid: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


@register_model("mlp2d", "E5 points: G z-512-256-2, D 2-256-256-1, ReLU (model.g_hidden/d_hidden)",
                takes="points")
def build(z_dim: int, sigmoid: bool, g_hidden: tuple[int, ...] = (),
          d_hidden: tuple[int, ...] = ()) -> tuple[nn.Module, nn.Module]:
    g = [z_dim, *(g_hidden or G_HIDDEN), 2]
    d = [2, *(d_hidden or D_HIDDEN), 1]
    return mlp(g), mlp(d, sigmoid)
