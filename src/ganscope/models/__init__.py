"""Model registry: each entry builds a (Generator, Discriminator) pair (1x28x28 images or 2-D points).

Builders take the latent size and whether D should end in a sigmoid (BCE-type losses want
probabilities, Wasserstein/hinge/LS losses want raw scores). Importing this package registers
the seeds' nets. A user's own nets (``model.name: path/to/nets.py:build``) are not registered:
``ganscope.models.user`` builds, checks and stores them, and ``ganscope.training.run.build_nets``
is the one resolver that rebuilds any run's nets.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ganscope.errors import ConfigError
from ganscope.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[[int, bool], tuple[nn.Module, nn.Module]]
    summary: str
    takes: str = "1x28x28"  # the data it fits: CxHxW images, or "points" (2-D point sets)


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, summary: str, takes: str = "1x28x28"):
    def deco(fn: Callable[[int, bool], tuple[nn.Module, nn.Module]]):
        MODELS.register(name)(ModelSpec(fn, summary, takes))
        return fn

    return deco


def build_models(name: str, z_dim: int = 100, sigmoid: bool = True, init: str = "default",
                 g_hidden: tuple[int, ...] = (), d_hidden: tuple[int, ...] = ()
                 ) -> tuple[nn.Module, nn.Module]:
    """Build G and D; ``init='dcgan'`` re-initialises them as in the DCGAN paper.

    ``g_hidden``/``d_hidden`` resize the hidden layers of models that take them (those whose
    build function has the parameters: ``sized_models()``); the other seeds' image models have
    fixed, pinned shapes.
    """
    spec = MODELS.get(name)
    sizes = {k: v for k, v in (("g_hidden", g_hidden), ("d_hidden", d_hidden)) if v}
    check_sizes(name, sizes)
    g, d = spec.build(z_dim, sigmoid, **sizes)
    if init == "dcgan":
        g.apply(dcgan_init)
        d.apply(dcgan_init)
    return g, d


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in eval mode (BatchNorm running stats) for the block, then its mode restored:
    sampling during training must not switch a training net's BatchNorm for good."""
    was = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was)


def check_sizes(name: str, sizes: dict[str, tuple[int, ...]]) -> None:
    """ConfigError when hidden sizes are given to a model whose layer sizes are fixed."""
    if not sizes:
        return
    if ":" in name or name == "modules":  # a user's nets (ganscope.models.user) size themselves
        raise ConfigError(f"bad config: model.{next(iter(sizes))} applies to {sized_models()}; your own "
                          f"nets ({name}) set their sizes in their build function")
    if "g_hidden" not in inspect.signature(MODELS.get(name).build).parameters:
        raise ConfigError(f"bad config: model '{name}' has fixed layer sizes; "
                          f"model.{next(iter(sizes))} applies to {sized_models()}")


def sized_models() -> str:
    """The registered models whose widths model.g_hidden / d_hidden set, for error lines."""
    return ", ".join(n for n in MODELS.names()
                     if "g_hidden" in inspect.signature(MODELS.get(n).build).parameters)


@torch.no_grad()
def dcgan_init(m: nn.Module) -> None:
    """Weights ~ N(0, 0.02) for conv/linear, BN gamma ~ N(1, 0.02), biases 0 (Radford et al.)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


from ganscope.models import conv, faces, mlp, mlp2d, resnet  # noqa: E402,F401  (registers the models)


def has_conv(net: nn.Module) -> bool:
    """Whether ``train.channels_last`` applies to the net (it only changes conv layouts)."""
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in net.modules())
