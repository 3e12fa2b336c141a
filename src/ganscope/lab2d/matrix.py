"""The 2-D lab's matrix: objectives x optimisers x seeds, trained by the one loop, compared.

Each cell x seed is an ordinary run (its own run directory under ``OUT/runs/``), trained by
``ganscope.training.loop.train`` in a pool of worker processes (one per core, one thread each:
these nets are too small for intra-op threads to pay; ``ganscope.experiments.runner``, shared
with ``ganscope sweep``). The comparison reads only those run directories: final metrics per
run, mean +- std over seeds per cell, the spread over the last quarter of training as
stability, and which cell wins on each metric.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganscope.config import RunConfig, apply_overrides, load_config
from ganscope.domains import load_dataset
from ganscope.domains.points.evaluate import generate_points
from ganscope.errors import ConfigError
from ganscope.experiments.runner import execute, plan_runs, raise_on_failure
from ganscope.experiments.stats import mean_std as _mean_std
from ganscope.io import atomic_write_bytes, atomic_write_text
from ganscope.losses import build_loss
from ganscope.metrics.labels import lower_is_better, metric_keys, short_label, spread_text
from ganscope.models import build_models
from ganscope.render import figure_png
from ganscope.training.run import Run, load_checkpoint

LOSS_NAMES = {"gan": "bce", "wgan": "wgan", "wgan-gp": "wgan-gp"}
OPTIMS = ("adam", "rmsprop")
SETUPS = ("literature", "same")

# Each cell's literature settings live in its preset, configs/e5-<loss>-<optim>.yaml (WGAN:
# Arjovsky et al. 2017; WGAN-GP: Gulrajani et al. 2017; GAN: DCGAN's Adam). The seed's own
# set-up instead used one optimiser setting for every objective:
SAME = ["optim.lr=1e-4", "optim.betas=[0.9,0.999]", "train.n_critic=1", "loss.clip=0.01",
        "loss.gp_lambda=10"]

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
                eval_points: int = 10, extra: Sequence[str] = ()) -> RunConfig:
    """The run config of one cell and seed: ``steps`` generator steps, evaluated ~eval_points
    times, snapshots at the same epochs."""
    if setup not in SETUPS:
        raise ConfigError(f"unknown setup {setup!r}: choose literature or same")
    over = [f"data.name={data}", f"seed={seed}", *(SAME if setup == "same" else [])]
    cfg = apply_overrides(load_config(f"e5-{cell.name}"), [*over, *extra])
    n_batches = math.ceil(cfg.data.n_points / cfg.train.batch_size)
    per_epoch = max(1, n_batches // cfg.train.n_critic)
    epochs = max(1, math.ceil(steps / per_epoch))
    every = max(1, epochs // eval_points)
    cfg.train.epochs = epochs
    cfg.train.sample_every = every
    cfg.eval.every = every
    cfg.preset = f"lab2d-{cell.name}"
    return cfg.validate()


def run_matrix(out: Path, data: str, cells: list[Cell], seeds: list[int], steps: int,
               setup: str = "literature", workers: int | None = None,
               progress: bool = True, extra: Sequence[str] = ()) -> list[Run]:
    """Create and train every cell x seed under ``out/runs``; finished runs are kept and
    interrupted ones resumed, so a matrix started again only trains what is missing.
    ``extra``: --set overrides applied to every cell."""
    # Data first: a bad spec or file fails before anything is written.
    load_dataset(cell_config(data, cells[0], seeds[0], steps, setup, extra=extra).data, seeds[0])
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_runs([(out / "runs" / f"{cell.name}-s{seed}",
                       cell_config(data, cell, seed, steps, setup, extra=extra))
                      for cell in cells for seed in seeds])
    raise_on_failure(execute(plan.todo, "local", workers=workers, desc="lab2d runs",
                             progress=progress))
    return plan.runs


# --- comparison ---------------------------------------------------------------------------------


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Per cell: mean/std over seeds of the final metrics, and the late-training spread."""
    by_cell: dict[str, list[Run]] = {}
    for r in runs:
        by_cell.setdefault(r.config().preset.removeprefix("lab2d-"), []).append(r)
    cells: dict[str, Any] = {}
    for name, rs in by_cell.items():
        finals: dict[str, list[float]] = {k: [] for k in TABLE_METRICS}
        spread: dict[str, list[float]] = {k: [] for k in TABLE_METRICS}
        for r in rs:
            recs = sorted(r.read_metrics(), key=lambda x: x["epoch"])
            if not recs:
                continue
            for k in TABLE_METRICS:
                if k in recs[-1]["metrics"]:
                    finals[k].append(recs[-1]["metrics"][k])
                    late = [x["metrics"][k] for x in recs[-max(2, len(recs) // 4):]]
                    spread[k].append(statistics.pstdev(late) if len(late) > 1 else 0.0)
        cells[name] = {
            "seeds": len(rs),
            "final": {k: dict(zip(("mean", "std"), _mean_std(v))) for k, v in finals.items()
                      if v},
            "late_spread": {k: _mean_std(v)[0] for k, v in spread.items() if v},
        }
    winners = {}
    for k in TABLE_METRICS:
        higher = not lower_is_better(k)
        have = {c: v["final"][k]["mean"] for c, v in cells.items()
                if k in v["final"] and math.isfinite(v["final"][k]["mean"])}
        if len(set(have.values())) > 1:  # a tie across all cells names no winner
            best = (max if higher else min)(have.values())
            tied = [c for c, v in have.items() if v == best]
            winners[k] = tied[0] if len(tied) == 1 else " = ".join(tied)
    return {"cells": cells, "winners": winners}


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    keys = [k for k in TABLE_METRICS if any(k in c["final"] for c in summary["cells"].values())]
    head = ["cell", "seeds", *[short_label(k) for k in keys],
            f"late spread ({short_label('sliced_wasserstein')})"]
    rows = []
    for name, c in summary["cells"].items():
        cells = [spread_text(k, c["final"][k]["mean"], c["final"][k]["std"]) if k in c["final"]
                 else "-" for k in keys]
        cells = [v + (" *" if name in summary["winners"].get(k, "").split(" = ") else "")
                 for v, k in zip(cells, keys)]
        sp = c["late_spread"].get("sliced_wasserstein", math.nan)
        rows.append([name, str(c["seeds"]), *cells, "-" if not math.isfinite(sp) else f"{sp:.3g}"])
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
    md.append("mean ± std over seeds of the final evaluation; * marks the best cell per metric.")
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
    G, D = build_models(cfg.model.name, cfg.model.z_dim, sigmoid, g_hidden=cfg.model.g_hidden,
                        d_hidden=cfg.model.d_hidden)
    ck = load_checkpoint(run.last_checkpoint)
    G.load_state_dict(ck["G"])
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
    target = load_dataset(first.data, first.seed).images.numpy()
    ext = plot_extent(target)
    for ax, name in zip(axes, names):
        run = by_cell[name]
        cfg = run.config()
        G, D, sigmoid = _load_nets(run)
        fake = generate_points(G, cfg.model.z_dim, 1000, 0)
        recs = run.read_metrics()
        m = recs[-1]["metrics"] if recs else {}
        sub = ""
        if "modes_covered" in m:
            sub = f"\n{m['modes_covered']}/{m['n_modes']} modes, {100 * m['hq_fraction']:.0f}% HQ"
        draw_cell(ax, target, fake, D=D, probability=sigmoid, extent=ext,
                  title=f"{name} (seed {cfg.seed}){sub}")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"{first.data.name}: final generated points (orange) over the target (grey)\n"
                 "D / critic surface underneath (red: scored real)", fontsize="medium")
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
