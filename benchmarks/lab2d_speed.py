"""How long the 2-D lab's matrix takes: 6 cells x N seeds at default length, one process per core.

Runs ``ganscope.lab2d.matrix.run_matrix`` exactly as ``ganscope lab2d`` does (into a temporary
directory), and reports the wall time of the whole matrix, plus each run's own training time
(from its meta.json) per cell, and the parallel efficiency (sum of run times / (wall x workers)).
The issue's target: 6 cells x 3 seeds on ring8 in under 5 minutes on 2 cores. Writes JSON
(``--out``) and prints a table; asserts nothing.

    .venv/bin/python benchmarks/lab2d_speed.py [--seeds 3] [--steps 2000] [--data ring8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "lab2d_speed.json"
sys.path.insert(0, str(HERE))

from ganscope.environment import usable_cores  # noqa: E402
from ganscope.lab2d.matrix import LOSS_NAMES, OPTIMS, Cell, run_matrix, summarize  # noqa: E402
from train_speed import OtherLoad, atomic_write_json, cpu_model  # noqa: E402


def _seconds(meta: dict) -> float:
    t0 = dt.datetime.fromisoformat(meta["start_time"])
    t1 = dt.datetime.fromisoformat(meta["end_time"])
    return (t1 - t0).total_seconds()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ring8")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    ap.add_argument("--workers", type=int, default=usable_cores())
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    cells = [Cell(lo, op) for lo in LOSS_NAMES for op in OPTIMS]
    with tempfile.TemporaryDirectory() as tmp, OtherLoad() as load:
        t0 = time.perf_counter()
        runs = run_matrix(Path(tmp), a.data, cells, list(range(a.seeds)), a.steps,
                          workers=a.workers, progress=False)
        wall = time.perf_counter() - t0
        per_run = {r.name: _seconds(r.meta()) for r in runs}
        summary = summarize(runs)
    per_cell = {c.name: [v for k, v in per_run.items() if k.startswith(c.name + "-s")]
                for c in cells}
    result = {
        "benchmark": "lab2d_speed", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "data": a.data, "seeds": a.seeds, "steps": a.steps, "workers": a.workers,
        "wall_s": wall, "target_s": 300.0, "meets_target": wall < 300.0,
        "run_s": per_run, "parallel_efficiency": sum(per_run.values()) / (wall * a.workers),
        "other_load": load.fraction, "summary": summary,
    }
    atomic_write_json(a.out, result)
    print(f"lab2d_speed: {len(cells)} cells x {a.seeds} seeds, {a.steps} G steps, {a.data}, "
          f"{a.workers} workers on {cpu_model()}")
    print(f"{'cell':18s} {'s per run (mean)':>17s}")
    for name, v in per_cell.items():
        print(f"{name:18s} {sum(v) / len(v):17.1f}")
    print(f"matrix wall time {wall:.1f} s (target < 300 s: "
          f"{'met' if wall < 300 else 'NOT met'}), parallel efficiency "
          f"{result['parallel_efficiency']:.0%}, other processes' CPU share {load.fraction:.0%}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
