"""``ganscope train`` and ``ganscope config``: a new run's config from the options, training,
resuming.

Handlers import their library modules when they run, so ``ganscope --help``, completion
and a quick command do not pay for the others (matplotlib, PIL and the modules over them);
cheap ones (a few ms, nothing third-party) are imported at the top.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ganscope.commands import EXIT_INTERRUPTED
from ganscope.config import apply_overrides, load_config, save_yaml
from ganscope.errors import ConfigError, TrainingInterrupted
from ganscope.io import atomic_write_text
from ganscope.training.run import RESUMABLE_KEYS, Run, resolve_run


def new_run_config(a: argparse.Namespace, execution: Sequence[str] = ()):
    """The validated config a new run of `train` gets from its options (`ganscope config` prints
    it): the preset or YAML file, then --set, --seed, --eval-every and ``execution`` (the
    device, precision, ... overrides), then --data-dir."""
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
    from ganscope.domains import load_dataset
    from ganscope.sinks import check_sinks_available
    from ganscope.training import distributed
    from ganscope.training.loop import count_steps_per_epoch, resolve_device, train
    from ganscope.viz.run_figures import write_run_figures

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
                "only train.epochs, train.minutes and how to run (device, precision, compile, "
                "threads, channels_last, log.sinks) can change when resuming "
                f"(got --set {bad[0]}): "
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
        figs = write_run_figures(run)
    meta = run.meta()
    last = meta.get("last", {})
    print(f"run:      {run.path}")
    print(f"status:   {meta.get('status')} ({epochs_line(meta, cfg.train.epochs)}, "
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


def epochs_line(meta: dict, planned: int) -> str:
    """"8.04 of 100 epochs, stopped by its 15-minute budget": a run cut by its time budget
    ends mid-epoch (epochs_done 8.043710021321962 was printed as is), and why it ended short
    of its epochs is what a reader of the line wants next."""
    done = float(meta.get("epochs_done") or 0)
    out = f"{done:.0f}" if done.is_integer() else f"{done:.2f}"
    out += f" of {planned} epochs"
    stop = meta.get("stopped_early") or {}
    if stop.get("reason") == "time":
        out += f", stopped by its {stop.get('minutes', 0):g}-minute budget"
    elif stop.get("reason") == "plateau":
        out += f", stopped on a plateau (patience {stop.get('patience')})"
    return out


def cmd_config(a: argparse.Namespace) -> int:
    sys.stdout.write(save_yaml(new_run_config(a)))  # what train saves as RUN/config.yaml
    return 0
