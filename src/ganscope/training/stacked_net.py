"""K networks of one architecture as one module whose weights are ``[K, ...]`` tensors.

Why: the lab's runs are small (E1's MLPs, E5's 2-D MLPs); one alone spends its step on per-op
overhead, not arithmetic. Stacked, each op serves all K runs: ``x`` of shape ``[K, B, ...]``
goes in, ``[K, B, ...]`` comes out, and run k's slice depends on run k's weights only, so the
sum of the K runs' losses has each run's own gradient in its slice. Optimisers that update
every element on its own (Adam, RMSprop, SGD) then step all K runs exactly as K solo optimisers.

Two ways to run the K forwards:
- nets whose weights all sit in ``Linear`` layers (E1's ``mlp``, E5's ``mlp2d``) run their own
  forward once on the K batches laid end to end, each Linear a batched matmul
  (``torch.baddbmm``): no per-op overhead beyond the solo net's;
- any other module runs under ``torch.func.vmap`` of ``functional_call`` (conv nets, the user's
  nets, whose forward might mix the samples of a batch).
Both give run k the solo net's function to float rounding (tests/test_stacked.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap


class StackedLinear(nn.Module):
    """K ``nn.Linear`` layers in one, applied to a batch whose rows are K runs' batches one after
    another. ``weight`` is stored transposed, ``[K, in, out]`` (``bias`` as ``[K, out]``):
    measured on a 2-core Xeon, a batched matmul against a transposed view costs 1.3-1.8x as
    much, forward and backward (the gradient is copied back into the parameter's layout);
    ``StackedNet`` turns it back into the solo ``[out, in]`` wherever a state leaves."""

    def __init__(self, weight_t: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight_t)
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K = self.weight.size(0)
        xs = x.reshape(K, -1, x.size(-1))  # run-major rows: run k's are the k-th block
        y = (torch.baddbmm(self.bias.unsqueeze(1), xs, self.weight) if self.bias is not None
             else torch.bmm(xs, self.weight))
        return y.reshape(*x.shape[:-1], y.size(-1))


def linear_only(net: nn.Module) -> bool:
    """Every module of ``net`` that holds weights or buffers is an ``nn.Linear``: the fast path."""
    return all(isinstance(m, nn.Linear) for m in net.modules()
               if any(True for _ in m.parameters(recurse=False))
               or any(True for _ in m.buffers(recurse=False)))


class StackedNet(nn.Module):
    """K copies of one architecture, weights stacked; ``forward([K, B, ...]) -> [K, B, ...]``.

    ``self.net`` is a copy of the solo module whose parameters and buffers carry a leading K
    dimension, under the solo names and in the solo order: ``unstack(k)`` is run k's solo
    ``state_dict`` and an optimiser's per-parameter state lines up with a solo optimiser's.

    Fast path (``fast``): when all weights sit in Linear layers and the forward treats samples
    independently (the registered MLPs; pass ``fast=False`` for code one cannot vouch for),
    each Linear becomes a ``StackedLinear`` and the net's own forward runs once on the K runs'
    batches laid end to end: no overhead beyond a solo forward's. Otherwise ``vmap``.
    """

    def __init__(self, template: nn.Module, states: Sequence[dict[str, torch.Tensor]],
                 fast: bool = True) -> None:
        super().__init__()
        if not states:
            raise ValueError("a stack needs at least one run")
        self.K = len(states)
        self.fast = fast and linear_only(template)
        self.net = copy.deepcopy(template)
        # names (and positions in parameters()) of weights stored transposed (StackedLinear)
        self.transposed: set[str] = set()
        if self.fast:
            for name, m in list(self.net.named_modules()):
                if isinstance(m, nn.Linear):
                    w = torch.stack([s[f"{name}.weight"].detach().t() for s in states]
                                    ).contiguous()
                    self.transposed.add(f"{name}.weight" if name else "weight")
                    b = (torch.stack([s[f"{name}.bias"].detach() for s in states]).clone()
                         if m.bias is not None else None)
                    owner, _, leaf = name.rpartition(".")
                    parent = self.net.get_submodule(owner) if owner else self.net
                    if not leaf:  # the template is itself one Linear
                        self.net = StackedLinear(w, b)
                    else:
                        setattr(parent, leaf, StackedLinear(w, b))
            self.transposed_idx = [i for i, (n, _) in enumerate(self.net.named_parameters())
                                   if n in self.transposed]
            return
        self.transposed_idx = []
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
        # vmap's function runs on a weightless copy (meta tensors): the weights come in as
        # arguments. A plain attribute, so its (meta) parameters are not this module's.
        self.__dict__["_skeleton"] = copy.deepcopy(template).to("meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:
            y = self.net(x.reshape(-1, *x.shape[2:]))
            return y.reshape(self.K, -1, *y.shape[1:])
        params = dict(self.net.named_parameters())
        buffers = dict(self.net.named_buffers())
        skeleton = self.__dict__["_skeleton"]

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xi: torch.Tensor
                ) -> torch.Tensor:
            return functional_call(skeleton, (p, b), (xi,))

        return vmap(one)(params, buffers, x)

    def unstack(self, k: int) -> dict[str, torch.Tensor]:
        """Run k's weights and buffers as the solo module's ``state_dict``."""
        return {n: (t[k].t() if n in self.transposed else t[k]).detach().clone(
                    memory_format=torch.contiguous_format)
                for n, t in self.net.state_dict().items()}


def stack_optimizer_states(states: Sequence[dict[str, Any]], transposed: Sequence[int] = ()
                           ) -> dict[str, Any]:
    """K solo optimiser ``state_dict``s -> one for the stacked parameters (same indices).

    Per-parameter tensors are stacked (transposed for the parameters at ``transposed``,
    ``StackedNet.transposed_idx``); 0-dim ones (Adam's step count) are shared, since the runs
    of a stack step in lockstep. An empty state (a fresh optimiser) stays empty."""
    first = states[0]
    flip = set(transposed)
    out: dict[str, Any] = {"state": {}, "param_groups": copy.deepcopy(first["param_groups"])}
    for idx, entry in first["state"].items():
        merged = {}
        for key, v in entry.items():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                merged[key] = torch.stack([s["state"][idx][key].t() if idx in flip
                                           else s["state"][idx][key] for s in states]
                                          ).contiguous()
            else:
                merged[key] = copy.deepcopy(v)
        out["state"][idx] = merged
    return out


def unstack_optimizer_state(state: dict[str, Any], k: int, transposed: Sequence[int] = ()
                            ) -> dict[str, Any]:
    """Run k's slice of a stacked optimiser's ``state_dict``: a solo optimiser's own."""
    flip = set(transposed)

    def part(idx: int, v: Any) -> Any:
        if not (isinstance(v, torch.Tensor) and v.dim() > 0):
            return copy.deepcopy(v)
        return (v[k].t() if idx in flip else v[k]).clone(memory_format=torch.contiguous_format)

    return {"state": {idx: {key: part(idx, v) for key, v in entry.items()}
                      for idx, entry in state["state"].items()},
            "param_groups": copy.deepcopy(state["param_groups"])}
