"""What flushing subnormal floats buys a training step (train.flush_denormals), on E5's cells.

Small nets with small gradients leave optimiser state in the subnormal range, which x86 cores
compute in microcode: in E5's WGAN + RMSprop cell, 30 % of D's RMSprop ``square_avg`` and 10 % of
G's were subnormal after 11,000 steps (measured on the benchmark's runs, 5 seeds stacked). A fresh
run has none, so this benchmark plants that state: it trains a stack of seeds one epoch, sets the
measured fractions of each run's second-moment state (RMSprop ``square_avg``, Adam
``exp_avg_sq``), its smallest entries, to subnormal values (1e-42..1e-39, the range dead units'
entries decay through), and resumes copies of it for ``--epochs`` with flushing on and off,
interleaved ``--repeats`` times.
Per cell: G steps per second both ways (best of the repeats) and the speed-up. Writes JSON
(``--out``) and prints a table; asserts nothing.

    .venv/bin/python benchmarks/denormals_speed.py [--cells wgan-rmsprop,wgan-adam] \\
        [--seeds 0-4] [--epochs 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "denormals_speed.json"
sys.path.insert(0, str(HERE))

from ganscope.config import apply_overrides, load_config, save_yaml  # noqa: E402
from ganscope.experiments.sweep import parse_seeds  # noqa: E402
from ganscope.io import atomic_torch_save, atomic_write_text  # noqa: E402
from ganscope.training.run import Run  # noqa: E402
from ganscope.training.stacked import train_stacked  # noqa: E402
from train_speed import OtherLoad, atomic_write_json, cpu_model  # noqa: E402

SECOND_MOMENT = ("square_avg", "exp_avg_sq")  # RMSprop's, Adam's
FRACTION = {"opt_d": 0.30, "opt_g": 0.10}  # measured, see the docstring


def plant(ck_path: Path, seed: int) -> dict[str, float]:
    """Set FRACTION of each optimiser's second-moment entries to subnormal values, in place."""
    ck = torch.load(ck_path, weights_only=True)
    g = torch.Generator().manual_seed(seed)
    got = {}
    for opt, frac in FRACTION.items():
        n = sub = 0
        for state in ck[opt]["state"].values():
            for key in SECOND_MOMENT:
                if key in state:
                    v = state[key]
                    # the entries that drift there are those whose gradients are ~0 (dead
                    # units), the smallest ones; a random pick would be refilled at once
                    mask = v <= torch.quantile(v.flatten().double()[:1 << 24], frac).item()
                    tiny = 10 ** (-42 + 3 * torch.rand(v.shape, generator=g))
                    v[mask] = tiny[mask].to(v.dtype)
                    n += v.numel()
                    sub += int(((v != 0) & (v.abs() < torch.finfo(v.dtype).tiny)).sum())
        got[opt] = sub / max(n, 1)
    atomic_torch_save(ck, ck_path)
    return got


def _step(run: Run) -> int:
    return int(torch.load(run.last_checkpoint, weights_only=True)["step"])


def stack(root: Path, preset: str, seeds: list[int], extra: list[str]) -> list[Run]:
    runs = []
    for s in seeds:
        cfg = apply_overrides(load_config(preset), [f"seed={s}", *extra]).validate()
        runs.append(Run.create(cfg, root, f"{preset}-s{s}"))
    return runs


def resume_copy(src: Path, dst: Path, epochs: int, flush: bool) -> list[Run]:
    shutil.copytree(src, dst)
    runs = sorted((Run(p) for p in dst.iterdir()), key=lambda r: r.name)
    for r in runs:
        cfg = r.config()
        cfg.train.epochs = epochs
        cfg.train.flush_denormals = flush
        atomic_write_text(r.config_path, save_yaml(cfg))
    return runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="wgan-rmsprop,wgan-adam,wgan-gp-rmsprop")
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--epochs", type=int, default=3, help="epochs timed after the planted one")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    seeds = parse_seeds(a.seeds)
    extra = ["train.epochs=1", "eval.every=0", "eval.patience=0", "train.n_samples=64",
             "train.save_generators=false", f"train.threads={a.threads}"]
    cells = {}
    with tempfile.TemporaryDirectory() as tmp, OtherLoad() as load:
        for cell in a.cells.split(","):
            base = Path(tmp) / cell / "base"
            runs = stack(base, f"e5-{cell}", seeds, extra)
            train_stacked(runs, progress=False, verbose=False)
            start = _step(runs[0])
            planted = [plant(r.last_checkpoint, i) for i, r in enumerate(runs)]
            rates: dict[str, list[float]] = {"on": [], "off": []}
            steps = 0
            for k in range(a.repeats):
                for mode in (("on", "off") if k % 2 == 0 else ("off", "on")):
                    rs = resume_copy(base, Path(tmp) / cell / f"{mode}{k}", 1 + a.epochs,
                                     mode == "on")
                    t0 = time.perf_counter()
                    train_stacked(rs, resume=True, progress=False, verbose=False)
                    dt = time.perf_counter() - t0
                    steps = _step(rs[0]) - start
                    rates[mode].append(steps / dt if steps else float("nan"))
            cells[cell] = {"planted_subnormal": planted, "steps_timed": steps,
                           "steps_per_s_on": max(rates["on"]), "steps_per_s_off": max(rates["off"]),
                           "all_on": rates["on"], "all_off": rates["off"], "planted_at_step": start}
            cells[cell]["speedup"] = cells[cell]["steps_per_s_on"] / cells[cell]["steps_per_s_off"]
    result = {"benchmark": "denormals_speed", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": {"cpu": cpu_model(), "cores": os.cpu_count()}, "seeds": seeds,
              "epochs": a.epochs, "repeats": a.repeats, "threads": a.threads,
              "torch": torch.__version__, "other_load": load.fraction, "cells": cells}
    atomic_write_json(a.out, result)
    print(f"{'cell':<18} {'steps/s flushed':>16} {'steps/s not':>12} {'speed-up':>9}")
    for name, c in cells.items():
        print(f"{name:<18} {c['steps_per_s_on']:>16.1f} {c['steps_per_s_off']:>12.1f} "
              f"{c['speedup']:>8.2f}x")
    print(f"({len(seeds)} seeds stacked, {a.threads} thread(s), {cpu_model()}; other load "
          f"{100 * load.fraction:.0f} %) -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
