"""Many seeds in one process: stacked training against solo runs, measured in the same run.

Two of the lab's real workloads, each trained both ways into temporary directories:
- **E1 over seeds**: the ``e1-mlp`` preset for ``--e1-seeds`` seeds (``--e1-limit`` images,
  ``--e1-epochs`` epochs), as solo runs one after another (``ganscope.training.loop.train``) and
  as one stack (``ganscope.training.stacked.train_stacked``), both with every core as threads;
  and the solo runs again with the data loaded once beforehand (training alone: a stack loads
  its data once, solo runs once each). Target (issue 20): the stack's throughput at least 4x
  the solo runs'.
- **E5's matrix**: 6 cells x ``--e5-seeds`` seeds at ``--steps`` generator steps, by
  ``ganscope.lab2d.matrix.run_matrix`` as ``ganscope lab2d`` runs it, ``stack=False`` (a
  process per run, one per core) and ``stack=True`` (a process per cell's stack). Targets: at
  least 4x faster, and under 90 s on 2 cores at --steps 2000.

Also reports how far each stacked run's final weights lie from its solo twin's (float
rounding: batched kernels). Writes JSON (``--out``) and prints a table; asserts nothing.

    .venv/bin/python benchmarks/stacked_speed.py [--only e1,e5] [--e1-seeds 8] [--e5-seeds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "stacked_speed.json"
sys.path.insert(0, str(HERE))

from ganscope.config import apply_overrides, load_config  # noqa: E402
from ganscope.domains import domain_for  # noqa: E402
from ganscope.environment import usable_cores  # noqa: E402
from ganscope.lab2d.matrix import LOSS_NAMES, OPTIMS, Cell, run_matrix  # noqa: E402
from ganscope.training.loop import train  # noqa: E402
from ganscope.training.run import Run, load_checkpoint  # noqa: E402
from ganscope.training.stacked import train_stacked  # noqa: E402
from train_speed import OtherLoad, atomic_write_json, cpu_model  # noqa: E402


def _gap(a: Run, b: Run) -> float:
    ca, cb = load_checkpoint(a.last_checkpoint), load_checkpoint(b.last_checkpoint)
    return max((ca["G"][k] - cb["G"][k]).abs().max().item() for k in ca["G"])


def bench_e1(seeds: int, limit: int, epochs: int) -> dict:
    over = [f"data.limit={limit}", f"train.epochs={epochs}", "train.save_generators=false",
            "train.n_samples=16"]
    out: dict = {"seeds": seeds, "images": limit, "epochs": epochs,
                 "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        def runs(where: str) -> list[Run]:
            return [Run.create(apply_overrides(load_config("e1-mlp"), [f"seed={s}", *over]),
                               Path(tmp) / where, f"s{s}") for s in range(seeds)]
        solo, warm, stacked = runs("solo"), runs("warm"), runs("stacked")
        cfg = warm[0].config()
        data = domain_for(cfg.data.name).load(cfg.data, cfg.seed)
        with OtherLoad() as load:
            t0 = time.perf_counter()
            for r in solo:  # as a user runs them: each loads its data
                train(r, progress=False, verbose=False)
            t1 = time.perf_counter()
            for r in warm:  # training alone: the data handed in, loaded once before
                train(r, dataset=data, progress=False, verbose=False)
            t2 = time.perf_counter()
            train_stacked(stacked, progress=False, verbose=False)  # loads its data once
            t3 = time.perf_counter()
        steps = load_checkpoint(solo[0].last_checkpoint)["step"] * seeds
        out.update(solo_s=round(t1 - t0, 2), solo_preloaded_s=round(t2 - t1, 2),
                   stacked_s=round(t3 - t2, 2),
                   solo_steps_per_s=round(steps / (t1 - t0), 1),
                   stacked_steps_per_s=round(steps / (t3 - t2), 1),
                   speedup=round((t1 - t0) / (t3 - t2), 2),
                   speedup_vs_preloaded=round((t2 - t1) / (t3 - t2), 2),
                   other_load=load.fraction,
                   max_weight_gap=max(_gap(a, b) for a, b in zip(solo, stacked)))
    return out


def bench_e5(seeds: int, steps: int, data: str, workers: int) -> dict:
    cells = [Cell(lo, op) for lo in LOSS_NAMES for op in OPTIMS]
    out: dict = {"cells": len(cells), "seeds": seeds, "steps": steps, "data": data,
                 "workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        walls = {}
        runs = {}
        with OtherLoad() as load:
            for mode in ("solo", "stacked"):
                t0 = time.perf_counter()
                runs[mode] = run_matrix(Path(tmp) / mode, data, cells, list(range(seeds)),
                                        steps, workers=workers, progress=False,
                                        stack=mode == "stacked")
                walls[mode] = time.perf_counter() - t0
        out.update(solo_s=round(walls["solo"], 1), stacked_s=round(walls["stacked"], 1),
                   speedup=round(walls["solo"] / walls["stacked"], 2), other_load=load.fraction,
                   stacked_runs=sum(r.meta()["execution"].get("stacked", 1) > 1
                                    for r in runs["stacked"]),
                   max_weight_gap=max(_gap(a, b) for a, b in zip(runs["solo"],
                                                                 runs["stacked"])))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="e1,e5")
    ap.add_argument("--e1-seeds", type=int, default=8)
    ap.add_argument("--e1-limit", type=int, default=60000,
                    help="E1 images (all 60000: 938 steps per epoch)")
    ap.add_argument("--e1-epochs", type=int, default=1)
    ap.add_argument("--e5-seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2000, help="E5: generator steps per run (cap)")
    ap.add_argument("--data", default="ring8")
    ap.add_argument("--workers", type=int, default=usable_cores())
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    only = {s.strip() for s in a.only.split(",")}
    res: dict = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__}
    rows = []
    if "e1" in only:
        e1 = res["e1"] = bench_e1(a.e1_seeds, a.e1_limit, a.e1_epochs)
        rows.append((f"E1 x {a.e1_seeds} seeds ({e1['threads']} threads)", e1["solo_s"],
                     e1["stacked_s"], e1["speedup"], "4x", e1["max_weight_gap"]))
        rows.append(("  the same, solo data preloaded", e1["solo_preloaded_s"],
                     e1["stacked_s"], e1["speedup_vs_preloaded"], "", e1["max_weight_gap"]))
    if "e5" in only:
        e5 = res["e5"] = bench_e5(a.e5_seeds, a.steps, a.data, a.workers)
        rows.append((f"E5 6 cells x {a.e5_seeds} seeds, {a.steps} steps", e5["solo_s"],
                     e5["stacked_s"], e5["speedup"], "4x, < 90 s", e5["max_weight_gap"]))
    atomic_write_json(a.out, res)
    print(f"{res['cpu']}, {res['cores']} cores, torch {res['torch']}")
    print(f"{'workload':<38} {'solo s':>8} {'stacked s':>10} {'speed-up':>9} {'target':>11} "
          f"{'max |dw|':>9}")
    for name, s, st, sp, tgt, gap in rows:
        print(f"{name:<38} {s:>8.1f} {st:>10.1f} {sp:>8.2f}x {tgt:>11} {gap:>9.2g}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
