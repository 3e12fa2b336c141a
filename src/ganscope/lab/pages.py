"""The HTML every lab page shares: the frame of an experiment's page (what the seeds did, what
ganscope ran, what was shortened), its status when it did not run, and the links between pages.

One module, so that the six experiment pages and the index look and link alike.
"""

from __future__ import annotations

from typing import Any

from ganscope.lab.base import EXPERIMENTS, LabState
from ganscope.report import html as H
from ganscope.report.run import footer


def nav() -> list[tuple[str, str]]:
    return [("index", "index.html")] + [(e.upper(), f"{e}.html") for e in EXPERIMENTS]


def bullets(items: list[str], tag: str = "ul") -> H.Raw:
    """An HTML list of plain-text items (escaped)."""
    return H.Raw(f"<{tag}>" + "".join(f"<li>{H.esc(x)}</li>" for x in items) + f"</{tag}>")


def ran_box(lab: LabState, lines: list[str], items: list[tuple[str, Any]]) -> H.Raw:
    """'What ganscope ran': the experiment's settings, and next to them, when the lab was
    shortened, exactly what differs from the full lab (``lines``, from its ``shortened``)."""
    if lab.s.quick or lines:
        box = H.Raw('<div class="note"><strong>Shortened (--quick):</strong><ul>'
                    + "".join(f"<li>{H.esc(x)}</li>" for x in lines or ["nothing"])
                    + "</ul>The numbers on this page come from these shortened runs; "
                    "`ganscope lab` without --quick runs the seeds' full set-up.</div>")
    else:
        box = H.p("Full settings: as the seeds ran it (and over seeds).", "ok")
    return H.section("ran", "What ganscope ran", box, H.kv_table(items))


def status_block(lab: LabState, exp: str) -> H.Raw | None:
    """Why a page has no answers (not run, or failed), or None when it has them."""
    r = lab.results[exp]
    if r["status"] == "not run":
        return H.Raw(f'<div class="skip">{H.esc(exp.upper())} was not run in this lab '
                     f"(--only {H.esc(','.join(lab.selected))}).</div>")
    if r["status"] == "failed":
        return H.Raw(f'<div class="skip">{H.esc(exp.upper())} failed: {H.esc(r["error"])}'
                     "</div>")
    return None


def exp_page(lab: LabState, exp: str, title: str, seeds_did: str, body: list[Any]) -> None:
    """Write ``LAB/<exp>.html``: what the seeds did, then ``body``."""
    t = lab.times.get(exp.upper())
    sub = f"{'quick' if lab.s.quick else 'full'} lab" + (
        f"; this experiment's analysis took {t:.0f} s" if t is not None else "")
    parts = [H.section("seeds", "What the seeds did", H.p(seeds_did)), *body]
    doc = H.page(title, H.join(parts), subtitle=sub, nav=nav(), footer=footer())
    H.write(lab.out / f"{exp}.html", doc)
