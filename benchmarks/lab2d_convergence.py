"""E5 to convergence: every cell of the 2-D matrix at its published settings, over seeds.

Runs ``ganscope.lab2d.matrix.run_matrix`` exactly as ``ganscope lab2d`` does (plateau rule on,
``--steps`` the cap) and reports per cell: seeds converged, generator steps trained, modes
covered, % high quality and reverse KL (mean ± std over seeds), plus the issue's target:
WGAN-GP + Adam on ring8 covering 8 of 8 modes with at least 90 % HQ in every seed. Writes JSON
(``--out``), the matrix's own tables and figure (``--dir``, kept), and prints a table; asserts
nothing.

    .venv/bin/python benchmarks/lab2d_convergence.py [--seeds 0-4] [--steps 20000] \\
        [--data ring8] [--workers 2] [--dir runs/bench-lab2d]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "lab2d_convergence.json"
sys.path.insert(0, str(HERE))

from ganscope.environment import usable_cores  # noqa: E402
from ganscope.errors import UserError  # noqa: E402
from ganscope.experiments.sweep import parse_seeds  # noqa: E402
from ganscope.lab2d.matrix import (  # noqa: E402
    LOSS_NAMES,
    OPTIMS,
    Cell,
    matrix_figure,
    run_matrix,
    run_outcome,
    summarize,
    target_cap,
    write_tables,
)
from train_speed import OtherLoad, atomic_write_json, cpu_model  # noqa: E402

TARGET_CELL, TARGET_MODES, TARGET_HQ = "wgan-gp-adam", 8, 0.90


def _ms(c: dict, k: str) -> tuple[float, float]:
    v = c["final"].get(k)
    return (v["mean"], v["std"]) if v else (math.nan, math.nan)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ring8")
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--steps", type=int, default=None,
                    help="the cap, generator steps (default: the target's, as ganscope lab2d)")
    ap.add_argument("--cells", default=",".join(f"{lo}-{op}" for lo in LOSS_NAMES
                                                for op in OPTIMS))
    ap.add_argument("--workers", type=int, default=usable_cores())
    ap.add_argument("--dir", type=Path, default=Path("runs") / "bench-lab2d-convergence")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for every cell (as lab2d --set), e.g. tech.ema=0.999")
    a = ap.parse_args(argv)
    seeds = parse_seeds(a.seeds)
    cells = []
    for name in a.cells.split(","):
        loss, _, optim = name.strip().rpartition("-")
        cells.append(Cell(loss, optim))
    with OtherLoad() as load:
        t0 = time.perf_counter()
        try:
            if a.steps is None:
                a.steps = target_cap(a.data, seeds[0], extra=a.overrides)
            runs = run_matrix(a.dir, a.data, cells, seeds, a.steps, workers=a.workers,
                              progress=False, extra=a.overrides)
        except UserError as e:  # bad data or config; or runs interrupted (their checkpoints
            # are saved: the same command resumes them), as `ganscope lab2d` says it
            print(f"error: {e}", file=sys.stderr)
            return 2
        wall = time.perf_counter() - t0
    summary = summarize(runs)
    summary.update({"data": a.data, "steps": a.steps, "seeds": len(seeds), "seed_list": seeds})
    write_tables(a.dir, summary)
    fig = matrix_figure(runs, a.dir, seed=seeds[0])
    per_run = {}
    for r in runs:
        recs = r.read_metrics()
        m = recs[-1]["metrics"] if recs else {}
        per_run[r.name] = {**run_outcome(r), **{k: m.get(k) for k in (
            "modes_covered", "n_modes", "hq_fraction", "reverse_kl", "sliced_wasserstein")}}
    tgt = [v for k, v in per_run.items() if k.startswith(TARGET_CELL + "-s")]
    met = bool(tgt) and all(v["modes_covered"] == TARGET_MODES
                            and v["hq_fraction"] >= TARGET_HQ for v in tgt)
    result = {
        "benchmark": "lab2d_convergence", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "data": a.data, "seeds": seeds, "cap_steps": a.steps, "workers": a.workers,
        "overrides": a.overrides,
        "wall_s": round(wall, 1), "other_load": load.fraction,
        "target": {"cell": TARGET_CELL, "modes": TARGET_MODES, "hq": TARGET_HQ,
                   "met": met if a.data == "ring8" else None},
        "runs": per_run, "summary": summary, "matrix": str(fig),
    }
    atomic_write_json(a.out, result)
    print(f"lab2d_convergence: {len(cells)} cells x {len(seeds)} seeds on {a.data}, cap "
          f"{a.steps} G steps, plateau rule on, {a.workers} workers on {cpu_model()}")
    print(f"{'cell':17s} {'converged':>9s} {'steps':>14s} {'modes':>11s} {'% HQ':>12s} "
          f"{'reverse KL':>14s}")
    for name, c in summary["cells"].items():
        mo, hq, kl = _ms(c, "modes_covered"), _ms(c, "hq_fraction"), _ms(c, "reverse_kl")
        st = c["steps"]
        print(f"{name:17s} {c['converged']:>5d}/{c['seeds']:<3d} "
              f"{st['mean']:>7.0f} ± {st['std']:<4.0f} {mo[0]:>5.1f} ± {mo[1]:<3.1f} "
              f"{100 * hq[0]:>5.1f} ± {100 * hq[1]:<4.1f} {kl[0]:>6.3f} ± {kl[1]:<5.3f}")
    print(summary["verdict"])
    if summary["winners"]:
        print("winners (converged cells): " + ", ".join(f"{k}: {v}" for k, v in
                                                        summary["winners"].items()))
    if a.data == "ring8" and tgt:
        print(f"target {TARGET_CELL}: {TARGET_MODES}/8 modes and >= {100 * TARGET_HQ:.0f}% HQ "
              f"in every seed: {'met' if met else 'NOT met'} (per seed: " + ", ".join(
                  f"{v['modes_covered']} modes {100 * v['hq_fraction']:.0f}%" for v in tgt) + ")")
    print(f"wall {wall:.0f} s, other processes' CPU share {load.fraction:.0%}; wrote {a.out}, "
          f"{a.dir}/table.md, {fig}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
