"""E1: the baseline MLP GAN on the seeds' images, over seeds: its final quality and why its
losses oscillate instead of falling.

E1 also owns the seeds and the evaluation size: E2 repeats E1's set-up with other
architectures (so the full lab's E2 MLP is E1's run), and E3 and E4 use E1's runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganscope.errors import UserError
from ganscope.experiments import compare as C
from ganscope.experiments import stats
from ganscope.lab.base import (
    LabState,
    PlannedRun,
    length_overrides,
    make_config,
    plural,
    preset_domain,
    preset_epochs,
    run_cost,
    seed_list,
)
from ganscope.lab.pages import bullets, exp_page, ran_box, status_block
from ganscope.report import html as H
from ganscope.report.run import run_body
from ganscope.report.sweep import comparison_body

if TYPE_CHECKING:  # annotations only: settings.py imports this module for FULL and QUICK
    from ganscope.lab.settings import Settings

DATA = preset_domain("e1-mlp")  # the seeds' data set: its title goes into the prose
TITLE = f"E1: the baseline MLP GAN on {DATA.title}"
SEEDS_DID = ("All five reports trained the course's MLP GAN (G: 100-128-784, D: 784-128-1, "
             f"LeakyReLU 0.2, BCE, Adam 2e-4 for both, batch 64) on {DATA.title} for 10 epochs "
             "(one for 20), from one run each, and showed the D and G loss curves (seed 003 also "
             "D(x) and D(G(z))); they discussed why the losses oscillate instead of falling.")
# The full lab (the seeds' set-up, over seeds) and --quick; None: the preset's own.
FULL: dict[str, Any] = {"seeds": [0, 1, 2], "e1_epochs": None, "e1_limit": None,
                        "eval_n": 10000}
QUICK: dict[str, Any] = {"seeds": [0, 1], "e1_epochs": 5, "e1_limit": None, "eval_n": 2000}
USES_RUNS_OF: tuple[str, ...] = ()  # its own runs only
STEP_COST = 1.0  # the MLP: the cheapest step (relative to E2's CNNs and E6's faces)
TRAIN_IMAGES = 60000  # all of the data set's training split


def shortened(s: Settings) -> list[str]:
    """The exact differences from the full lab, one line each."""
    out = []
    if s.seeds != FULL["seeds"]:
        out.append(f"seeds {seed_list(s.seeds)} instead of {seed_list(FULL['seeds'])}")
    if s.e1_epochs is not None:
        out.append(f"{plural(s.e1_epochs, 'epoch')} instead of the preset's "
                   f"{preset_epochs('e1-mlp')}")
    if s.e1_limit:
        out.append(f"data.limit={s.e1_limit}: the first {s.e1_limit} training images "
                   "instead of all 60,000")
    out += eval_shortened(s)
    return out


def eval_shortened(s: Settings) -> list[str]:
    """The evaluation-size line, which E2 shares."""
    if s.eval_n == FULL["eval_n"]:
        return []
    return [f"evaluation with {s.eval_n} generated images vs {min(s.eval_n, 10000)} "
            f"test images instead of 10,000 vs 10,000 (FID is biased upwards at small "
            "n: compare these numbers only with each other)"]


def planned_runs(lab: LabState, planned: list[PlannedRun]) -> list[PlannedRun]:
    """One e1-mlp run per seed, evaluated every epoch."""
    s = lab.s
    over = ["eval.every=1", f"eval.n={s.eval_n}", *length_overrides(s.e1_epochs, s.e1_limit)]
    out = []
    for seed in s.seeds:
        cfg = make_config("e1-mlp", [*over, f"seed={seed}"], lab.data_dir)
        out.append(PlannedRun(f"e1-mlp-s{seed}", cfg, run_cost(STEP_COST, cfg, TRAIN_IMAGES)))
    return out


def measure(lab: LabState) -> dict[str, Any]:
    """The seeds' final metrics and the loss / D-output dynamics of the first and last epoch."""
    runs = lab.completed([p.name for p in planned_runs(lab, [])])
    if not runs:
        raise UserError("no E1 run completed: " + "; ".join(
            f"{k} {v}" for k, v in lab.failed.items() if k.startswith("e1")))
    groups = C.group_runs(runs)
    res = C.compare_groups(groups)
    g = res["groups"][0]
    dyn: dict[str, Any] = {}
    for key in ("loss_d", "loss_g", "d_x", "d_g_z"):
        first, last = [], []
        for r in runs:
            ev = r.read_events()
            e_last = max(e["epoch"] for e in ev)
            first.append(stats.mean([e[key] for e in ev if e["epoch"] == 1]))
            last.append(stats.mean([e[key] for e in ev if e["epoch"] == e_last]))
        dyn[key] = {"first_epoch": stats.summarize(first).to_dict(),
                    "last_epoch": stats.summarize(last).to_dict()}
    return {"runs": [r.name for r in runs], "comparison": res, "dynamics": dyn,
            "epochs": g["epochs"]}


