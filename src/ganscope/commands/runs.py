"""``ganscope runs``, ``plot``, ``generate``, ``compare`` and ``export``: commands over existing runs.

Handlers import their library modules when they run, so ``ganscope --help``, completion
and a quick command do not pay for the others (matplotlib, PIL and the modules over them);
cheap ones (a few ms, nothing third-party) are imported at the top.
"""

from __future__ import annotations

import argparse
import json

from ganscope.commands.experiments import compare_groups_text, compare_sweeps, find_sweep
from ganscope.errors import UserError
from ganscope.sampling import generate_images, latents_from_seed
from ganscope.tables import fmt_number, format_table
from ganscope.training.run import iter_runs, load_generator, resolve_run, runs_root


def cmd_runs(a: argparse.Namespace) -> int:
    from ganscope.diagnostics import diagnose

    rows = []
    for run in iter_runs(a.runs_dir):
        try:
            meta, cfg = run.meta(), run.config()
            planned = meta.get("epochs_planned", cfg.train.epochs)
            rows.append({"name": run.name, "preset": cfg.preset,
                         "epochs_done": meta.get("epochs_done", 0), "epochs_planned": planned,
                         "status": run.status(), "last": meta.get("last", {}),
                         "best": meta.get("best"),
                         "flags": [f.to_dict() for f in diagnose(run)], "path": str(run.path)})
        except UserError as e:
            rows.append({"name": run.name, "preset": "?", "epochs_done": 0, "epochs_planned": 0,
                         "status": "damaged", "last": {}, "best": None, "flags": [],
                         "path": str(run.path), "error": str(e)})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs in {runs_root(a.runs_dir)}: start one with `ganscope train e1-mlp`")
        return 0

    head = ("NAME", "PRESET", "EPOCHS", "STATUS", "LOSS_D", "LOSS_G", "BEST_FID", "FLAGS")
    print(format_table(head, [
        (r["name"], r["preset"], f"{r['epochs_done']}/{r['epochs_planned']}", r["status"],
         _fmt(r["last"].get("loss_d")), _fmt(r["last"].get("loss_g")),
         f"{r['best']['fid']:.2f}@{r['best']['epoch']}" if r["best"] else "-",
         ",".join(f["code"] for f in r["flags"]) or "-") for r in rows
    ]))
    for r in rows:
        for f in r["flags"]:
            print(f"{r['name']}: {f['message']}")
    return 0


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def cmd_plot(a: argparse.Namespace) -> int:
    # the figures training writes at the end (a 2-D run's animation too): a run trained with
    # --no-plot gets them here
    from ganscope.viz.run_figures import write_run_figures

    for f in write_run_figures(resolve_run(a.run, a.runs_dir)):
        print(f)
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    from ganscope.latent.conditional import class_latents
    from ganscope.latent.generate import check_output_path, load_latents, save_images

    if a.n < 1:
        raise UserError("-n must be at least 1")
    check_output_path(a.out)
    run = resolve_run(a.run, a.runs_dir)
    G = load_generator(run, a.epoch, raw=a.no_ema)
    z_dim = run.config().model.z_dim
    z = load_latents(a.z, z_dim) if a.z else latents_from_seed(a.seed, a.n, z_dim)
    nrow = a.nrow
    if a.classes:  # the same z for each class asked for, one row per class
        z, per_class = class_latents(run.config(), z, a.classes)
        nrow = nrow or per_class
    images = generate_images(G, z, progress=not a.no_progress)
    out = save_images(images, a.out, nrow=nrow, scale=a.scale)
    src = f"--z {a.z}" if a.z else f"seed {a.seed}"
    print(f"wrote {out} ({images.shape[0]} images from {src}, run {run.name})")
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    from ganscope.diagnostics import diagnose
    from ganscope.metrics.table import COLUMNS, metric_cells
    from ganscope.training.evaluation import best_by_fid, comparable

    sweeps = [find_sweep(t, a.runs_dir) for t in a.runs]
    if all(sweeps):
        return compare_sweeps(a, sweeps)
    if any(sweeps):
        raise UserError("give sweep directories or runs to compare, not both")
    out, missing, runs = [], [], []
    for name in a.runs:
        run = resolve_run(name, a.runs_dir)
        runs.append(run)
        records = run.read_metrics()
        if not records:
            missing.append(run.name)
        last = max(records, key=lambda r: (r["epoch"], r["time"])) if records else None
        best = best_by_fid(records)
        out.append({"run": run.name, "preset": run.config().preset, "last": last,
                    "best": best and {"epoch": best["epoch"], "fid": best["metrics"]["fid"]},
                    "flags": [f.code for f in diagnose(run)]})
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    cols = list(COLUMNS)
    rows = []
    for r in out:
        m = r["last"]["metrics"] if r["last"] else {}
        best = (f"{fmt_number(r['best']['fid'], '.2f')}@{r['best']['epoch']}"
                if r["best"] else "-")
        rows.append([r["run"], r["preset"], str(r["last"]["epoch"]) if r["last"] else "-",
                     *metric_cells(m, cols), best, ",".join(r["flags"]) or "-"])
    print(format_table(["RUN", "PRESET", "EPOCH", *[c[1] for c in cols], "BEST_FID@EP",
                        "FLAGS"], rows))
    lasts = [r["last"] for r in out if r["last"]]
    if any(not comparable(x, lasts[0]) for x in lasts[1:]):
        print("note: these runs were evaluated with different extractors, references or n; "
              "their numbers are not comparable - re-run `ganscope eval` with the same -n")
    compare_groups_text(runs, a.plot)
    for name in missing:
        print(f"note: run '{name}' has no metrics yet: `ganscope eval {name}`")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from ganscope.export import export_generator, sidecar_path

    run = resolve_run(a.run, a.runs_dir)
    out = export_generator(run, a.format, a.out, epoch=a.epoch, best=a.best)
    info = json.loads(sidecar_path(out).read_text())
    print(f"wrote {out} ({info['file_format']}, generator of epoch {info['epoch']} from "
          f"{info['checkpoint']}, run {run.name}) and {sidecar_path(out)}")
    return 0
