"""E3: generation from a chosen random vector: the seed-0 generator of E1 and of every E2
preset draws the seeds' 8 latents, twice, and the lab checks the images are repeatable.

It trains nothing of its own: it uses E1's and E2's runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganscope.errors import UserError
from ganscope.lab.base import LabState
from ganscope.lab.pages import exp_page, ran_box, status_block
from ganscope.latent.generate import save_images
from ganscope.report import html as H
from ganscope.sampling import generate_images, latents_from_seed
from ganscope.training.run import load_generator

if TYPE_CHECKING:  # annotations only: settings.py imports this module
    from ganscope.lab.settings import Settings

TITLE = "E3: generation from a chosen random vector"
SEEDS_DID = ("Seeds 000-003 fixed a seed (seed 001: torch.manual_seed(23231)), drew z of shape "
             "(8, 100) and showed the 8 generated images as one grid.")
SEED = 23231  # seed 001's torch.manual_seed
FULL: dict[str, Any] = {}  # no settings of its own
QUICK: dict[str, Any] = {}
USES_RUNS_OF = ("e1", "e2")


def shortened(s: Settings) -> list[str]:
    """The exact differences from the full lab: E3's generators are E1's and E2's runs."""
    if s.e1_epochs is not None or s.e1_limit:
        return ["the generators are E1's and E2's shortened runs (see their pages)"]
    return []


def measure(lab: LabState) -> dict[str, Any]:
    """One grid of 8 images from seed 23231 per seed-0 generator, generated twice."""
    seed0 = [n for n in lab.runs if n.endswith("-s0") and not n.startswith("e6")]
    runs = lab.completed(sorted(seed0, key=lambda n: (not n.startswith("e1"), n)))
    if not runs:
        raise UserError("no E1/E2 run to generate from")
    out, grids = lab.out / "e3", []
    for r in runs:
        G = load_generator(r)
        z = latents_from_seed(SEED, 8, r.config().model.z_dim)
        a = generate_images(G, z)
        b = generate_images(load_generator(r), latents_from_seed(SEED, 8,
                                                                 r.config().model.z_dim))
        path = save_images(a, out / f"{r.name}-seed{SEED}.png", nrow=8, scale=3)
        grids.append({"run": r.name, "preset": r.config().preset, "file": str(path),
                      "repeatable": bool((a == b).all()),
                      "epoch": r.meta().get("epochs_done")})
    return {"grids": grids}


def answer(r: dict[str, Any]) -> str:
    """The index's one-line answer."""
    ok = all(g["repeatable"] for g in r["grids"])
    return f"{len(r['grids'])} grids from seed {SEED}; repeatable: {'yes' if ok else 'NO'}"


def page(lab: LabState) -> None:
    r = lab.results["e3"]
    items = [("latents", f"torch.manual_seed({SEED}); z = torch.randn(8, 100)"),
             ("generators", "the seed-0 run of E1 and of every E2 preset, last epoch"),
             ("command", f"ganscope generate RUN --seed {SEED} -n 8 --out grid.png")]
    body: list[Any] = [ran_box(lab, shortened(lab.s), items)]
    block = status_block(lab, "e3")
    if block is None:
        parts = []
        for g in r["grids"]:
            parts.append(H.img_file(g["file"], f"{g['run']} seed {SEED}",
                                    f"{g['run']} ({g['preset']}, epoch {g['epoch']}): 8 images "
                                    f"from seed {SEED}; generated twice, identical: "
                                    f"{'yes' if g['repeatable'] else 'NO'}"))
        ok = all(g["repeatable"] for g in r["grids"])
        body.append(H.section("answers", "Measured answers", H.p(
            f"{len(r['grids'])} generators, the same 8 latents each. Generating again from the "
            f"same seed gives {'the same images, byte for byte' if ok else 'DIFFERENT images'}"
            "."), *parts))
    else:
        body.append(block)
    exp_page(lab, "e3", TITLE, SEEDS_DID, body)
