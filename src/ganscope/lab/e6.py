"""E6: semantic directions in a face GAN's latent space: one DCGAN on a slice of the face
data, then InterFaceGAN directions for three attributes and measured walks along them.

The face data is not downloadable by the tool, so without a folder E6 is skipped with its
reason; one seed only, because faces are the lab's most expensive runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganscope.config import load_config
from ganscope.directions.walk import find_run_directions, walk_run
from ganscope.errors import UserError
from ganscope.lab.base import (
    LabState,
    PlannedRun,
    length_overrides,
    make_config,
    plural,
    preset_domain,
    preset_epochs,
    run_cost,
)
from ganscope.lab.pages import exp_page, ran_box, status_block
from ganscope.latent.values import parse_steps
from ganscope.report import html as H
from ganscope.report.run import run_body

if TYPE_CHECKING:  # annotations only: settings.py imports this module for FULL and QUICK
    from ganscope.lab.settings import Settings

TITLE = "E6: semantic directions in a face GAN's latent space"
SEEDS_DID = ("Seed 004 described searching a face generator's latent space for directions that "
             "change one attribute (gender, pose, age, smile) and showing frames along them.")
ATTRS = ("Male", "Smiling", "Young")
# The full lab and --quick; None: the preset's own. Settings' defaults are FULL's.
FULL: dict[str, Any] = {"e6_epochs": None, "e6_limit": None, "e6_find_n": 10000,
                        "e6_measure_n": 512, "e6_steps": "-3:3:9"}
QUICK: dict[str, Any] = {"e6_epochs": 2, "e6_limit": None, "e6_find_n": 2000,
                         "e6_measure_n": 128, "e6_steps": "-3:3:7"}
USES_RUNS_OF: tuple[str, ...] = ()  # its own face run
RUN = "e6-faces-s0"
STEP_COST = 60.0  # a 32x32 DCGAN step, relative to the MLP's 1
TRAIN_IMAGES = 10000  # the face slice when the preset sets no limit
PRESET = "e6-faces"
FACES = preset_domain(PRESET)  # the preset's domain: its title, folder option and variable


def shortened(s: Settings) -> list[str]:
    """The exact differences from the full lab, one line each."""
    out = []
    if s.e6_epochs is not None:
        out.append(f"{plural(s.e6_epochs, 'epoch')} instead of the preset's "
                   f"{preset_epochs('e6-faces')}")
    if s.e6_limit:
        out.append(f"data.limit={s.e6_limit}: {s.e6_limit} faces instead of "
                   f"{load_config('e6-faces').data.limit or 'all'}")
    if s.e6_find_n != FULL["e6_find_n"]:
        out.append(f"directions found from {s.e6_find_n} generated faces instead of "
                   f"{FULL['e6_find_n']}")
    if s.e6_measure_n != FULL["e6_measure_n"]:
        out.append(f"walks measured on {s.e6_measure_n} latents instead of "
                   f"{FULL['e6_measure_n']}")
    if s.e6_steps != FULL["e6_steps"]:
        out.append(f"walk steps {s.e6_steps} instead of {FULL['e6_steps']}")
    return out


def planned_runs(lab: LabState, planned: list[PlannedRun]) -> list[PlannedRun]:
    """The face run, seed 0; none without a folder of the faces."""
    if not lab.folder(FACES):
        return []
    s = lab.s
    over = ["seed=0", *length_overrides(s.e6_epochs, s.e6_limit)]
    cfg = make_config(PRESET, over, lab.folder(FACES))
    return [PlannedRun(RUN, cfg, run_cost(STEP_COST, cfg, TRAIN_IMAGES))]


def measure(lab: LabState) -> dict[str, Any]:
    """Directions for ATTRS found on the face run, and walks along them, measured."""
    if not lab.folder(FACES):
        return {"status": "skipped",
                "skipped": f"no {FACES.title} folder: give --{FACES.name}-dir DIR or set "
                           f"${FACES.folder_env} ({FACES.folder_hint}); nothing of E6 was run"}
    runs = lab.completed([RUN])
    if not runs:
        raise UserError("the face run did not complete: "
                        + lab.failed.get(RUN, "see LAB/runs/e6-faces-s0"))
    run = runs[0]
    s = lab.s
    out: dict[str, Any] = {"run": run.name}
    try:
        rows, _ = find_run_directions(run, "interfacegan", list(ATTRS), n=s.e6_find_n, seed=0,
                                      progress=lab.progress)
        names = [r["name"] for r in rows]
        walk = walk_run(run, names, parse_steps(s.e6_steps), seed=0,
                        n_measure=s.e6_measure_n, progress=lab.progress)
        out["directions"] = [{k: v for k, v in r.items() if k != "details"} for r in rows]
        out["walks"] = [{"name": w["summary"]["name"], "summary": w["summary"],
                         "files": [str(f) for f in w["files"]]} for w in walk["results"]]
        out["walk_dir"] = walk["out"]
    except UserError as e:
        out["directions_error"] = str(e)
    return out


def answer(r: dict[str, Any]) -> str:
    """The index's one-line answer."""
    if "skipped" in r:
        return f"skipped: no {FACES.title} folder"
    if "directions_error" in r:
        return "face run trained; directions not found: " + r["directions_error"]
    return ", ".join(f"{w['name']} {w['summary']['target_from']:.2f} -> "
                     f"{w['summary']['target_to']:.2f}" for w in r["walks"]
                     if w["summary"]["target"])


