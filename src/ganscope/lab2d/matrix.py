"""The 2-D lab's matrix: objectives x optimisers x seeds, trained by the one loop, compared.

Each cell x seed is an ordinary run (its own run directory under ``OUT/runs/``), trained by
``ganscope.training.loop.train`` in a pool of worker processes (one per core, one thread each:
these nets are too small for intra-op threads to pay; ``ganscope.experiments.runner``, shared
with ``ganscope sweep``). The comparison reads only those run directories: final metrics per
run, mean +- std over seeds per cell, the spread over the last quarter of training as
stability, and which cell wins on each metric.

Convergence, not a fixed guess: a cell trains until its evaluations stop improving (the loop's
``eval.patience`` rule, every ``EVAL_STEPS`` generator steps), with ``--steps`` as the cap. A
fixed length compares a finished method with an unfinished one (WGAN-GP at 2000 steps looked
like the worst cell while still climbing). The table says per cell how many seeds converged and
after how many steps; a winner is named only among cells whose every seed converged, and the
summary's ``verdict`` says when the comparison is inconclusive.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganscope.config import RunConfig, apply_overrides, load_config
from ganscope.data.points import load_points
from ganscope.domains import load_dataset
from ganscope.domains.points.evaluate import generate_points
from ganscope.errors import ConfigError
from ganscope.experiments.runner import execute, plan_runs, raise_on_failure
from ganscope.experiments.stats import mean_std as _mean_std
from ganscope.io import atomic_write_bytes, atomic_write_text
from ganscope.losses import build_loss
from ganscope.metrics.labels import lower_is_better, metric_keys, short_label, spread_text
from ganscope.render import figure_png
from ganscope.training.run import Run, build_nets, generator_state, load_checkpoint

LOSS_NAMES = {"gan": "bce", "wgan": "wgan", "wgan-gp": "wgan-gp"}
OPTIMS = ("adam", "rmsprop")
SETUPS = ("literature", "same")

# Each cell's literature settings live in its preset, configs/e5-<loss>-<optim>.yaml, with its
# source (WGAN: Arjovsky et al. 2017; WGAN-GP: the toy script of Gulrajani et al. 2017; GAN:
# DCGAN's Adam). The seed's own set-up instead used one optimiser setting for every objective:
SAME = ["optim.lr=1e-4", "optim.betas=[0.9,0.999]", "train.n_critic=1", "loss.clip=0.01",
        "loss.gp_lambda=10"]
# The plateau rule of the matrix (the loop's eval.patience; what it watches, eval.plateau and
# eval.min_delta, is in the presets): an evaluation every EVAL_STEPS generator steps; a run
# stops once the best of the last PATIENCE evaluations (3000 steps) improved none of modes
# covered, sliced W1 and % HQ by more than 2 % on the best before them. % HQ is watched since
# the EMA generator: WGAN-GP's last 10 points of HQ come slowly (the trails between modes
# thinning, ~1 point per 1000 steps), long after modes and W1 have settled; a collapsed GAN
# whose HQ creeps up goes on to the cap and is reported as such. CAP_STEPS: the default cap,
# where every cell on ring8 converges in every seed (measured over seeds 0-4 with
# benchmarks/lab2d_convergence.py: the latest, WGAN + Adam, at 50,592 steps; WGAN + RMSprop
# 44,640; the GAN and WGAN-GP cells by 25,300). Converged runs stop long before it.
# PATIENCE is ring8's (8 modes); a target with more modes gets proportionally more
# (matrix_patience): on grid25 (25 modes) a WGAN-GP + Adam seed sat at 0-1 modes with its points
# spread over the square for ~17,000 steps, then rose to 25 modes, while two siblings that sat
# the same way were stopped as converged by 6 evaluations; one of them (Adam, seed 2), run
# again without the rule, had 1 mode and 5 % HQ at 12,400 steps, 21 modes and 42 % at 30,000.
# The cap grows with the target's modes as the patience does (matrix_cap): CAP_STEPS per
# PATIENCE_MODES modes, 187,500 for grid25's 25. Measured there over seeds 0-4 with the same
# benchmark, continued from a 60,000 cap (at which no WGAN-GP seed had converged) to 120,000 and
# the four runs still capped there to 180,000: every seed of the GAN and WGAN-GP cells converged,
# the latest (GAN + RMSprop seed 2) at 133,964 steps; the README's E5 section has the matrix.
EVAL_STEPS = 500
PATIENCE = 6
PATIENCE_MODES = 8
CAP_STEPS = 60000

# the point metrics; labels, formats and which way is better: ganscope.metrics.labels
TABLE_METRICS: tuple[str, ...] = metric_keys("points")


@dataclass(frozen=True)
class Cell:
    loss: str
    optim: str

    @property
    def name(self) -> str:
        return f"{self.loss}-{self.optim}"


def parse_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise ConfigError(f"unknown {what} {bad[0]!r}: choose from {', '.join(allowed)}" if bad
                          else f"give at least one {what}: {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def cell_config(data: str, cell: Cell, seed: int, steps: int, setup: str = "literature",
                eval_points: int = 10, extra: Sequence[str] = (),
                patience: int | None = None) -> RunConfig:
    """The run config of one cell and seed: at most ``steps`` generator steps, snapshots at the
    evaluations. Without ``patience``: a fixed length, evaluated ~``eval_points`` times (the
    live lab's lanes). With it (the matrix): an evaluation every ~``EVAL_STEPS`` steps and the
    plateau rule on (``eval.patience``), ``steps`` being the cap; ``--set eval.patience=0`` in
    ``extra`` gives a fixed length again."""
    if setup not in SETUPS:
        raise ConfigError(f"unknown setup {setup!r}: choose literature or same")
    over = [f"data.name={data}", f"seed={seed}", *(SAME if setup == "same" else [])]
    cfg = apply_overrides(load_config(f"e5-{cell.name}"), [*over, *extra])
    # a file holds its own number of points (data.n_points draws only the built-in shapes)
    n = (len(load_points(cfg.data.name, cfg.data.n_points, seed))
         if cfg.data.name.strip().startswith("points:") else cfg.data.n_points)
    if cfg.data.limit is not None:
        n = min(n, cfg.data.limit)
    n_batches = math.ceil(n / cfg.train.batch_size)
    per_epoch = max(1, n_batches // cfg.train.n_critic)
    epochs = max(1, math.ceil(steps / per_epoch))
    if patience is None:
        every = max(1, epochs // eval_points)
    else:
        # every ~EVAL_STEPS steps, and at least ~eval_points evaluations in a short run
        every = max(1, min(round(EVAL_STEPS / per_epoch), epochs // eval_points))
        if not any(e.strip().startswith("eval.patience=") for e in extra):
            cfg.eval.patience = patience
    cfg.train.epochs = epochs
    cfg.train.sample_every = every
    cfg.eval.every = every
    cfg.preset = f"lab2d-{cell.name}"
    return cfg.validate()


def _target_modes(dataset: Any) -> int:
    """The modes of a loaded point data set's target (its own, or those found in a file); 0
    for a target without modes (moons, a swiss roll)."""
    ps = getattr(dataset, "point_set", None)
    return 0 if ps is None or ps.modes is None else len(ps.modes)


def matrix_patience(dataset: Any) -> int:
    """The plateau rule's patience (evaluations) for a loaded point data set: ``PATIENCE`` per
    ``PATIENCE_MODES`` modes of the target, never less than ``PATIENCE``; a target without
    modes gets ``PATIENCE``."""
    return max(PATIENCE, round(PATIENCE * _target_modes(dataset) / PATIENCE_MODES))


def matrix_cap(dataset: Any) -> int:
    """The default cap (generator steps) for a loaded point data set: ``CAP_STEPS`` per
    ``PATIENCE_MODES`` modes of the target (7,500 a mode), never less than ``CAP_STEPS``: ring8
    and targets without modes 60,000, grid25 187,500. Why it grows with the modes: each mode
    has to be found and filled, and on grid25 the converging cells needed up to ~134,000
    steps against ring8's ~51,000 (see CAP_STEPS)."""
    return max(CAP_STEPS, CAP_STEPS * _target_modes(dataset) // PATIENCE_MODES)


def _target(data: str, cell: Cell, seed: int, setup: str, extra: Sequence[str]) -> Any:
    return load_dataset(cell_config(data, cell, seed, CAP_STEPS, setup, extra=extra,
                                    patience=PATIENCE).data, seed)


def target_cap(data: str, seed: int = 0, setup: str = "literature",
               extra: Sequence[str] = ()) -> int:
    """The default cap of a matrix on ``data`` (``matrix_cap`` of its target, as its first
    seed loads it), for a command to say before its runs."""
    return matrix_cap(_target(data, Cell(next(iter(LOSS_NAMES)), OPTIMS[0]), seed, setup, extra))


def matrix_configs(out: Path, data: str, cells: list[Cell], seeds: list[int],
                   steps: int | None, setup: str = "literature", extra: Sequence[str] = ()
                   ) -> list[tuple[Path, RunConfig]]:
    """Every cell x seed's run directory and config, the plateau rule's patience sized to the
    target (``matrix_patience``; ``--set eval.patience=N`` in ``extra`` wins), and the cap
    ``steps``, or with None the target's (``matrix_cap``). Loads the data first, so a bad spec
    or file fails before anything is written."""
    dataset = _target(data, cells[0], seeds[0], setup, extra)
    patience = matrix_patience(dataset)
    if steps is None:
        steps = matrix_cap(dataset)
    return [(out / "runs" / f"{cell.name}-s{seed}",
             cell_config(data, cell, seed, steps, setup, extra=extra, patience=patience))
            for cell in cells for seed in seeds]


def run_matrix(out: Path, data: str, cells: list[Cell], seeds: list[int], steps: int | None,
               setup: str = "literature", workers: int | None = None,
               progress: bool = True, extra: Sequence[str] = (), stack: bool = True
               ) -> list[Run]:
    """Create and train every cell x seed under ``out/runs``; finished runs are kept and
    interrupted ones resumed, so a matrix started again only trains what is missing.
    ``steps``: the cap, None for the target's default (``matrix_cap``).
    ``extra``: --set overrides applied to every cell; ``stack``: a cell's seeds train as one
    stacked model (``ganscope.training.stacked``)."""
    entries = matrix_configs(out, data, cells, seeds, steps, setup, extra)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_runs(entries)
    raise_on_failure(execute(plan.todo, "local", workers=workers, desc="lab2d runs",
                             progress=progress, stack=stack))
    return plan.runs


# --- comparison ---------------------------------------------------------------------------------


def run_outcome(run: Run) -> dict[str, Any]:
    """How a run ended: ``converged`` (its plateau rule stopped it), or not (it hit the cap, or
    it ran a fixed length without the rule), after how many generator steps, of what cap."""
    meta = run.meta()
    stopped = meta.get("stopped_early") or {}
    cap = int(meta.get("epochs_planned", 0)) * int(meta.get("steps_per_epoch", 0))
    return {"converged": stopped.get("reason") == "plateau",
            "steps": int(meta.get("step", stopped.get("step", 0)) or 0), "cap": cap,
            "rule": run.config().eval.patience > 0}


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Per cell: mean/std over seeds of the final metrics, the late-training spread, how many
    seeds converged and after how many steps; winners among the converged cells only, and a
    ``verdict`` that says when the comparison is inconclusive."""
    by_cell: dict[str, list[Run]] = {}
    for r in runs:
        by_cell.setdefault(r.config().preset.removeprefix("lab2d-"), []).append(r)
    cells: dict[str, Any] = {}
    for name, rs in by_cell.items():
        finals: dict[str, list[float]] = {k: [] for k in TABLE_METRICS}
        spread: dict[str, list[float]] = {k: [] for k in TABLE_METRICS}
        n_modes: set[int] = set()
        for r in rs:
            recs = sorted(r.read_metrics(), key=lambda x: x["epoch"])
            if not recs:
                continue
            if "n_modes" in recs[-1]["metrics"]:
                n_modes.add(int(recs[-1]["metrics"]["n_modes"]))
            for k in TABLE_METRICS:
                if k in recs[-1]["metrics"]:
                    finals[k].append(recs[-1]["metrics"][k])
                    late = [x["metrics"][k] for x in recs[-max(2, len(recs) // 4):]]
                    spread[k].append(statistics.pstdev(late) if len(late) > 1 else 0.0)
        outcomes = [run_outcome(r) for r in rs]
        steps = [float(o["steps"]) for o in outcomes]
        cells[name] = {
            "seeds": len(rs),
            "n_modes": n_modes.pop() if len(n_modes) == 1 else None,
            "converged": sum(o["converged"] for o in outcomes),
            "rule": all(o["rule"] for o in outcomes),
            "cap": max((o["cap"] for o in outcomes), default=0),
            "steps": dict(zip(("mean", "std"), _mean_std(steps))),
            "final": {k: dict(zip(("mean", "std"), _mean_std(v))) for k, v in finals.items()
                      if v},
            "late_spread": {k: _mean_std(v)[0] for k, v in spread.items() if v},
        }
    done = [c for c, v in cells.items() if v["converged"] == v["seeds"]]
    winners = {}
    for k in TABLE_METRICS:
        higher = not lower_is_better(k)
        have = {c: cells[c]["final"][k]["mean"] for c in done
                if k in cells[c]["final"] and math.isfinite(cells[c]["final"][k]["mean"])}
        if len(set(have.values())) > 1:  # a tie across all cells names no winner
            best = (max if higher else min)(have.values())
            tied = [c for c, v in have.items() if v == best]
            winners[k] = tied[0] if len(tied) == 1 else " = ".join(tied)
    return {"cells": cells, "winners": winners, "converged_cells": done,
            "verdict": verdict(cells, done)}


def verdict(cells: dict[str, Any], done: list[str]) -> str:
    """One sentence: is the comparison conclusive, and if not, which cells keep it open."""
    open_ = [c for c in cells if c not in done]
    if not open_:
        return ("every cell converged in all its seeds: the winners compare finished runs")
    what = ", ".join(
        f"{c} ({cells[c]['converged']}/{cells[c]['seeds']} seeds converged)" if cells[c]["rule"]
        else f"{c} (fixed length, eval.patience=0: convergence not checked)" for c in open_)
    if len(done) < 2:
        first = f"only {done[0]} converged" if done else "no cell converged"
        return (f"inconclusive: {first} in all its seeds ({what}); no winner is named: raise "
                "the cap (--steps)")
    return (f"inconclusive for {what}: winners are named among the converged cells only "
            f"({', '.join(done)}); raise the cap (--steps) to compare the others")


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    keys = [k for k in TABLE_METRICS if any(k in c["final"] for c in summary["cells"].values())]
    head = ["cell", "seeds", "converged", "steps", *[short_label(k) for k in keys],
            f"late spread ({short_label('sliced_wasserstein')})"]
    rows = []
    for name, c in summary["cells"].items():
        cells = [spread_text(k, c["final"][k]["mean"], c["final"][k]["std"]) if k in c["final"]
                 else "-" for k in keys]
        cells = [v + (" *" if name in summary["winners"].get(k, "").split(" = ") else "")
                 for v, k in zip(cells, keys)]
        sp = c["late_spread"].get("sliced_wasserstein", math.nan)
        conv = c.get("converged", 0)
        status = (f"{conv}/{c['seeds']}" if conv == c["seeds"]
                  else f"{conv}/{c['seeds']} (cap {c.get('cap', 0)})")
        st = c.get("steps", {"mean": math.nan, "std": math.nan})
        steps = (f"{st['mean']:.0f}" + (f" ± {st['std']:.0f}" if math.isfinite(st["std"])
                                        else "")) if math.isfinite(st["mean"]) else "-"
        rows.append([name, str(c["seeds"]), status, steps, *cells,
                     "-" if not math.isfinite(sp) else f"{sp:.3g}"])
    return head, rows


def write_tables(out: Path, summary: dict[str, Any]) -> list[Path]:
    head, rows = table_rows(summary)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(head)
    w.writerows(rows)
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md.append("")
    md.append("mean ± std over seeds of the final evaluation; converged: seeds whose plateau "
              "rule stopped them (else the cap in generator steps); steps: generator steps "
              "trained; * marks the best converged cell per metric.")
    md.append("")
    md.append(summary.get("verdict", ""))
    for k, cell in summary["winners"].items():
        md.append(f"- {short_label(k)}: {cell}")
    paths = [out / "table.csv", out / "table.md", out / "summary.json"]
    atomic_write_text(paths[0], buf.getvalue())
    atomic_write_text(paths[1], "\n".join(md) + "\n")
    atomic_write_text(paths[2], json.dumps(summary, indent=2) + "\n")
    return paths


# --- figures ------------------------------------------------------------------------------------


def _load_nets(run: Run):
    cfg = run.config()
    sigmoid = build_loss(cfg.loss).sigmoid
    G, D = build_nets(run, cfg, sigmoid)
    ck = load_checkpoint(run.last_checkpoint)
    G.load_state_dict(generator_state(ck))  # the EMA generator when the run kept one
    D.load_state_dict(ck["D"])
    return G.eval(), D.eval(), sigmoid


def matrix_figure(runs: list[Run], out: Path, seed: int | None = None) -> Path:
    """Final point clouds of one seed per cell over the target, D's surface underneath."""
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from matplotlib.figure import Figure

    from ganscope.domains.points.plots import draw_cell, plot_extent

    by_cell: dict[str, Run] = {}
    for r in runs:
        cfg = r.config()
        if seed is None or cfg.seed == seed:
            by_cell.setdefault(cfg.preset.removeprefix("lab2d-"), r)
    names = list(by_cell)
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    first = by_cell[names[0]].config()
    data = load_dataset(first.data, first.seed)
    target, ps = data.images.numpy(), data.point_set
    found = ps is not None and ps.modes_found  # a file's modes: drawn with their HQ ellipses
    ext = plot_extent(target)
    for ax, name in zip(axes, names):
        run = by_cell[name]
        cfg = run.config()
        G, D, sigmoid = _load_nets(run)
        fake = generate_points(G, cfg.model.z_dim, 1000, 0)
        recs = run.read_metrics()
        m = recs[-1]["metrics"] if recs else {}
        o = run_outcome(run)
        sub = (f"\n{'converged' if o['converged'] else 'hit the cap'} at {o['steps']} steps"
               if o["rule"] else f"\n{o['steps']} steps")
        if "modes_covered" in m:
            sub += f", {m['modes_covered']}/{m['n_modes']} modes, {100 * m['hq_fraction']:.0f}% HQ"
        draw_cell(ax, target, fake, D=D, probability=sigmoid, extent=ext,
                  title=f"{name} (seed {cfg.seed}){sub}",
                  modes=ps.modes if found else None, covs=ps.covs if found else None)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    lines = [f"{first.data.name}: final points (orange) over the target (grey)",
             *(["found modes: green, with their 3-sigma HQ ellipses"] if found else []),
             "D / critic surface underneath (red: scored real)",
             "dashed: the target's frame, where a panel is widened to show its points"]
    width = 40 + 45 * (ncols - 1)  # characters that fit over ncols panels
    fig.suptitle("\n".join(textwrap.fill(t, width) for t in lines), fontsize="medium")
    path = out / "matrix.png"
    atomic_write_bytes(path, figure_png(fig, dpi=90))
    return path


def cell_gifs(runs: list[Run], out: Path) -> list[Path]:
    """One animated GIF per cell (its first seed), from the run's per-epoch snapshots."""
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from ganscope.domains.points.plots import save_gif

    done: dict[str, Path] = {}
    for r in runs:
        name = r.config().preset.removeprefix("lab2d-")
        frames = [r.sample_grid(e) for e in r.sample_epochs()]
        if name in done or not frames:
            continue
        done[name] = save_gif(frames, out / "gifs" / f"{name}.gif")
    return list(done.values())
