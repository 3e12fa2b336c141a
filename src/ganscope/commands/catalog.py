"""``ganscope models``, ``show-model`` and ``presets``: what ships."""

from __future__ import annotations

import argparse
import json
import sys

from ganscope.config import load_config, preset_names, presets_dir
from ganscope.losses import LOSSES
from ganscope.models import MODELS, build_models


def cmd_models(a: argparse.Namespace) -> int:
    if a.json:
        print(json.dumps({n: MODELS.get(n).summary for n in MODELS.names()}, indent=2))
        return 0
    w = max(len(n) for n in MODELS.names())
    for n in MODELS.names():
        print(f"{n.ljust(w)}  {MODELS.get(n).summary}")
    return 0


def cmd_show_model(a: argparse.Namespace) -> int:
    G, D = build_models(a.name, a.z_dim, sigmoid=LOSSES.get(a.loss).sigmoid)
    print(G)
    print(D)
    return 0


def cmd_presets(a: argparse.Namespace) -> int:
    for name in preset_names():
        c = load_config(name)
        print(f"{name:14s} model={c.model.name} loss={c.loss.name} optim={c.optim.name} "
              f"lr={c.optim.lr:g} batch={c.train.batch_size} epochs={c.train.epochs}")
    print(f"(from {presets_dir()})", file=sys.stderr)
    return 0
