"""E2: convolutional GANs against the MLP, over seeds, at equal epochs and data: which one is
better, and whether the difference stands out from the seed-to-seed spread.

E2 shares E1's seeds and evaluation size, so in the full lab its MLP is E1's run (trained
once); in a shortened lab with other E2 epochs or data it is a run of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganscope.errors import UserError
from ganscope.experiments import compare as C
from ganscope.experiments import stats
from ganscope.lab import e1
from ganscope.lab.base import (
    LabState,
    PlannedRun,
    length_overrides,
    make_config,
    plural,
    preset_epochs,
    run_cost,
    seed_list,
)
from ganscope.lab.pages import bullets, exp_page, ran_box, status_block
from ganscope.report import html as H
from ganscope.report.run import sample_epochs
from ganscope.report.sweep import comparison_body

if TYPE_CHECKING:  # annotations only: settings.py imports this module for FULL and QUICK
    from ganscope.lab.settings import Settings

TITLE = "E2: convolutional GANs vs the MLP"
SEEDS_DID = ("Seeds 000, 001 and 002 each built a convolutional GAN (seed 000 a strided-conv "
             "CNN, seed 002 the DCGAN, seed 001 a deliberately tiny CNN) with the same Adam 2e-4 "
             "/ BCE set-up, and compared its sample grids with the MLP's by eye, one run each.")
PRESETS = ("e1-mlp", "e2-cnn", "e2-dcgan", "e2-dcgan-fixed", "e2-tiny-cnn")
# The full lab and --quick (seeds and evaluation size: E1's); None: the presets' own.
FULL: dict[str, Any] = {"e2_presets": PRESETS, "e2_epochs": None, "e2_limit": None}
QUICK: dict[str, Any] = {"e2_presets": PRESETS, "e2_epochs": 2, "e2_limit": 3200}
USES_RUNS_OF: tuple[str, ...] = ()  # its own runs (its MLP may be E1's: see planned_runs)
# Rough relative cost of one training step of each preset's model (the MLP's is 1), to start
# the longest runs first; a preset not listed counts as a mid-sized CNN.
STEP_COST = {"e1-mlp": 1.0, "e2-cnn": 150.0, "e2-dcgan": 100.0, "e2-dcgan-fixed": 100.0,
             "e2-tiny-cnn": 12.0}
OTHER_STEP_COST = 50.0
TRAIN_IMAGES = 60000  # all of the data set's training split


def shortened(s: Settings) -> list[str]:
    """The exact differences from the full lab, one line each."""
    out = []
    if s.seeds != e1.FULL["seeds"]:
        out.append(f"seeds {seed_list(s.seeds)} instead of {seed_list(e1.FULL['seeds'])}")
    out += e1.eval_shortened(s)
    if s.e2_epochs is not None:
        own = ", ".join(f"{p} {preset_epochs(p)}" for p in s.e2_presets)
        out.append(f"{plural(s.e2_epochs, 'epoch')} instead of the presets' own ({own})")
    if s.e2_limit:
        out.append(f"data.limit={s.e2_limit}: the first {s.e2_limit} training images "
                   "instead of all 60,000")
    if tuple(s.e2_presets) != FULL["e2_presets"]:
        out.append(f"presets {', '.join(s.e2_presets)} only")
    return out


def _configs(lab: LabState) -> list[PlannedRun]:
    s = lab.s
    over = ["eval.every=1", f"eval.n={s.eval_n}", *length_overrides(s.e2_epochs, s.e2_limit)]
    out = []
    for preset in s.e2_presets:
        short = "mlp" if preset == "e1-mlp" else preset.removeprefix("e2-")
        cost = STEP_COST.get(preset, OTHER_STEP_COST)
        for seed in s.seeds:
            cfg = make_config(preset, [*over, f"seed={seed}"], lab.data_dir)
            out.append(PlannedRun(f"e2-{short}-s{seed}", cfg, run_cost(cost, cfg, TRAIN_IMAGES)))
    return out


def _twins(runs: list[PlannedRun]) -> dict[str, str]:
    """Run name by configuration: a run of E2 configured exactly like one of these is that run."""
    return {p.cfg.to_dict().__repr__(): p.name for p in runs}


def planned_runs(lab: LabState, planned: list[PlannedRun]) -> list[PlannedRun]:
    """One run per preset and seed; a run configured exactly like one already ``planned`` (the
    full lab's MLP: E1's) takes that run's name, so it is trained once."""
    twins = _twins(planned)
    out = []
    for p in _configs(lab):
        p.name = twins.get(p.cfg.to_dict().__repr__()) or p.name
        out.append(p)
    return out


def measure(lab: LabState) -> dict[str, Any]:
    """Every preset's final metrics over seeds, compared group by group."""
    twins = _twins(e1.planned_runs(lab, []))
    names = [twins.get(p.cfg.to_dict().__repr__(), p.name) for p in _configs(lab)]
    runs = lab.completed(names)
    if not runs:
        raise UserError("no E2 run completed")
    groups = C.group_runs(runs)
    return {"runs": [r.name for r in runs], "comparison": C.compare_groups(groups),
            "missing": [n for n in names if n not in {r.name for r in runs}]}


