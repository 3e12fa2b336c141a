"""K networks of one architecture as one module whose weights are ``[K, ...]`` tensors.

Why: the lab's runs are small (E1's MLPs, E5's 2-D MLPs); one alone spends its step on per-op
overhead, not arithmetic. Stacked, each op serves all K runs: ``x`` of shape ``[K, B, ...]``
goes in, ``[K, B, ...]`` comes out, and run k's slice depends on run k's weights only, so the
sum of the K runs' losses has each run's own gradient in its slice. Optimisers that update
every element on its own (Adam, RMSprop, SGD) then step all K runs exactly as K solo optimisers.

Two ways to run the K forwards:
- a ``nn.Sequential`` of ``Linear`` layers and element-wise activations (E5's ``mlp2d``) runs
  as batched matmuls (``torch.baddbmm``): no per-op overhead beyond the solo net's;
- any other module runs under ``torch.func.vmap`` of ``functional_call`` (E1's ``mlp``, the
  user's nets), which handles reshapes written for one run's batch.
Both give run k the solo net's function to float rounding (tests/test_stacked.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

# activations that act on each element alone: a [K, B, ...] input is as good as [B, ...]
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.ELU, nn.SiLU,
               nn.GELU, nn.Softplus, nn.Hardtanh)


def is_linear_stack(net: nn.Module) -> bool:
    """A Sequential of Linear layers and element-wise activations: the batched-matmul path."""
    return isinstance(net, nn.Sequential) and all(
        isinstance(m, (nn.Linear, *ELEMENTWISE)) for m in net)


class StackedNet(nn.Module):
    """K copies of one architecture, weights stacked; ``forward([K, B, ...]) -> [K, B, ...]``.

    ``self.net`` is a copy of the solo module whose parameters and buffers carry a leading K
    dimension, under the solo names and in the solo order: ``unstack(k)`` is run k's solo
    ``state_dict`` and an optimiser's per-parameter state lines up with a solo optimiser's.
    """

    def __init__(self, template: nn.Module, states: Sequence[dict[str, torch.Tensor]]) -> None:
        super().__init__()
        if not states:
            raise ValueError("a stack needs at least one run")
        self.K = len(states)
        self.net = copy.deepcopy(template)
        names = dict(self.net.named_parameters())
        bufs = dict(self.net.named_buffers())
        for name in [*names, *bufs]:
            stacked = torch.stack([s[name].detach() for s in states]).clone()
            owner, _, leaf = name.rpartition(".")
            mod = self.net.get_submodule(owner) if owner else self.net
            if name in names:
                setattr(mod, leaf, nn.Parameter(stacked, requires_grad=names[name].requires_grad))
            else:
                mod.register_buffer(leaf, stacked)
        self.fast = is_linear_stack(template)
        # vmap's function runs on a weightless copy (meta tensors): the weights come in as
        # arguments. A plain attribute, so its (meta) parameters are not this module's.
        self.__dict__["_skeleton"] = copy.deepcopy(template).to("meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:
            for m in self.net:
                if isinstance(m, nn.Linear):
                    w = m.weight.transpose(1, 2)
                    x = (torch.baddbmm(m.bias.unsqueeze(1), x, w) if m.bias is not None
                         else torch.bmm(x, w))
                else:
                    x = m(x)
            return x
        params = dict(self.net.named_parameters())
        buffers = dict(self.net.named_buffers())
        skeleton = self.__dict__["_skeleton"]

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xi: torch.Tensor
                ) -> torch.Tensor:
            return functional_call(skeleton, (p, b), (xi,))

        return vmap(one)(params, buffers, x)

    def unstack(self, k: int) -> dict[str, torch.Tensor]:
        """Run k's weights and buffers as the solo module's ``state_dict``."""
        return {n: t[k].detach().clone() for n, t in self.net.state_dict().items()}


def stack_optimizer_states(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """K solo optimiser ``state_dict``s -> one for the stacked parameters (same indices).

    Per-parameter tensors are stacked; 0-dim ones (Adam's step count) are shared, since the
    runs of a stack step in lockstep. An empty state (a fresh optimiser) stays empty."""
    first = states[0]
    out: dict[str, Any] = {"state": {}, "param_groups": copy.deepcopy(first["param_groups"])}
    for idx, entry in first["state"].items():
        merged = {}
        for key, v in entry.items():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                merged[key] = torch.stack([s["state"][idx][key] for s in states])
            else:
                merged[key] = copy.deepcopy(v)
        out["state"][idx] = merged
    return out


def unstack_optimizer_state(state: dict[str, Any], k: int) -> dict[str, Any]:
    """Run k's slice of a stacked optimiser's ``state_dict``: a solo optimiser's own."""
    return {"state": {idx: {key: (v[k].clone() if isinstance(v, torch.Tensor) and v.dim() > 0
                                  else copy.deepcopy(v)) for key, v in entry.items()}
                      for idx, entry in state["state"].items()},
            "param_groups": copy.deepcopy(state["param_groups"])}
