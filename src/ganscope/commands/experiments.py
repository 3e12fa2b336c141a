"""``ganscope sweep``, ``ganscope report``, ``ganscope lab`` and the over-seeds part of
``ganscope compare``.

Wired into the main parser with ``add_parsers(sub, runs_parent)``; the command functions are
``cmd_sweep``, ``cmd_report``, ``cmd_lab`` and ``compare_groups_text`` (called by the main
``compare``). Library errors are UserErrors (one line, exit 2); results go to stdout, progress to
stderr.

Handlers import their library modules when they run, so ``ganscope --help``, completion
and a quick command do not pay for the others (matplotlib, PIL and the modules over them);
cheap ones (a few ms, nothing third-party) are imported at the top.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ganscope.completion import complete_preset
from ganscope.data import DEFAULT_DATA
from ganscope.domains import DOMAINS, user_folder_domains
from ganscope.errors import UserError
from ganscope.tables import format_table
from ganscope.training.run import resolve_run, runs_root

EXIT_FAILED_RUNS = 1
DEFAULT_SEEDS = "0-2"  # ganscope.experiments.sweep.DEFAULT_SEEDS (not imported: --help stays light)


class DefaultSeeds(str):
    """sweep's --seeds when not given: '0-2', yet told apart from a typed --seeds 0-2, which
    overrides a spec file's seeds where this default does not."""


def add_parsers(sub: argparse._SubParsersAction, runs_parent: argparse.ArgumentParser) -> None:
    sw = sub.add_parser(
        "sweep", parents=[runs_parent],
        help="train every grid combination (or named variant) x seed into one sweep "
             "directory (local or Ray)",
        description="Expand --grid KEY=V,V,... (repeatable; 'loss' means loss.name) x --seeds "
                    "into runs SWEEP/runs/<cell>-s<seed>/ and train them, a process per core "
                    "(or one Ray task each). --spec FILE.yaml gives the same in a file, plus "
                    "named variants (an ablation); options given with it override the file's. "
                    "Started again, a sweep keeps finished runs and resumes interrupted ones.")
    complete_preset(sw.add_argument(
        "config", nargs="?",
        help="preset name (e1-mlp, ...) or path to a YAML config (with --spec: replaces the "
             "file's preset)"))
    sw.add_argument("--spec", metavar="FILE.yaml",
                    help="sweep spec file: preset, seeds, set, grid, variants (named lists of "
                         "overrides), description; e.g. configs/sweeps/ablation-cpu.yaml")
    sw.add_argument("--seeds", default=DefaultSeeds(DEFAULT_SEEDS),
                    help="seeds, as a range or a list: 0-4, 0,1,2, 0-2,9 (default: the spec "
                         "file's, else 0-2)")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V,V,...",
                    help="a config key and its values, e.g. --grid loss=bce,wgan-gp "
                         "--grid optim.lr=1e-4,2e-4 (repeatable; values are YAML; joins a "
                         "spec file's grid)")
    sw.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="KEY=VALUE",
                    help="override a config value in every run (after a spec file's set)")
    sw.add_argument("--data-dir", metavar="DIR", help="folder with the dataset's files")
    sw.add_argument("--out", metavar="DIR",
                    help="sweep directory (default RUNS_DIR/sweep-PRESET-HASH, the same for the "
                         "same command)")
    sw.add_argument("--backend", choices=["local", "ray"], default="local",
                    help="local: a process per core (default); ray: one Ray task per run")
    sw.add_argument("--address", metavar="HOST:PORT",
                    help="Ray cluster to join (default: start a local Ray instance)")
    sw.add_argument("--workers", type=int, metavar="N",
                    help="local backend: parallel processes (default: one per core)")
    sw.add_argument("--stack", action=argparse.BooleanOptionalAction, default=True,
                    help="train the runs that differ only in their seed as one stacked model in "
                         "one process (default; each run keeps its own directory); "
                         "--no-stack: one process per run")
    sw.add_argument("--no-plot", action="store_true",
                    help="skip each run's curves (losses, D outputs, metrics; for 2-D points "
                         "the animation); `ganscope plot RUN` draws them later")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")

    rp = sub.add_parser(
        "report", parents=[runs_parent],
        help="one self-contained HTML report of a run or a sweep",
        description="Write one HTML file (figures embedded, nothing loaded from the network): "
                    "a run's config, provenance, environment, curves, samples over epochs, "
                    "metrics, diagnostics, latent probe and directions; a sweep's comparison "
                    "over seeds with intervals, bands and every run.")
    rp.add_argument("target", metavar="RUN|SWEEP", help="run name or path, or a sweep directory")
    rp.add_argument("--out", metavar="FILE.html",
                    help="where to write (default RUN/report.html or SWEEP/report.html)")

    lb = sub.add_parser(
        "lab", parents=[runs_parent],
        help="the whole seed lab (E1-E6) over seeds, into one HTML lab report",
        description="Run E1-E6 as the seeds ran them, over seeds, with the measured answers, "
                    "and write LAB/index.html plus a page per experiment. --quick shortens "
                    "every experiment (each page says exactly how) to finish in under 10 "
                    "minutes on 2 cores.")
    lb.add_argument("--quick", action="store_true",
                    help="shortened runs (fewer epochs, data limits, seeds, steps), < 10 min")
    lb.add_argument("--out", metavar="DIR",
                    help="lab directory (default RUNS_DIR/lab, or RUNS_DIR/lab-quick)")
    lb.add_argument("--data-dir", metavar="DIR",
                    help=f"folder with {DOMAINS.get(DEFAULT_DATA).title}'s files")
    for d in user_folder_domains():  # data ganscope cannot download: the user names a folder
        lb.add_argument(f"--{d.name}-dir", metavar="DIR", dest=f"folder_{d.name}",
                        help=f"{d.title} folder for the experiments on it (default "
                             f"${d.folder_env}; without either, they are skipped and their "
                             "pages say so)")
    lb.add_argument("--only", metavar="E1,E2,...",
                    help="run only these experiments (the others' pages say they were not run)")
    lb.add_argument("--workers", type=int, metavar="N",
                    help="parallel training processes (default: one per core)")
    lb.add_argument("--no-progress", action="store_true", help="no progress bars")