def answer(r: dict[str, Any]) -> str:
    """The index's one-line answer."""
    have = [g for g in r["comparison"]["groups"] if g["metrics"].get("fid")]
    best = min(have, key=lambda g: g["metrics"]["fid"]["mean"])
    return (f"lowest final FID: {best['label']} "
            f"{C.cell_text('fid', best['metrics']['fid'])}")


def _metric_rows(res: dict[str, Any], keys: list[str]) -> tuple[list[str], list[list[Any]]]:
    head = ["config", "seeds", *[C.metric_label(k) for k in keys], "flags"]
    rows = []
    for g in res["groups"]:
        flags = ", ".join(f"{f} {n}/{g['n_runs']}" for f, n in g["flags"].items()) or "-"
        rows.append([g["label"], H.cell(g["n_runs"], "d"),
                     *[_two_line(k, g["label"], g["metrics"].get(k)) for k in keys], flags])
    return head, rows


def _two_line(key: str, label: str, m: dict[str, Any] | None) -> H.Raw:
    """'mean ± std' over '[lo, hi]' in one cell; data-value holds the mean."""
    if not m:
        return H.Raw("<td>-</td>")
    text = C.cell_text(key, m)
    top, _, ci = text.partition(" [")
    inner = H.esc(top) + (f'<br><span class="muted">[{H.esc(ci)}</span>' if ci else "")
    return H.Raw(f'<td class="num" data-key="{H.esc(label)}/{key}" '
                 f'data-value="{H.esc(repr(m["mean"]))}">{inner}</td>')


def page(lab: LabState) -> None:
    s, r = lab.s, lab.results["e2"]
    items = [("presets", ", ".join(s.e2_presets)),
             ("architectures", "e2-cnn: seed 000's CNN; e2-dcgan: seed 002's DCGAN as it ran "
                               "(default init, Adam betas 0.9); e2-dcgan-fixed: the same with "
                               "the DCGAN recipe (N(0, 0.02) init, betas 0.5); e2-tiny-cnn: "
                               "seed 001's tiny CNN; e1-mlp: the baseline"),
             ("seeds", seed_list(s.seeds)),
             ("epochs", s.e2_epochs or "the presets' own: " + ", ".join(
                 f"{p} {preset_epochs(p)}" for p in s.e2_presets)),
             ("data", f"first {s.e2_limit} training images" if s.e2_limit
              else "all 60,000 training images"),
             ("evaluation", f"every epoch, {s.eval_n} generated vs the test split")]
    body: list[Any] = [ran_box(lab, shortened(s), items)]
    block = status_block(lab, "e2")
    if block is not None:
        body.append(block)
        return exp_page(lab, "e2", TITLE, SEEDS_DID, body)
    res = r["comparison"]
    keys = [k for k in ("fid", "best_fid", "kid", "recall", "coverage", "classes_covered")
            if k in res["metrics"]]
    head, rows = _metric_rows(res, keys)
    answers = []
    have = [g for g in res["groups"] if g["metrics"].get("fid")]
    if have:
        ranked = sorted(have, key=lambda g: g["metrics"]["fid"]["mean"])
        answers.append("Final FID, lowest first: " + "; ".join(
            f"{g['label']} {C.cell_text('fid', g['metrics']['fid'])}" for g in ranked) + ".")
        mlp = next((g for g in have if g["label"] == "e1-mlp"), None)
        if mlp is not None:
            verdicts = []
            for g in ranked:
                if g is mlp:
                    continue
                ov = stats.intervals_overlap(C._summary(g["metrics"]["fid"]),
                                             C._summary(mlp["metrics"]["fid"]))
                if ov is None:
                    word = "cannot be compared with one seed"
                elif ov:
                    word = "is not distinguishable from the MLP at this number of seeds"
                elif g["metrics"]["fid"]["mean"] < mlp["metrics"]["fid"]["mean"]:
                    word = "beats the MLP (intervals disjoint)"
                else:
                    word = "is worse than the MLP (intervals disjoint)"
                verdicts.append(f"{g['label']} {word}")
            answers.append("CNN vs MLP at equal epochs and data: " + "; ".join(verdicts) + ".")
    for g in res["groups"]:
        for f, n in g["flags"].items():
            answers.append(f"{g['label']}: flag {f} in {n} of {g['n_runs']} seeds.")
    body.append(H.section("answers", "Measured answers", bullets(answers),
                          H.p("each cell: mean ± std over seeds of the final evaluation, "
                              "below it the 95 % Student-t interval", "muted"),
                          H.table(head, rows, cls="e2", tid="e2-table")))
    grids = []
    for name in r["runs"]:
        run = lab.runs[name]
        if name.endswith("-s0"):
            eps = sample_epochs(run, 1_000)
            if eps:
                grids.append((eps[-1][1], f"{run.config().preset}, seed 0, epoch {eps[-1][0]}"))
    if grids:
        body.append(H.section("samples", "Samples (seed 0, last epoch)", H.strip(grids)))
    body.append(comparison_body(res, C.group_runs(lab.runs_named(r["runs"])), "E2", level=2))
    exp_page(lab, "e2", TITLE, SEEDS_DID, body)