def answer(r: dict[str, Any]) -> str:
    """The index's one-line answer."""
    fid = r["comparison"]["groups"][0]["metrics"].get("fid")
    return f"final FID {C.cell_text('fid', fid)}" if fid else "no FID"


def page(lab: LabState) -> None:
    s, r = lab.s, lab.results["e1"]
    items = [("preset", "e1-mlp (G 100-128-784, D 784-128-1, BCE, Adam 2e-4, batch 64)"),
             ("seeds", seed_list(s.seeds)), ("epochs", s.e1_epochs or preset_epochs("e1-mlp")),
             ("data", f"first {s.e1_limit}" if s.e1_limit else "all 60,000 training images"),
             ("evaluation", f"every epoch, {s.eval_n} generated vs the test split"),
             ("command", "ganscope train e1-mlp --eval-every 1 --seed S")]
    body: list[Any] = [ran_box(lab, shortened(s), items)]
    block = status_block(lab, "e1")
    if block is not None:
        body.append(block)
        return exp_page(lab, "e1", TITLE, SEEDS_DID, body)
    res = r["comparison"]
    g = res["groups"][0]
    fid = g["metrics"].get("fid")
    best = g["metrics"].get("best_fid")
    dyn = r["dynamics"]

    def d(key: str, when: str) -> str:
        m = dyn[key][when]
        return f"{m['mean']:.3f}" + (f" ± {m['std']:.3f}" if m["std"] is not None else "")

    answers = []
    if fid:
        answers.append(f"After {max(g['epochs'] or [0])} epochs the MLP GAN scores FID "
                       f"{C.cell_text('fid', fid)} over {fid['n']} seeds (mean ± std "
                       "[95 % interval]); best FID during training "
                       f"{C.cell_text('best_fid', best)}.")
    dx, dgz = (dyn[k]["last_epoch"]["mean"] for k in ("d_x", "d_g_z"))
    wins = "d-wins" in g["flags"]
    if wins:
        balance = "D wins outright in some seeds (flag d-wins): G gets almost no gradient there"
    elif abs(dx - 0.5) < 0.15 and abs(dgz - 0.5) < 0.15:
        balance = ("both near the 0.5 equilibrium: neither net wins, so each step of one "
                   "undoes part of the other's (the oscillation the seeds described)")
    else:
        balance = ("D is ahead (it scores real images higher than generated ones) without "
                   "winning outright (no d-wins flag), so G keeps getting a gradient and the "
                   "two losses keep trading places from step to step (the oscillation the "
                   "seeds described)")
    answers.append(f"The losses do not fall towards zero: D loss {d('loss_d', 'first_epoch')} "
                   f"in epoch 1 and {d('loss_d', 'last_epoch')} in the last epoch, G loss "
                   f"{d('loss_g', 'first_epoch')} then {d('loss_g', 'last_epoch')}. Mean D(x) "
                   f"{d('d_x', 'last_epoch')} and D(G(z)) {d('d_g_z', 'last_epoch')} in the last "
                   f"epoch: {balance}; quality is read from the metrics, not from the loss.")
    flags = ", ".join(f"{f} in {n} of {g['n_runs']} runs" for f, n in g["flags"].items())
    answers.append(f"Diagnostics: {flags or 'no flags in any seed'}.")
    body.append(H.section("answers", "Measured answers", bullets(answers)))
    runs = lab.runs_named(r["runs"])
    body.append(comparison_body(res, C.group_runs(runs), "E1", level=2))
    body.append(H.section("run", f"Seed 0 in detail ({runs[0].name})",
                          run_body(runs[0], prefix="run-", level=3), level=2))
    exp_page(lab, "e1", TITLE, SEEDS_DID, body)