def page(lab: LabState) -> None:
    s, r = lab.s, lab.results["e6"]
    items = [("preset", f"{PRESET}: DCGAN at 32x32 on the {FACES.title} 10k slice, DCGAN recipe"),
             ("seeds", "0 (one run: faces are the most expensive experiment)"),
             ("epochs", s.e6_epochs or preset_epochs("e6-faces")),
             ("data", f"{FACES.title} folder {lab.folder(FACES)}" if lab.folder(FACES)
                      else "none given"),
             ("directions", f"InterFaceGAN for {', '.join(ATTRS)} from {s.e6_find_n} "
                            "faces scored by the shipped attribute classifier"),
             ("walks", f"steps {s.e6_steps} (std of z), measured on {s.e6_measure_n} latents"),
             ("commands", "ganscope train e6-faces --data-dir DIR; ganscope directions find "
                          "RUN --method interfacegan --attr Male,Smiling,Young; ganscope "
                          "directions walk RUN --direction male,smiling,young")]
    body: list[Any] = [ran_box(lab, shortened(s), items)]
    block = status_block(lab, "e6")
    if block is not None:
        body.append(block)
        return exp_page(lab, "e6", TITLE, SEEDS_DID, body)
    if "skipped" in r:
        body.append(H.Raw(f'<div class="skip"><strong>E6 was skipped:</strong> '
                          f"{H.esc(r['skipped'])}.</div>"))
        return exp_page(lab, "e6", TITLE, SEEDS_DID, body)
    run = lab.runs[r["run"]]
    parts: list[Any] = []
    if "directions_error" in r:
        parts.append(H.Raw(f'<div class="skip">Directions were not found: '
                           f"{H.esc(r['directions_error'])}</div>"))
    else:
        parts.append(H.table(["direction", "method", "attribute", "quality", "correlation"],
                             [[d["name"], d["method"], d["attribute"] or "-", d["quality"],
                               H.cell(d["correlation"], ".3f")] for d in r["directions"]]))
        rows = []
        for w in r["walks"]:
            sm = w["summary"]
            rows.append([sm["name"],
                         "-" if sm["target"] is None else
                         f"{sm['target']} {sm['target_from']:.3f} -> {sm['target_to']:.3f}",
                         "-" if sm["target"] is None else
                         ("yes" if sm["monotonic"] else "no"),
                         "-" if sm["largest_side_effect"] is None else
                         f"{sm['largest_side_effect']} {sm['largest_side_effect_delta']:+.3f}"])
        parts.append(H.table(["walk", "target P (first -> last step)", "monotonic",
                              "largest side effect"], rows))
        for w in r["walks"]:
            f = next((Path(x) for x in w["files"] if x.endswith("walk.png")), None)
            if f is not None and f.is_file():
                parts.append(H.img_file(f, f"walk {w['name']}", f"walk along '{w['name']}'"))
        se = Path(r["walk_dir"]) / "side_effects.png"
        if se.is_file():
            parts.append(H.img_file(se, "side effects", "change of every attribute from the "
                                    "first to the last step of each walk"))
    body.append(H.section("answers", "Measured answers", *parts))
    body.append(H.section("run", f"The face run ({run.name})",
                          run_body(run, prefix="run-", level=3, compact=True), level=2))
    exp_page(lab, "e6", TITLE, SEEDS_DID, body)
