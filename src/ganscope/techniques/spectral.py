"""Spectral normalisation (Miyato et al. 2018): every conv and linear weight divided by its
largest singular value, estimated by one power iteration per training forward, so D is
(about) 1-Lipschitz per layer without a gradient penalty's extra backward.

Applied by walking the modules, so it works on registered and user nets alike. It changes the
state dict's keys (``weight`` becomes ``parametrizations.weight.original`` plus the power
iteration's ``_u``/``_v``), which is why ``build_nets`` applies it to every rebuilt net: a
checkpoint only loads into nets built the same way.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrizations, parametrize

SN_TARGETS = ("none", "d", "gd")  # tech.spectral_norm: which nets get it

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
           nn.ConvTranspose3d, nn.Embedding)


def apply_spectral_norm(net: nn.Module) -> int:
    """Spectral-normalise every conv, linear and embedding weight of ``net`` in place; returns
    how many layers got it (0 says the net has no layer it applies to)."""
    layers = [m for m in net.modules()
              if isinstance(m, _LAYERS) and getattr(m, "weight", None) is not None
              and not parametrize.is_parametrized(m, "weight")]
    for m in layers:
        # ConvTranspose keeps its output channels in dim 1: normalise over the right matrix
        dim = 1 if isinstance(m, nn.modules.conv._ConvTransposeNd) else 0
        parametrizations.spectral_norm(m, dim=dim)
    return len(layers)


def remove_spectral_norm(net: nn.Module) -> int:
    """Bake every spectral normalisation of ``net`` into plain weights (W / sigma as they are
    now): an exported generator is then an ordinary module whose state dict loads without
    ganscope. Returns how many layers it changed."""
    layers = [m for m in net.modules() if parametrize.is_parametrized(m, "weight")]
    was = net.training
    net.eval()  # the weights eval computes: in training mode reading them runs an iteration
    for m in layers:
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    net.train(was)
    return len(layers)
