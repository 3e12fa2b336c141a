"""The lab's driver: plan every experiment's training runs into one pool (the sweep runner's
planner, so a lab started again keeps finished runs), train them, let each experiment measure
its answer and write its page, then write ``lab.json`` and the index.

It knows no experiment's details: each module in ``settings.MODULES`` declares its runs (and
their cost), whose runs it uses, its measurement, its one-line answer and its page.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganscope.domains import domain_for, load_dataset, user_folder_domains
from ganscope.environment import now_iso, usable_cores
from ganscope.errors import UserError
from ganscope.experiments.runner import execute, plan_runs
from ganscope.io import atomic_write_text
from ganscope.lab.base import EXPERIMENTS, LabState, PlannedRun
from ganscope.lab.pages import exp_page, nav, status_block
from ganscope.lab.settings import MODULES, Settings, shortened
from ganscope.report import html as H
from ganscope.report.run import footer


@dataclass
class LabOptions:
    out: Path
    quick: bool = False
    data_dir: str | None = None
    #: domain name -> folder, for the data sets ganscope cannot download (``--<name>-dir``);
    #: a domain not given here falls back on its environment variable
    folders: dict[str, str | None] = field(default_factory=dict)
    only: list[str] | None = None
    workers: int | None = None
    progress: bool = True
    settings: Settings | None = None  # default: full() or quick_settings()


def _short_title(exp: str) -> str:
    return MODULES[exp].TITLE.split(": ", 1)[1]


class Lab:
    def __init__(self, opts: LabOptions) -> None:
        self.o = opts
        s = opts.settings or (Settings.quick_settings() if opts.quick else Settings.full())
        self.t0 = time.perf_counter()
        self.lab = LabState(
            s=s, out=Path(opts.out), data_dir=opts.data_dir,
            folders={d.name: opts.folders.get(d.name) or os.environ.get(d.folder_env)
                     for d in user_folder_domains()},
            workers=opts.workers,
            progress=opts.progress, selected=list(opts.only or EXPERIMENTS),
            results={e: {"status": "not run"} for e in EXPERIMENTS})

    def say(self, msg: str) -> None:
        print(f"lab [{time.perf_counter() - self.t0:5.0f} s] {msg}", file=sys.stderr)

    def planned(self) -> list[PlannedRun]:
        """The runs the selected experiments need, in experiment order: an experiment's own,
        and those of the experiments it says it uses (E3: E1's and E2's; E4: E1's)."""
        lab = self.lab
        need = {u for e in lab.selected for u in (e, *MODULES[e].USES_RUNS_OF)}
        planned: list[PlannedRun] = []
        for exp, mod in MODULES.items():
            if exp in need and hasattr(mod, "planned_runs"):
                planned += mod.planned_runs(lab, planned)
        return list({p.name: p for p in planned}.values())

    # -- phase 1: every image run in one pool --
    def train_all(self) -> None:
        lab = self.lab
        entries = self.planned()
        if not entries:
            return
        t = time.perf_counter()
        # the scored image data first: missing, it is one line before anything
        first = next((p.cfg for p in entries if domain_for(p.cfg.data.name).offline_eval), None)
        if first is not None:
            load_dataset(first.data, 0)  # missing data: one line before anything is made
        plan = plan_runs([(lab.out / "runs" / p.name, p.cfg) for p in entries])
        lab.kept_runs = (len(plan.kept), len(plan.runs))
        lab.runs = {r.name: r for r in plan.runs}
        cost = {p.name: p.cost for p in entries}
        todo = sorted(plan.todo, key=lambda pr: -cost[Path(pr[0]).name])
        self.say(f"training {len(todo)} runs ({len(plan.kept)} finished before) in "
                 f"{self.o.workers or usable_cores()} processes")
        for r in execute(todo, "local", workers=self.o.workers, desc="lab runs",
                         progress=self.o.progress, stack=True):
            if r["status"] != "completed":
                lab.failed[Path(r["run"]).name] = f"{r['status']}: {r.get('error') or ''}"
        lab.times["training (E1, E2, E6 runs)"] = time.perf_counter() - t

    def measure(self, exp: str) -> None:
        """One experiment's measurement, timed; a failure is its page's, not the lab's."""
        lab = self.lab
        if exp not in lab.selected:
            return
        t = time.perf_counter()
        self.say(f"{exp.upper()}: {_short_title(exp)}")
        try:
            lab.results[exp] = {"status": "done"}
            lab.results[exp].update(MODULES[exp].measure(lab))
        except UserError as e:
            lab.results[exp] = {"status": "failed", "error": str(e)}
            self.say(f"{exp.upper()} failed: {e}")
        except Exception as e:  # a bug in one experiment: say it on its page, keep the lab
            traceback.print_exc()
            lab.results[exp] = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
        lab.times[exp.upper()] = time.perf_counter() - t

    # -- all of it --
    def run(self) -> Path:
        lab = self.lab
        lab.out.mkdir(parents=True, exist_ok=True)
        self.say(f"{'quick' if lab.s.quick else 'full'} lab into {lab.out} "
                 f"({', '.join(e.upper() for e in lab.selected)})")
        self.train_all()
        for exp in EXPERIMENTS:
            self.measure(exp)
        t = time.perf_counter()
        write_pages(lab)
        lab.times["pages"] = time.perf_counter() - t
        total = time.perf_counter() - self.t0
        record = {"format": "ganscope-lab-v1", "quick": lab.s.quick, "out": str(lab.out),
                  "selected": lab.selected, "seconds": round(total, 1),
                  "times": {k: round(v, 1) for k, v in lab.times.items()},
                  "settings": lab.s.__dict__, "failed_runs": lab.failed,
                  "finished": now_iso(), "machine": machine(),
                  "results": _jsonable(lab.results)}
        atomic_write_text(lab.out / "lab.json", json.dumps(record, indent=1, default=str) + "\n")
        index = write_index(lab, total)
        self.say(f"done in {total:.0f} s")
        return index


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__}


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def run_lab(opts: LabOptions) -> Path:
    return Lab(opts).run()


