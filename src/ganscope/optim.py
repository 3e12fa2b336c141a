"""Optimiser registry: each builder takes a parameter list and the resolved per-network settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ganscope.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")


def _fused_ok(params: list[torch.nn.Parameter]) -> bool:
    # Fused Adam runs the whole update in one kernel per step: on a laptop CPU the per-parameter
    # Python loop of the default implementation costs more than E1's matmuls.
    return all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)


def elementwise(fn: Callable[..., torch.optim.Optimizer]) -> Callable[..., torch.optim.Optimizer]:
    """Marks an optimiser whose update of each weight reads that weight's own gradient and state
    only (no norms over a tensor, no cross-parameter terms): one instance over K runs' stacked
    weights then steps each run exactly as its own instance would (ganscope.training.stacked)."""
    fn.elementwise = True  # type: ignore[attr-defined]
    return fn


def is_elementwise(name: str) -> bool:
    return bool(getattr(OPTIMIZERS.get(name), "elementwise", False))


@OPTIMIZERS.register("adam")
@elementwise
def adam(params: list, s: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=s["lr"], betas=tuple(s["betas"]), eps=s["eps"],
                            weight_decay=s["weight_decay"], fused=_fused_ok(params) or None)


@OPTIMIZERS.register("rmsprop")
@elementwise
def rmsprop(params: list, s: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=s["lr"], alpha=s["alpha"], eps=s["eps"],
                               momentum=s["momentum"], weight_decay=s["weight_decay"])


@OPTIMIZERS.register("sgd")
@elementwise
def sgd(params: list, s: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=s["lr"], momentum=s["momentum"],
                           weight_decay=s["weight_decay"])


def build_optimizer(params: Iterable[torch.nn.Parameter], settings: dict[str, Any]
                    ) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(settings["name"])(list(params), settings)
