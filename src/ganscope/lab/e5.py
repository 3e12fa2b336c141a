"""E5: GAN vs WGAN vs WGAN-GP under Adam and RMSprop on 2-D points (ring8), over seeds: the
2-D matrix of ``ganscope lab2d``, its table, point clouds and training animations.

Its runs are small 2-D ones that the matrix trains itself (under ``LAB/e5/runs``), not in the
lab's pool of image runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganscope.experiments import compare as C
from ganscope.experiments.sweep import format_seeds
from ganscope.lab.base import LabState, plural, seed_list
from ganscope.lab.pages import bullets, exp_page, ran_box, status_block
from ganscope.lab2d.matrix import (
    LOSS_NAMES,
    OPTIMS,
    Cell,
    cell_gifs,
    matrix_figure,
    run_matrix,
    summarize,
    table_rows,
    write_tables,
)
from ganscope.metrics.labels import metric_label, short_label
from ganscope.report import html as H
from ganscope.report.sweep import comparison_body
from ganscope.training.run import Run

if TYPE_CHECKING:  # annotations only: settings.py imports this module for FULL and QUICK
    from ganscope.lab.settings import Settings

TITLE = "E5: GAN vs WGAN vs WGAN-GP, Adam vs RMSprop, on 2-D points"
SEEDS_DID = ("Seed 004 fitted a 2-D point set with an MLP GAN, WGAN (weight clipping) and "
             "WGAN-GP under Adam and under RMSprop, and judged stability and fit from the point "
             "clouds of one run per cell.")
# The full lab and --quick; e5_extra: overrides for every 2-D run (tests shrink the data).
FULL: dict[str, Any] = {"e5_steps": 2000, "e5_seeds": [0, 1, 2], "e5_extra": []}
QUICK: dict[str, Any] = {"e5_steps": 500, "e5_seeds": [0, 1], "e5_extra": []}
USES_RUNS_OF: tuple[str, ...] = ()  # trains its own 2-D runs
# the comparison's significance notes the page keeps (by the metric's label)
NOTE_LABELS = tuple(metric_label(k) for k in ("modes_covered", "hq_fraction",
                                              "sliced_wasserstein"))


def shortened(s: Settings) -> list[str]:
    """The exact differences from the full lab, one line each."""
    out = []
    if s.e5_steps != FULL["e5_steps"]:
        out.append(f"{plural(s.e5_steps, 'generator step')} per run instead of "
                   f"{FULL['e5_steps']}")
    if s.e5_seeds != FULL["e5_seeds"]:
        out.append(f"seeds {seed_list(s.e5_seeds)} instead of {seed_list(FULL['e5_seeds'])}")
    if s.e5_extra:
        out.append("overrides " + ", ".join(s.e5_extra))
    return out


def _groups(runs: list[Run]) -> list[C.Group]:
    groups = C.group_runs(runs)
    for g in groups:
        g.label = g.label.removeprefix("lab2d-")
    return groups


def measure(lab: LabState) -> dict[str, Any]:
    """Train the matrix (every loss x optimizer, over seeds) and summarize it."""
    s = lab.s
    out = lab.out / "e5"
    cells = [Cell(lo, op) for lo in LOSS_NAMES for op in OPTIMS]
    runs = run_matrix(out, "ring8", cells, s.e5_seeds, s.e5_steps, workers=lab.workers,
                      progress=lab.progress, extra=s.e5_extra)
    summary = summarize(runs)
    summary.update({"data": "ring8", "steps": s.e5_steps, "seeds": len(s.e5_seeds)})
    write_tables(out, summary)
    fig = matrix_figure(runs, out, seed=s.e5_seeds[0])
    gifs = cell_gifs(runs, out)
    head, rows = table_rows(summary)
    return {"summary": summary, "table": [head, rows], "matrix": str(fig),
            "gifs": [str(g) for g in gifs], "comparison": C.compare_groups(_groups(runs)),
            "runs": [r.name for r in runs]}


def answer(r: dict[str, Any]) -> str:
    """The index's one-line answer."""
    w = r["summary"].get("winners", {})
    return ("best " + "; ".join(f"{short_label(k)}: {v}" for k, v in w.items())
            if w else "no cell wins on any metric")


def page(lab: LabState) -> None:
    s, r = lab.s, lab.results["e5"]
    items = [("data", "ring8: 8 Gaussians on a circle of radius 2, std 0.02"),
             ("cells", "GAN (BCE), WGAN (clipping 0.01, n_critic 5), WGAN-GP (lambda 10, "
                       "n_critic 5) x Adam, RMSprop, each with its published settings"),
             ("seeds", seed_list(s.e5_seeds)), ("length", f"{s.e5_steps} generator steps"),
             ("command", f"ganscope lab2d --seeds {format_seeds(s.e5_seeds)} "
                         f"--steps {s.e5_steps}")]
    body: list[Any] = [ran_box(lab, shortened(s), items)]
    block = status_block(lab, "e5")
    if block is not None:
        body.append(block)
        return exp_page(lab, "e5", TITLE, SEEDS_DID, body)
    head, rows = r["table"]
    winners = r["summary"].get("winners", {})
    answers = [f"best {short_label(k)}: {c}" for k, c in winners.items()]
    res = r["comparison"]
    notes = [n for n in C.significance_notes(res)
             if n.split(" (")[0].split(":")[0] in NOTE_LABELS]
    parts: list[Any] = [
        H.p("mean ± std over seeds of each cell's final evaluation; * marks the best cell per "
            "metric; late spread: std of sliced W1 over the last quarter of training "
            "(stability)."),
        H.table(head, rows, cls="e5", tid="e5-table"),
        bullets(answers + notes),
        H.img_file(r["matrix"], "final points per cell",
                   f"final points of seed {s.e5_seeds[0]} per cell over the target, D's "
                   "surface underneath"),
    ]
    gifs = [Path(g) for g in r["gifs"]]
    if gifs:
        parts.append(H.tag("h3", "Training, per cell (seed 0)"))
        parts.append(H.Raw('<div class="strip">' + "".join(
            H.img_file(g, g.stem, g.stem) for g in gifs) + "</div>"))
    body.append(H.section("answers", "Measured answers", *parts))
    root = lab.out / "e5" / "runs"
    runs = [run for n in r["runs"] if (run := Run(root / n)).config_path.is_file()]
    body.append(comparison_body(res, _groups(runs), "E5", level=2))
    exp_page(lab, "e5", TITLE, SEEDS_DID, body)
