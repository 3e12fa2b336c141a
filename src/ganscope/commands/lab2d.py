"""``ganscope lab2d``: E5's loss x optimiser matrix on 2-D points, over seeds.

Handlers import their library modules when they run, so ``ganscope --help``, completion
and a quick command do not pay for the others (matplotlib, PIL and the modules over them);
cheap ones (a few ms, nothing third-party) are imported at the top.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from ganscope.errors import UserError
from ganscope.tables import format_table
from ganscope.training.run import runs_root


def cmd_lab2d(a: argparse.Namespace) -> int:
    from ganscope.experiments.sweep import parse_seeds
    from ganscope.lab2d.matrix import (
        LOSS_NAMES,
        OPTIMS,
        Cell,
        cell_gifs,
        matrix_figure,
        parse_list,
        run_matrix,
        summarize,
        table_rows,
        target_cap,
        write_tables,
    )

    losses = parse_list(a.losses, list(LOSS_NAMES), "loss")
    optims = parse_list(a.optims, list(OPTIMS), "optimiser")
    seeds = parse_seeds(a.seeds)
    if a.steps is not None and a.steps < 1:
        raise UserError("--steps must be at least 1")
    if a.seeds.strip().isdigit() and int(a.seeds) > 0:  # once a count: say what it means now
        n = int(a.seeds)
        print(f"note: --seeds {n} runs the one seed {n}; for {n} seeds write --seeds "
              f"{'0' if n == 1 else f'0-{n - 1}'}", file=sys.stderr)
    if a.workers is not None and a.workers < 1:
        raise UserError("--workers must be at least 1")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", a.data)[:60]
    out = Path(a.out) if a.out else runs_root(a.runs_dir) / f"lab2d-{safe}"
    cells = [Cell(lo, op) for lo in losses for op in optims]
    t0 = time.perf_counter()
    cap = a.steps if a.steps is not None else target_cap(a.data, seeds[0], a.setup,
                                                          a.overrides)
    runs = run_matrix(out, a.data, cells, seeds, cap, a.setup, a.workers,
                      extra=a.overrides, stack=a.stack)
    summary = summarize(runs)
    summary.update({"data": a.data, "steps": cap, "setup": a.setup, "seeds": len(seeds),
                    "seed_list": seeds, "seconds": round(time.perf_counter() - t0, 1)})
    paths = write_tables(out, summary)
    fig = matrix_figure(runs, out, seed=seeds[0])
    gifs = cell_gifs(runs, out)
    head, rows = table_rows(summary)
    print(format_table(head, rows))
    print(f"mean ± std over {len(seeds)} seeds of each run's last evaluation, {a.setup} "
          f"settings; each run trains until its evaluations stop improving, at most {cap} "
          "generator steps (converged: seeds stopped by that rule); * = best converged cell")
    print(summary["verdict"])
    print(f"wrote {out}: {', '.join(p.name for p in paths)}, {fig.name}, {len(gifs)} GIFs, "
          f"runs/ ({len(runs)} runs) in {summary['seconds']:.0f} s")
    return 0