# --- sweep ----------------------------------------------------------------------------------------


def cmd_sweep(a: argparse.Namespace) -> int:
    from ganscope.experiments.sweep import default_dir, make_spec, read_sweep_file, run_sweep

    if a.workers is not None and a.workers < 1:
        raise UserError("--workers must be at least 1")
    file = read_sweep_file(a.spec) if a.spec else None
    seeds = None if isinstance(a.seeds, DefaultSeeds) else a.seeds  # None: the file's, or 0-2
    spec = make_spec(a.config, a.overrides, a.grid, seeds, a.data_dir, file=file)
    out = Path(a.out) if a.out else default_dir(spec, a.runs_dir)
    n = len(spec["cells"]) * len(spec["seeds"])

    def announce(plan) -> None:
        fresh = len(plan.todo) - len(plan.resumed)
        print(f"sweep {out}: {len(spec['cells'])} configurations x {len(spec['seeds'])} seeds "
              f"= {n} runs; {len(plan.kept)} completed before, {len(plan.resumed)} to resume, "
              f"{fresh} to train ({a.backend})", file=sys.stderr)

    t0 = time.perf_counter()
    try:
        plan, results = run_sweep(out, spec, backend=a.backend, workers=a.workers,
                                  address=a.address, progress=not a.no_progress,
                                  announce=announce, stack=a.stack, plots=not a.no_plot)
    except KeyboardInterrupt:
        print(f"interrupted: start the same `ganscope sweep` again (or with --out {out}) to "
              "resume", file=sys.stderr)
        return 130
    done = len(plan.kept) + sum(r["status"] == "completed" for r in results)
    failed = [r for r in results if r["status"] != "completed"]
    print(f"sweep {out}: {done} of {n} runs completed, {len(failed)} failed "
          f"({time.perf_counter() - t0:.0f} s)")
    for r in failed:
        print(f"failed: {Path(r['run']).name}: {r['status']}"
              f"{': ' + r['error'] if r.get('error') else ''}")
    print(f"next: ganscope compare {out}; ganscope report {out}")
    return EXIT_FAILED_RUNS if failed else 0


# --- compare over seeds ---------------------------------------------------------------------------


def find_sweep(target: str, runs_dir: str | None) -> Path | None:
    from ganscope.experiments.sweep import is_sweep

    for cand in (Path(target), runs_root(runs_dir) / target):
        if is_sweep(cand):
            return cand
    return None


