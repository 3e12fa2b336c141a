"""E4: what single latent dimensions do: the latent probe measures every dim of E1's seed-0
generator against random directions, holds the seeds' 22 claims against it, and re-runs seed
000's own edit.

The seeds answered this by eye and disagreed; here an effect only counts when it stands out
from the null.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganscope.errors import UserError
from ganscope.lab.base import LabState
from ganscope.lab.pages import bullets, exp_page, ran_box, status_block
from ganscope.latent.claims import check
from ganscope.latent.edit import preset_edit, run_edit
from ganscope.latent.probe import run_probe
from ganscope.report import html as H

if TYPE_CHECKING:  # annotations only: settings.py imports this module for FULL and QUICK
    from ganscope.lab.settings import Settings

TITLE = "E4: what single latent dimensions do"
SEEDS_DID = ("Seeds 000-003 picked 5 of the 100 latent dims, set or shifted each to 3 values, "
             "looked at the grids and said in words what each dim controls; their answers "
             "disagree (seed 000: dims 20, 50, 60, 70, 90 shifted by -10 / 0 / +10).")
# The full lab and --quick; probe_dims None: all 100.
FULL: dict[str, Any] = {"probe_n_base": 256, "probe_n_null": 32, "probe_dims": None}
QUICK: dict[str, Any] = {"probe_n_base": 64, "probe_n_null": 32, "probe_dims": None}
USES_RUNS_OF = ("e1",)
RUN = "e1-mlp-s0"  # the probed generator


def shortened(s: Settings) -> list[str]:
    """The exact differences from the full lab, one line each."""
    out = []
    if s.probe_n_base != FULL["probe_n_base"]:
        out.append(f"probe with {s.probe_n_base} base vectors per sweep instead of "
                   f"{FULL['probe_n_base']} (noisier slopes: fewer effects pass the null)")
    if s.probe_n_null != FULL["probe_n_null"]:
        out.append(f"{s.probe_n_null} random null directions instead of {FULL['probe_n_null']}")
    if s.probe_dims is not None:
        out.append(f"dims {', '.join(map(str, s.probe_dims))} only, not all 100")
    if s.e1_epochs is not None or s.e1_limit:
        out.append("the probed generator is E1's shortened run")
    return out


def measure(lab: LabState) -> dict[str, Any]:
    """The probe, the claims check and seed 000's edit, on E1's seed-0 run."""
    runs = lab.completed([RUN])
    if not runs:
        raise UserError("E1's seed-0 run did not complete: nothing to probe")
    run = runs[0]
    s = lab.s
    res, files = run_probe(run, n_base=s.probe_n_base, n_null=s.probe_n_null,
                           dims=s.probe_dims, seed=0, out_dir=lab.out / "e4" / "probe",
                           progress=lab.progress)
    verdicts = check(res)
    p = preset_edit("seed000")
    edit = run_edit(run, p["dims"], p["values"], p["mode"], seed=p["seed"], n=p["n"],
                    out_dir=lab.out / "e4" / "edit-seed000")
    n_real = int(res.real.any(axis=1).sum())
    return {"run": run.name, "probe_dir": str(Path(files[0]).parent), "dims": len(res.dims),
            "n_real": n_real, "ranked": [res.sentence(d) for d in res.ranked()[:12]],
            "claims": verdicts, "edit_dir": edit["out_dir"], "edit_rows": edit["rows"],
            "probe_seconds": res.info.get("seconds"),
            "sentences_of_seed_dims": [res.sentence(d) for d in p["dims"] if d in res.dims]}


def _verdict_counts(r: dict[str, Any]) -> dict[str, int]:
    return {v: sum(c["verdict"] == v for c in r["claims"])
            for v in ("holds", "fails", "untestable")}


def answer(r: dict[str, Any]) -> str:
    """The index's one-line answer."""
    counts = _verdict_counts(r)
    return (f"{r['n_real']} of {r['dims']} dims with a real effect; claims: "
            f"{counts['holds']} hold, {counts['fails']} fail, "
            f"{counts['untestable']} untestable")


def page(lab: LabState) -> None:
    s, r = lab.s, lab.results["e4"]
    items = [("generator", "E1's seed-0 run, last epoch"),
             ("probe", f"every dim shifted by -3..3 on {s.probe_n_base} base vectors; effects "
                       "measured by the shipped classifier and image statistics; real only "
                       f"when beyond {s.probe_n_null} random unit directions at a family-wise "
                       "5 % and at least the measure's floor (0.02 p or 1 % per unit)"),
             ("claims", "the seeds' 22 claims (latent/claims.yaml) held against the probe"),
             ("edit", "seed 000's own choice: dims 20, 50, 60, 70, 90 shifted by -10 / 0 / +10"),
             ("commands", "ganscope latent probe RUN; ganscope latent check RUN; "
                          "ganscope latent edit RUN --preset seed000")]
    body: list[Any] = [ran_box(lab, shortened(s), items)]
    block = status_block(lab, "e4")
    if block is not None:
        body.append(block)
        return exp_page(lab, "e4", TITLE, SEEDS_DID, body)
    counts = _verdict_counts(r)
    probe_dir = Path(r["probe_dir"])
    answers = [f"{r['n_real']} of {r['dims']} dims have a real effect (beyond the null and at least "
               "the floor).",
               f"The seeds' claims: {counts['holds']} hold, {counts['fails']} fail, "
               f"{counts['untestable']} cannot be tested on this generator."]
    parts: list[Any] = [bullets(answers)]
    if (probe_dir / "heatmap.png").is_file():
        parts.append(H.img_file(probe_dir / "heatmap.png", "probe heatmap",
                                "|slope| / floor per dim and effect; dots: real, "
                                "rings: beyond the null but under the floor"))
    parts.append(H.tag("h3", "The strongest dims, measured"))
    parts.append(bullets(r["ranked"], "ol"))
    parts.append(H.tag("h3", "Seed 000's dims (20, 50, 60, 70, 90), measured"))
    parts.append(bullets(r["sentences_of_seed_dims"]))
    parts.append(H.tag("h3", "The seeds' claims"))
    parts.append(H.table(["claim", "seed", "verdict", "evidence"],
                         [[c["claim"], c["seed"], c["verdict"], c["evidence"]]
                          for c in r["claims"]], cls="claims", tid="claims"))
    edits = Path(r["edit_dir"]) / "edits.png"
    if edits.is_file():
        parts.append(H.tag("h3", "Seed 000's edit, re-run"))
        parts.append(H.img_file(edits, "seed 000 edit", "rows: dim and shift; columns: the "
                                "8 samples of seed 23231; the numbers are the mean |pixel "
                                "change| of each row"))
    body.append(H.section("answers", "Measured answers", *parts))
    exp_page(lab, "e4", TITLE, SEEDS_DID, body)
