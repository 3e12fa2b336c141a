"""The ``ganscope`` command: a thin layer over the library.

Library code raises; only this module prints errors and picks exit codes: a UserError becomes
one ``error: ...`` line on stderr and exit code 2, Ctrl-C during training exits 130 after saving
a checkpoint. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from ganscope import __version__
from ganscope.completion import complete_preset
from ganscope.directions.cli import add_parsers as add_directions_parsers
from ganscope.directions.cli import run_directions
from ganscope.errors import ConfigError, TrainingInterrupted, UserError
from ganscope.experiments.cli import add_parsers as add_experiment_parsers
from ganscope.experiments.cli import cmd_lab, cmd_report, cmd_sweep
from ganscope.latent.cli import add_parsers as add_latent_parsers
from ganscope.latent.cli import run_latent
from ganscope.serve.cli import add_parser as add_serve_parser
from ganscope.serve.cli import run_serve
from ganscope.training.run import RESUMABLE_KEYS, RunWarning

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _runs_dir_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--runs-dir", metavar="DIR",
                   help="where runs live (default: $GANSCOPE_RUNS, else ./runs)")
    return p


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in our one-line style (still exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        m = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if m:  # argparse's own wording of this one varies between Python versions
            raise UserError(f"unknown command '{m.group(1)}': choose one of {', '.join(COMMANDS)}")
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    runs = _runs_dir_parent()
    p = _Parser(prog="ganscope", description="Train, compare, evaluate and explore GANs.")
    p.add_argument("--version", action="version", version=f"ganscope {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", parents=[runs], help="train a preset or YAML config")
    complete_preset(t.add_argument(
        "config", nargs="?", help="preset name (e1-mlp, ...) or path to a YAML config"))
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=20 (repeatable)")
    t.add_argument("--seed", type=int, help="random seed (same seed, same weights on CPU)")
    t.add_argument("--name", help="run name (default: PRESET-YYYYmmdd-HHMMSS)")
    t.add_argument("--data-dir", metavar="DIR", help="folder with the dataset's original files")
    t.add_argument("--device", choices=["cpu", "cuda", "mps", "auto"],
                   help="cpu, cuda, mps (Apple GPUs) or auto: CUDA, then MPS, then the CPU; "
                        "same as --set train.device=")
    t.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                   help="autocast precision for the forward passes (GPU); --set train.precision=")
    t.add_argument("--compile", action="store_true",
                   help="torch.compile G and D (GPU speed-up; slow first steps)")
    t.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads (default: one per core; split among torchrun ranks)")
    t.add_argument("--resume", metavar="RUN", help="continue an interrupted run (name or path)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-plot", action="store_true", help="skip writing the curves at the end")
    t.add_argument("--eval-every", type=int, metavar="N",
                   help="score G every N epochs (and at the end); same as --set eval.every=N")
    t.add_argument("--log", metavar="SINKS",
                   help="also log to tensorboard, wandb or both (comma-separated; none turns "
                        "them off on --resume); same as --set log.sinks=[...]")

    cf = sub.add_parser(
        "config", help="print the resolved config `train` would use, as YAML (no run made)",
        description="Print the config that `ganscope train` with the same preset and options "
                    "would save as the run's config.yaml, without creating a run.")
    complete_preset(cf.add_argument("config", metavar="PRESET",
                                    help="preset name (e1-mlp, ...) or path to a YAML config"))
    cf.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set train.epochs=20 (repeatable)")
    cf.add_argument("--seed", type=int, help="random seed, as for train")
    cf.add_argument("--data-dir", metavar="DIR", help="folder with the dataset's original files")

    r = sub.add_parser("runs", parents=[runs], help="list runs")
    r.add_argument("--json", action="store_true", help="machine-readable output")

    pl = sub.add_parser("plot", parents=[runs], help="write a run's loss and D-output curves")
    pl.add_argument("run", help="run name or path")

    g = sub.add_parser("generate", parents=[runs], help="images from a run's generator (E3)")
    g.add_argument("run", help="run name or path")
    g.add_argument("--seed", type=int, default=0,
                   help="z = torch.randn(N, z_dim) after torch.manual_seed(SEED) (default 0)")
    g.add_argument("-n", type=int, default=8, help="number of images (default 8)")
    g.add_argument("--z", metavar="FILE.npy", help="use these latent vectors (N, z_dim) instead")
    g.add_argument("--epoch", type=int, help="generator of this epoch (default: the latest)")
    g.add_argument("--out", required=True, help="grid.png, or samples.npy for raw uint8 (N, H, W)")
    g.add_argument("--nrow", type=int, help="images per grid row")
    g.add_argument("--scale", type=int, default=3, help="pixel size in the PNG grid (default 3)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", parents=[runs],
                       help="score a run's generator (or any image set) with FID, KID, PRDC, ...")
    e.add_argument("run", nargs="?", help="run name or path")
    e.add_argument("--images", metavar="FILE.npy|DIR",
                   help="score this image set instead of a run (uint8 or float (N, 28, 28), "
                        "or a folder of PNGs)")
    e.add_argument("--checkpoint", default="last", metavar="last|all|EPOCH",
                   help="which generator(s) of the run (default: last)")
    e.add_argument("-n", type=int, help="generated images (default: the run's eval.n, 10000)")
    e.add_argument("--seed", type=int, help="seed of the latents (default: the run's eval.seed)")
    e.add_argument("--reference", choices=["test", "train"],
                   help="real split to compare with (default: test)")
    e.add_argument("--metrics", help="comma-separated metric names (default: all; see "
                                     "`ganscope metrics`)")
    e.add_argument("--data-dir", metavar="DIR", help="folder with Fashion-MNIST's files")
    e.add_argument("--json", action="store_true", help="print the records as JSON")
    e.add_argument("--no-progress", action="store_true", help="no progress bars")
    e.add_argument("--no-save", action="store_true",
                   help="do not append the results to the run's metrics.jsonl")

    c = sub.add_parser("compare", parents=[runs],
                       help="one table of several runs' metrics; over seeds for sweeps and "
                            "for runs that differ only in their seed")
    c.add_argument("runs", nargs="+", metavar="RUN|SWEEP",
                   help="run names or paths, or sweep directories")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--plot", metavar="DIR",
                   help="write the comparison (summary.json, table.csv, curves and metrics "
                        "with bands over seeds) here (default for sweeps: SWEEP/compare/)")

    l2 = sub.add_parser("lab2d", parents=[runs], help="E5: GAN / WGAN / WGAN-GP x Adam / RMSprop on 2-D points, "
                                      "over seeds")
    l2.add_argument("--data", default="ring8",
                    help="ring8, grid25, swissroll, spiral, moons, circles (NAME:key=value,...) "
                         "or points:FILE (default ring8)")
    l2.add_argument("--losses", default="gan,wgan,wgan-gp", help="default gan,wgan,wgan-gp")
    l2.add_argument("--optims", default="adam,rmsprop", help="default adam,rmsprop")
    l2.add_argument("--seeds", default="0-2",
                    help="seeds per cell, as a range or a list as for sweep: 0-4, 0,1,2, 0-2,9; "
                         "one number is that one seed (default 0-2)")
    l2.add_argument("--steps", type=int, default=2000,
                    help="generator steps per run (default 2000)")
    l2.add_argument("--setup", choices=["literature", "same"], default="literature",
                    help="each objective's published optimiser settings, or the seed's one "
                         "setting for all (default literature)")
    l2.add_argument("--workers", type=int, metavar="N",
                    help="parallel processes (default: one per core)")
    l2.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value in every cell, e.g. --set data.n_points=5000")
    l2.add_argument("--out", metavar="DIR",
                    help="comparison directory (default: RUNS_DIR/lab2d-DATA)")

    me = sub.add_parser("metrics", help="list the registered metrics and the extractor")
    me.add_argument("--json", action="store_true", help="machine-readable output")

    m = sub.add_parser("models", help="list the registered models")
    m.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser("show-model", help="print(G) and print(D) of a registered model")
    s.add_argument("name", help="model name (see `ganscope models`)")
    s.add_argument("--loss", default="bce", help="D ends in a sigmoid only for BCE-type losses")
    s.add_argument("--z-dim", type=int, default=100, help="latent size (default 100)")

    sub.add_parser("presets", help="list the shipped presets")
    co = sub.add_parser(
        "completion", help="print a bash or zsh completion script (needs shtab)",
        description="Print a completion script for subcommands, options and preset names. "
                    "bash: source <(ganscope completion bash) in ~/.bashrc; zsh: save "
                    "`ganscope completion zsh` as _ganscope in a folder on $fpath.")
    co.add_argument("shell", choices=["bash", "zsh"], help="bash or zsh")
    add_latent_parsers(sub, runs)
    add_directions_parsers(sub, runs)
    add_serve_parser(sub)
    add_experiment_parsers(sub, runs)
    _add_export_parser(sub, runs)
    return p


# --- commands ---------------------------------------------------------------------------------


def new_run_config(a: argparse.Namespace, execution: Sequence[str] = ()):
    """The validated config a new run of `train` gets from its options (`ganscope config` prints
    it): the preset or YAML file, then --set, --seed, --eval-every and ``execution`` (the
    device, precision, ... overrides), then --data-dir."""
    from ganscope.config import apply_overrides, load_config

    cfg = load_config(a.config)
    overrides = list(a.overrides)
    if getattr(a, "seed", None) is not None:
        overrides.append(f"seed={a.seed}")
    if getattr(a, "eval_every", None) is not None:
        overrides.append(f"eval.every={a.eval_every}")
    cfg = apply_overrides(cfg, overrides + list(execution))
    if a.data_dir:
        cfg.data.dir = str(Path(a.data_dir).resolve())
    cfg.validate().check_model_fits_data()  # else it fails in the first step, run dir made
    return cfg


def cmd_train(a: argparse.Namespace) -> int:
    from ganscope.config import apply_overrides
    from ganscope.domains import load_dataset
    from ganscope.training import distributed
    from ganscope.training.loop import count_steps_per_epoch, resolve_device, train
    from ganscope.training.run import Run, resolve_run
    from ganscope.training.sinks import check_sinks_available

    # How to run, not what to train: these may change when resuming (a GPU run resumed on a CPU).
    execution = []
    for flag, key in (("device", "device"), ("precision", "precision"), ("threads", "threads")):
        if getattr(a, flag) is not None:
            execution.append(f"train.{key}={getattr(a, flag)}")
    if a.compile:
        execution.append("train.compile=true")
    if a.log is not None:  # how the run is watched: may change on --resume too
        sinks = [] if a.log.strip().lower() in ("", "none") else a.log.split(",")
        execution.append(f"log.sinks={json.dumps([s.strip() for s in sinks])}")
    held = contextlib.ExitStack()  # the training lock of a resumed run, once taken
    if a.resume:
        if a.config:
            raise ConfigError("give either a config or --resume RUN, not both")
        if a.seed is not None or a.name or a.data_dir or a.eval_every is not None:
            raise ConfigError(
                "--seed, --name, --data-dir and --eval-every cannot change when resuming a run")
        resumable = tuple(f"{k}=" for k in RESUMABLE_KEYS)
        bad = [o for o in a.overrides if not o.startswith(resumable)]
        if bad:
            raise ConfigError(
                f"only train.epochs and how to run (device, precision, compile, threads, "
                f"channels_last) can change when resuming (got --set {bad[0]}): "
                "start a new run for other changes"
            )
        run = resolve_run(a.resume, a.runs_dir)
        overrides = list(a.overrides) + execution
        cfg = apply_overrides(run.config(), overrides).validate()
        check_sinks_available(cfg.log.sinks)  # a missing extra: say so before anything changes
        resolve_device(cfg.train.device)  # no GPU: say so before reading any data
        info = distributed.setup(cfg.train.device)
        if info.main:  # the run's one trainer from here on, config rewrite included
            held.enter_context(run.training_lock())
        try:
            dataset = load_dataset(cfg.data, cfg.seed)
            if overrides and info.main:  # only now: a data error must leave the run as it was
                from ganscope.config import save_yaml
                from ganscope.io import atomic_write_text

                atomic_write_text(run.config_path, save_yaml(cfg))
        except BaseException:
            held.close()
            raise
        distributed.barrier(info)  # every rank reads the config rank 0 may just have rewritten
        if info.main:
            print(f"resuming {run.path}", file=sys.stderr)
        resume = True
    else:
        if not a.config:
            raise ConfigError("give a preset name or a YAML config (see `ganscope presets`)")
        cfg = new_run_config(a, execution)
        check_sinks_available(cfg.log.sinks)  # a missing extra: say so before the run dir exists
        resolve_device(cfg.train.device)  # no GPU: say so before reading any data
        info = distributed.setup(cfg.train.device)
        dataset = load_dataset(cfg.data, cfg.seed)  # before the run dir exists: a data error leaves nothing
        count_steps_per_epoch(len(dataset.images), cfg.train)  # and nor does a batch too large
        # Under torchrun, rank 0 names and creates the run; the others train into the same one.
        path = str(Run.create(cfg, a.runs_dir, a.name).path) if info.main else None
        run = Run(distributed.broadcast_object(path, info))
        resume = False
    try:
        train(run, dataset=dataset, resume=resume, progress=not a.no_progress, dist_info=info)
    except TrainingInterrupted:
        if info.main:
            print(f"interrupted: checkpoint saved in {run.path}; continue with "
                  f"`ganscope train --resume {run.path}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        held.close()
        distributed.cleanup(info)
    if not info.main:
        return 0
    figs = []
    if not a.no_plot:
        from ganscope.training.figures import write_run_figures

        figs = write_run_figures(run)
    meta = run.meta()
    last = meta.get("last", {})
    print(f"run:      {run.path}")
    print(f"status:   {meta.get('status')} ({meta.get('epochs_done')}/{cfg.train.epochs} epochs, "
          f"last loss_d {last.get('loss_d', float('nan')):.4f}, "
          f"loss_g {last.get('loss_g', float('nan')):.4f})")
    if figs:
        print(f"curves:   {', '.join(str(f) for f in figs)}")
    grids = run.sample_epochs()
    if grids:
        print(f"samples:  {run.samples}/ ({len(grids)} grids, "
              f"latest {run.sample_grid(grids[-1]).name})")
    print(f"weights:  {run.checkpoints}/")
    return 0


def cmd_config(a: argparse.Namespace) -> int:
    from ganscope.config import save_yaml

    sys.stdout.write(save_yaml(new_run_config(a)))  # what train saves as RUN/config.yaml
    return 0


def cmd_completion(a: argparse.Namespace) -> int:
    from ganscope.completion import completion_script

    sys.stdout.write(completion_script(build_parser(), a.shell))
    return 0


def cmd_runs(a: argparse.Namespace) -> int:
    from ganscope.diagnostics import diagnose
    from ganscope.training.run import iter_runs, runs_root

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
    from ganscope.tables import format_table

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
    from ganscope.training.run import resolve_run
    from ganscope.viz.curves import plot_run

    for f in plot_run(resolve_run(a.run, a.runs_dir)):
        print(f)
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    from ganscope.latent.generate import (
        check_output_path,
        generate_images,
        latents_from_seed,
        load_generator,
        load_latents,
        save_images,
    )
    from ganscope.training.run import resolve_run

    if a.n < 1:
        raise UserError("-n must be at least 1")
    check_output_path(a.out)
    run = resolve_run(a.run, a.runs_dir)
    G = load_generator(run, a.epoch)
    z_dim = run.config().model.z_dim
    z = load_latents(a.z, z_dim) if a.z else latents_from_seed(a.seed, a.n, z_dim)
    images = generate_images(G, z, progress=not a.no_progress)
    out = save_images(images, a.out, nrow=a.nrow, scale=a.scale)
    src = f"--z {a.z}" if a.z else f"seed {a.seed}"
    print(f"wrote {out} ({images.shape[0]} images from {src}, run {run.name})")
    return 0


def _eval_config(a: argparse.Namespace, base):
    """The run's (or default) EvalConfig with this command's options applied, validated."""
    import dataclasses

    from ganscope.config import MIN_EVAL_N
    from ganscope.metrics.registry import METRICS

    ec = dataclasses.replace(base)
    if a.n is not None:
        if a.n < MIN_EVAL_N:
            raise UserError(f"-n must be at least {MIN_EVAL_N}")
        ec.n = a.n
    if a.seed is not None:
        ec.seed = a.seed
    if a.reference:
        ec.reference = a.reference
    if a.metrics:
        ec.metrics = a.metrics
    if not ec.metric_names():
        raise UserError("--metrics must name at least one metric (see `ganscope metrics`)")
    for name in ec.metric_names():
        METRICS.get(name)
    return ec


def _print_records(records: list[dict], label: str) -> None:
    from ganscope.metrics.table import metric_cells, present_columns, provenance_line
    from ganscope.tables import format_table

    cols = present_columns(records)
    rows = [[str(r.get(label, "-"))] + metric_cells(r["metrics"], cols) for r in records]
    print(format_table([label.upper()] + [c[1] for c in cols], rows))
    print(provenance_line(records[-1]))


def cmd_eval(a: argparse.Namespace) -> int:
    from ganscope.config import EvalConfig

    if bool(a.run) == bool(a.images):
        raise UserError("give a run to evaluate, or --images FILE.npy|DIR, but not both")
    if a.images:
        from ganscope.metrics.evaluate import evaluate_images, reference_features
        from ganscope.metrics.image_files import load_image_set

        if a.checkpoint != "last" or a.no_save:
            raise UserError("--checkpoint and --no-save apply to runs, not to --images")
        ec = _eval_config(a, EvalConfig())  # bad options fail before any file is read
        images = load_image_set(a.images)
        if a.n is not None:
            images = images[:a.n]
        ref = reference_features(ec.reference, ec.n, a.data_dir, progress=not a.no_progress)
        rec = evaluate_images(images, ref, metrics=ec.metric_names(), seed=ec.seed,
                              progress=not a.no_progress, what=str(a.images))
        rec = {"images": str(a.images), **rec}
        if a.json:
            print(json.dumps([rec], indent=2))
        else:
            _print_records([rec], "images")
        return 0
    from ganscope.metrics.evaluate import evaluate_run
    from ganscope.training.run import resolve_run

    run = resolve_run(a.run, a.runs_dir)
    ec = _eval_config(a, run.config().eval)
    records = evaluate_run(run, a.checkpoint, ec, data_dir=a.data_dir,
                           progress=not a.no_progress,
                           save=not a.no_save)
    if a.json:
        print(json.dumps(records, indent=2))
        return 0
    _print_records(records, "epoch")
    if not a.no_save:
        best = run.meta().get("best")
        where = f"; best FID {best['fid']:.2f} at epoch {best['epoch']}" if best else ""
        print(f"saved to {run.metrics_path}{where}")
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    from ganscope.diagnostics import diagnose
    from ganscope.experiments.cli import compare_groups_text, compare_sweeps, find_sweep
    from ganscope.metrics.evaluate import best_by_fid, comparable
    from ganscope.metrics.table import COLUMNS, metric_cells
    from ganscope.tables import fmt_number, format_table
    from ganscope.training.run import resolve_run

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


def cmd_lab2d(a: argparse.Namespace) -> int:
    import time

    from ganscope.experiments.sweep import parse_seeds
    from ganscope.lab2d.matrix import (
        LOSS_NAMES,
        OPTIMS,
        Cell,
        cell_gifs,
        matrix_figure,
        parse_list,
        run_matrix,
        summarize,
        table_rows,
        write_tables,
    )
    from ganscope.tables import format_table
    from ganscope.training.run import runs_root

    losses = parse_list(a.losses, list(LOSS_NAMES), "loss")
    optims = parse_list(a.optims, list(OPTIMS), "optimiser")
    seeds = parse_seeds(a.seeds)
    if a.steps < 1:
        raise UserError("--steps must be at least 1")
    if a.seeds.strip().isdigit() and int(a.seeds) > 0:  # once a count: say what it means now
        n = int(a.seeds)
        print(f"note: --seeds {n} runs the one seed {n}; for {n} seeds write --seeds "
              f"{'0' if n == 1 else f'0-{n - 1}'}", file=sys.stderr)
    if a.workers is not None and a.workers < 1:
        raise UserError("--workers must be at least 1")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", a.data)[:60]
    out = Path(a.out) if a.out else runs_root(a.runs_dir) / f"lab2d-{safe}"
    cells = [Cell(lo, op) for lo in losses for op in optims]
    t0 = time.perf_counter()
    runs = run_matrix(out, a.data, cells, seeds, a.steps, a.setup, a.workers,
                      extra=a.overrides)
    summary = summarize(runs)
    summary.update({"data": a.data, "steps": a.steps, "setup": a.setup, "seeds": len(seeds),
                    "seed_list": seeds, "seconds": round(time.perf_counter() - t0, 1)})
    paths = write_tables(out, summary)
    fig = matrix_figure(runs, out, seed=seeds[0])
    gifs = cell_gifs(runs, out)
    head, rows = table_rows(summary)
    print(format_table(head, rows))
    print(f"mean ± std over {len(seeds)} seeds, {a.steps} generator steps, {a.setup} settings; "
          "* = best cell per metric")
    print(f"wrote {out}: {', '.join(p.name for p in paths)}, {fig.name}, {len(gifs)} GIFs, "
          f"runs/ ({len(runs)} runs) in {summary['seconds']:.0f} s")
    return 0


def cmd_metrics(a: argparse.Namespace) -> int:
    from ganscope.metrics.extractor import EXTRACTOR_NAME, WEIGHTS_SHA256
    from ganscope.metrics.registry import METRICS

    info = {"metrics": METRICS.names(), "extractor": EXTRACTOR_NAME, "sha256": WEIGHTS_SHA256}
    if a.json:
        print(json.dumps(info, indent=2))
        return 0
    for name in METRICS.names():
        doc = (METRICS.get(name).__doc__ or "").strip().splitlines()
        print(f"{name:8s}  {doc[0] if doc else ''}")
    print(f"features: {EXTRACTOR_NAME} (sha256 {WEIGHTS_SHA256[:12]})")
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from ganscope.models import MODELS

    if a.json:
        print(json.dumps({n: MODELS.get(n).summary for n in MODELS.names()}, indent=2))
        return 0
    w = max(len(n) for n in MODELS.names())
    for n in MODELS.names():
        print(f"{n.ljust(w)}  {MODELS.get(n).summary}")
    return 0


def cmd_show_model(a: argparse.Namespace) -> int:
    from ganscope.losses import LOSSES
    from ganscope.models import build_models

    G, D = build_models(a.name, a.z_dim, sigmoid=LOSSES.get(a.loss).sigmoid)
    print(G)
    print(D)
    return 0


def cmd_presets(a: argparse.Namespace) -> int:
    from ganscope.config import load_config, preset_names, presets_dir

    for name in preset_names():
        c = load_config(name)
        print(f"{name:14s} model={c.model.name} loss={c.loss.name} optim={c.optim.name} "
              f"lr={c.optim.lr:g} batch={c.train.batch_size} epochs={c.train.epochs}")
    print(f"(from {presets_dir()})", file=sys.stderr)
    return 0


def _add_export_parser(sub, runs: argparse.ArgumentParser) -> None:
    x = sub.add_parser("export", parents=[runs],
                       help="write a run's generator as safetensors, ONNX or a torch.export .pt2")
    x.add_argument("run", help="run name or path")
    which = x.add_mutually_exclusive_group()
    which.add_argument("--epoch", type=int, metavar="N", help="generator of this epoch "
                       "(default: the last checkpoint's)")
    which.add_argument("--best", action="store_true",
                       help="the best generator by FID (recorded by `ganscope eval`)")
    x.add_argument("--format", choices=["safetensors", "onnx", "pt2"],
                   help="default: from --out's suffix (.safetensors, .onnx, .pt2)")
    x.add_argument("--out", required=True, metavar="FILE",
                   help="the file to write; a sidecar FILE.json (same stem) describes it")


def cmd_export(a: argparse.Namespace) -> int:
    from ganscope.export import export_generator, sidecar_path
    from ganscope.training.run import resolve_run

    run = resolve_run(a.run, a.runs_dir)
    out = export_generator(run, a.format, a.out, epoch=a.epoch, best=a.best)
    info = json.loads(sidecar_path(out).read_text())
    print(f"wrote {out} ({info['file_format']}, generator of epoch {info['epoch']} from "
          f"{info['checkpoint']}, run {run.name}) and {sidecar_path(out)}")
    return 0


COMMANDS = {"train": cmd_train, "runs": cmd_runs, "plot": cmd_plot, "generate": cmd_generate,
            "eval": cmd_eval, "compare": cmd_compare, "metrics": cmd_metrics, "lab2d": cmd_lab2d,
            "models": cmd_models, "show-model": cmd_show_model, "presets": cmd_presets,
            "config": cmd_config, "completion": cmd_completion,
            "latent": run_latent, "directions": run_directions, "serve": run_serve,
            "sweep": cmd_sweep, "report": cmd_report, "lab": cmd_lab, "export": cmd_export}


def _show_run_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, RunWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _one_line(msg: str) -> str:
    """The message as one line: a line break in a user's text it quotes (a --set key, a file
    name) is shown escaped, as ``\\n``; so is a byte that is not UTF-8 (an argument or file
    name with undecodable bytes arrives as a lone surrogate, which no stream can print)."""
    line = "".join(repr(c)[1:-1] if c in _LINE_BREAKS else c for c in msg)
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        a = parser.parse_args(argv)
        if not a.command:
            parser.print_help()
            return EXIT_USER_ERROR
        with warnings.catch_warnings():
            # a skipped torn line and the like: one "warning: ..." line, not a source excerpt
            warnings.showwarning = _show_run_warning
            warnings.simplefilter("default", RunWarning)
            return COMMANDS[a.command](a)
    except UserError as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `ganscope presets | head`: the reader left; stop quietly, as cat and ls do. stdout
        # is pointed at /dev/null so Python's own flush at exit does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