# --- pages ----------------------------------------------------------------------------------------


def write_pages(lab: LabState) -> None:
    for exp, mod in MODULES.items():
        try:
            mod.page(lab)
        except (UserError, KeyError, ValueError, OSError) as e:  # one broken page, not the lab
            lab.results[exp] = {"status": "failed", "error": f"page: {type(e).__name__}: {e}"}
            exp_page(lab, exp, mod.TITLE, mod.SEEDS_DID, [status_block(lab, exp)])


def _one_line(lab: LabState, exp: str) -> str:
    r = lab.results[exp]
    if r["status"] == "not run":
        return "not run (--only)"
    if r["status"] == "failed":
        return "failed: " + r["error"]
    try:
        return MODULES[exp].answer(r)
    except (KeyError, ValueError, TypeError):
        return "see the page"


def write_index(lab: LabState, total: float) -> Path:
    rows = []
    for exp in EXPERIMENTS:
        short = shortened(exp, lab.s)
        t = lab.times.get(exp.upper())
        rows.append([H.Raw(f"<td>{H.link(exp.upper(), f'{exp}.html')}</td>"),
                     _short_title(exp), lab.results[exp]["status"],
                     _one_line(lab, exp), "-" if t is None else f"{t:.0f} s",
                     "; ".join(short) if short else ("-" if not lab.s.quick else "nothing")])
    times = [(k, f"{v:.0f} s") for k, v in lab.times.items()]
    m = machine()
    body = [
        H.section("overview", "The experiments",
                  H.table(["", "experiment", "status", "answer", "analysis time",
                           "shortened" if lab.s.quick else "differs from the full lab"],
                          rows, cls="index", tid="index-table")),
        H.section("time", "Time",
                  H.p(f"The whole lab took {total:.0f} s ({total / 60:.1f} min) on "
                      f"{m['cpus']} CPU cores, training runs in parallel, one process per "
                      "core." + (f" {lab.kept_runs[0]} of its {lab.kept_runs[1]} E1/E2/E6 "
                                 "training runs had finished in an earlier start of this lab "
                                 "and were kept, not retrained (E5's 2-D runs likewise): this "
                                 "is not the time of a lab from scratch."
                                 if lab.kept_runs[0] else "")),
                  H.kv_table(times)),
        H.section("machine", "Machine and settings",
                  H.kv_table([("mode", "quick (shortened, honest labels on every page)"
                               if lab.s.quick else "full (the seeds' set-up, over seeds)"),
                              ("experiments", ", ".join(e.upper() for e in lab.selected)),
                              ("cpus", m["cpus"]), ("platform", m["platform"]),
                              ("python", m["python"]), ("torch", m["torch"]),
                              ("lab directory", str(lab.out)),
                              ("failed runs", "; ".join(f"{k}: {v}" for k, v in
                                                        lab.failed.items()) or "none")])),
    ]
    if lab.s.quick:
        body.insert(0, H.Raw('<div class="note"><strong>Quick lab.</strong> Every experiment '
                             "was shortened to fit 10 minutes on 2 cores; each page lists "
                             "exactly what was shortened next to its numbers.</div>"))
    doc = H.page("ganscope lab" + (" (quick)" if lab.s.quick else ""), H.join(body),
                 subtitle="the seed lab E1-E6, run over seeds and measured by ganscope",
                 nav=nav(), footer=footer())
    return H.write(lab.out / "index.html", doc)