def compare_sweeps(a: argparse.Namespace, sweeps: list[Path]) -> int:
    """``ganscope compare SWEEP...``: the over-seeds comparison, written into SWEEP/compare/."""
    from ganscope.experiments import compare as C

    groups: list[C.Group] = []
    for s in sweeps:
        _, gs = C.sweep_groups(s)
        for g in gs:
            if len(sweeps) > 1:
                g.label = f"{s.name}/{g.label}"
            groups.append(g)
    result = C.compare_groups(groups)
    title = sweeps[0].name if len(sweeps) == 1 else f"{len(sweeps)} sweeps"
    out_dir = Path(a.plot) if a.plot else sweeps[0] / "compare"
    files = C.write_outputs(out_dir, result, groups, title)
    if a.json:
        print(json.dumps({"sweeps": [str(s) for s in sweeps], **result,
                          "files": [str(f) for f in files]}, indent=2))
        return 0
    n_runs = sum(len(g.runs) for g in groups)
    missing = sum(len(g.missing) for g in groups)
    print(f"{title}: {len(groups)} configurations, {n_runs} runs"
          + (f" ({missing} not started yet)" if missing else ""))
    _print_result(result)
    print(f"wrote {out_dir}/: {', '.join(f.name for f in files)}")
    return 0


def _print_result(result: dict) -> None:
    from ganscope.experiments import compare as C

    head, rows = C.table(result)
    if not rows:
        print("no run has metrics or events yet")
        return
    print(format_table(head, rows))
    notes = C.significance_notes(result)
    if notes:
        print(f"note: {100 * result['level']:.0f}% Student-t intervals over seeds; where two "
              "overlap the configurations are not distinguishable at this number of seeds")
        for n in notes:
            print(f"  {n}")
    if not result["comparable"]:
        print("note: these runs were evaluated with different extractors, references or n; "
              "their numbers are not comparable")


def compare_groups_text(runs: list, plot: str | None) -> list[str]:
    """For plain runs: print the over-seeds table of every configuration that has at least two
    runs (runs sharing a config apart from the seed); with ``plot``, write the bands there.
    Returns the files written."""
    from ganscope.experiments import compare as C

    groups = C.group_runs(runs)
    if not any(len(g.runs) > 1 for g in groups):
        if plot:
            raise UserError("--plot needs at least two runs of one configuration (different "
                            "seeds) or a sweep")
        return []
    result = C.compare_groups(groups)
    print()
    print(f"over seeds ({sum(len(g.runs) > 1 for g in groups)} configurations with several "
          "seeds):")
    _print_result(result)
    files = []
    if plot:
        files = C.write_outputs(Path(plot), result, groups, "runs")
        print(f"wrote {plot}/: {', '.join(f.name for f in files)}")
    return [str(f) for f in files]


# --- report ---------------------------------------------------------------------------------------


def cmd_report(a: argparse.Namespace) -> int:
    from ganscope.report.run import write_run_report
    from ganscope.report.sweep import write_sweep_report

    out = a.out
    if out is not None and not str(out).endswith((".html", ".htm")):
        raise UserError(f"--out {out}: a report is one HTML file, give a name ending in .html")
    sweep = find_sweep(a.target, a.runs_dir)
    if sweep is not None:
        path = write_sweep_report(sweep, out)
    else:
        path = write_run_report(resolve_run(a.target, a.runs_dir), out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)")
    return 0


# --- lab ------------------------------------------------------------------------------------------


def cmd_lab(a: argparse.Namespace) -> int:
    from ganscope.lab import EXPERIMENTS, LabOptions, run_lab

    if a.workers is not None and a.workers < 1:
        raise UserError("--workers must be at least 1")
    only = None
    if a.only:
        only = [e.strip().lower() for e in a.only.split(",") if e.strip()]
        bad = [e for e in only if e not in EXPERIMENTS]
        if bad or not only:
            raise UserError(f"unknown experiment '{bad[0] if bad else a.only}' in --only: choose "
                            f"from {', '.join(EXPERIMENTS)}")
    out = Path(a.out) if a.out else runs_root(a.runs_dir) / ("lab-quick" if a.quick else "lab")
    folders = {d.name: getattr(a, f"folder_{d.name}") for d in user_folder_domains()}
    opts = LabOptions(out=out, quick=a.quick, data_dir=a.data_dir, folders=folders,
                      only=only, workers=a.workers, progress=not a.no_progress)
    index = run_lab(opts)
    print(f"wrote {index} ({out}/: index.html and a page per experiment)")
    return 0
