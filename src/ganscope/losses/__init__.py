"""GAN objectives, one class per file, registered by name.

A loss sees only D's outputs (plus the batches and D itself for penalties) and says whether D
must end in a sigmoid; the training loop never branches on the loss name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganscope.losses.base import GANLoss
from ganscope.registry import Registry

if TYPE_CHECKING:  # annotations only: config imports the losses to check its loss name
    from ganscope.config import LossConfig

LOSSES: Registry[type[GANLoss]] = Registry("loss")


def register_loss(name: str):
    def deco(cls: type[GANLoss]) -> type[GANLoss]:
        cls.name = name
        return LOSSES.register(name)(cls)

    return deco


def build_loss(cfg: LossConfig) -> GANLoss:
    return LOSSES.get(cfg.name).from_config(cfg)


from ganscope.losses import bce, hinge, lsgan, minimax, wgan, wgan_gp  # noqa: E402,F401

__all__ = ["LOSSES", "GANLoss", "build_loss", "register_loss"]
