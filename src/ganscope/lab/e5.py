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
    CAP_STEPS,
    EVAL_STEPS,
    LOSS_NAMES,
    OPTIMS,
    PATIENCE,
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
# The full lab and --quick; e5_steps: the cap of each run (it stops earlier at its plateau);
# e5_extra: overrides for every 2-D run (tests shrink the data).
FULL: dict[str, Any] = {"e5_steps": CAP_STEPS, "e5_seeds": [0, 1, 2], "e5_extra": []}
QUICK: dict[str, Any] = {"e5_steps": 4000, "e5_seeds": [0, 1], "e5_extra": []}
# What the seed concluded about this matrix, judged on the page with the numbers.
SEED_CLAIM = "WGAN-GP is stable with Adam"
CLAIM_CELL = "wgan-gp-adam"
USES_RUNS_OF: tuple[str, ...] = ()  # trains its own 2-D runs
# the comparison's significance notes the page keeps (by the metric's label)
NOTE_LABELS = tuple(metric_label(k) for k in ("modes_covered", "hq_fraction",
                                              "sliced_wasserstein"))


def shortened(s: Settings) -> list[str]:
    """The exact differences from the full lab, one line each."""
    out = []
    if s.e5_steps != FULL["e5_steps"]:
        out.append(f"a cap of {plural(s.e5_steps, 'generator step')} per run instead of "
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


def _ms(c: dict[str, Any], k: str) -> tuple[float, float] | None:
    v = c["final"].get(k)
    return (v["mean"], v["std"]) if v else None


def claim_check(summary: dict[str, Any]) -> tuple[str, str]:
    """The seed's claim against the matrix: (verdict word, the sentence with the numbers).

    "holds" when the WGAN-GP + Adam cell converged in every seed and covered every mode in
    every seed; "fails" when it converged but did not; "undecided" when a seed hit the cap (a
    run still improving says nothing yet about where it ends).
    """
    cells = summary.get("cells", {})
    c = cells.get(CLAIM_CELL)
    if c is None:
        return "undecided", f"{CLAIM_CELL} was not in this matrix."
    st = c["steps"]
    parts = [f"{CLAIM_CELL} converged in {c['converged']}/{c['seeds']} seeds after "
             f"{st['mean']:.0f} ± {st['std']:.0f} generator steps"]
    modes, hq, kl = _ms(c, "modes_covered"), _ms(c, "hq_fraction"), _ms(c, "reverse_kl")
    n_modes = c.get("n_modes")
    if modes is not None and hq is not None:
        of = f" of {n_modes:.0f}" if n_modes else ""
        parts.append(f"covering {modes[0]:.1f} ± {modes[1]:.1f}{of} modes with "
                     f"{100 * hq[0]:.0f} ± {100 * hq[1]:.0f} % high-quality samples")
    if kl is not None:
        parts.append(f"reverse KL {kl[0]:.3f} ± {kl[1]:.3f}")
    spread = c["late_spread"].get("sliced_wasserstein")
    if spread is not None:
        parts.append(f"late spread of sliced W1 {spread:.3g}")
    others = [f"{n} {100 * m[0]:.0f} % HQ, {mo[0]:.1f} modes" for n, o in cells.items()
              if n != CLAIM_CELL and (m := _ms(o, "hq_fraction")) and (mo := _ms(o,
                                                                               "modes_covered"))]
    text = "; ".join(parts) + "."
    if others:
        text += " Other cells: " + "; ".join(others) + "."
    if c["converged"] < c["seeds"]:
        return "undecided", text + " A seed hit the cap, so the claim is not decided yet."
    all_modes = (modes is not None and n_modes is not None and modes[0] == n_modes
                 and modes[1] == 0)
    if all_modes:
        return "holds", text
    return "fails", text + " Converged runs that miss modes are not what 'stable' claims."


def answer(r: dict[str, Any]) -> str:
    """The index's one-line answer."""
    word, _ = claim_check(r["summary"])
    w = r["summary"].get("winners", {})
    best = ("best converged " + "; ".join(f"{short_label(k)}: {v}" for k, v in w.items())
            if w else "no winner named (" + r["summary"].get("verdict", "").split(":")[0] + ")")
    return f'"{SEED_CLAIM}": {word}; {best}'


def page(lab: LabState) -> None:
    s, r = lab.s, lab.results["e5"]
    items = [("data", "ring8: 8 Gaussians on a circle of radius 2, std 0.02"),
             ("cells", "GAN (BCE; DCGAN's Adam 2e-4, betas (0.5, 0.999)), WGAN (clipping "
                       "0.01, n_critic 5, lr 5e-5), WGAN-GP (the toy script's lambda 0.1, "
                       "n_critic 5, Adam 1e-4, betas (0.5, 0.9)) x Adam, RMSprop; sources in "
                       "configs/e5-*.yaml"),
             ("seeds", seed_list(s.e5_seeds)),
             ("length", f"until converged: an evaluation every ~{EVAL_STEPS} generator steps, "
                        f"stop after {PATIENCE} in a row without a 2 % gain in modes covered or "
                        f"sliced W1; at most {s.e5_steps} steps (the cap)"),
             ("command", f"ganscope lab2d --seeds {format_seeds(s.e5_seeds)} "
                         f"--steps {s.e5_steps}")]
    body: list[Any] = [ran_box(lab, shortened(s), items)]
    block = status_block(lab, "e5")
    if block is not None:
        body.append(block)
        return exp_page(lab, "e5", TITLE, SEEDS_DID, body)
    head, rows = r["table"]
    winners = r["summary"].get("winners", {})
    word, claim = claim_check(r["summary"])
    answers = [f'Seed 004\'s claim "{SEED_CLAIM}": {word}. {claim}',
               r["summary"].get("verdict", "")]
    answers += [f"best converged {short_label(k)}: {c}" for k, c in winners.items()]
    res = r["comparison"]
    notes = [n for n in C.significance_notes(res)
             if n.split(" (")[0].split(":")[0] in NOTE_LABELS]
    parts: list[Any] = [
        H.p("mean ± std over seeds of each cell's final evaluation; converged: seeds whose "
            "evaluations stopped improving before the cap; steps: generator steps trained; "
            "* marks the best converged cell per metric; late spread: std of sliced W1 over "
            "the last quarter of training (stability)."),
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
