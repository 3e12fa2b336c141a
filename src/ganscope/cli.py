"""The ``ganscope`` command: a thin layer over the library.

This module assembles the parser and runs ``main``; the commands themselves live in
:mod:`ganscope.commands` (one module per group), the only layer above every feature package.
Library code raises; only ``main`` prints errors and picks exit codes: a UserError becomes one
``error: ...`` line on stderr and exit code 2, Ctrl-C during training exits 130 after saving a
checkpoint. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence

from ganscope import __version__
from ganscope.commands import EXIT_INTERRUPTED, EXIT_USER_ERROR
from ganscope.commands.catalog import cmd_models, cmd_presets, cmd_show_model
from ganscope.commands.directions import add_parsers as add_directions_parsers
from ganscope.commands.directions import run_directions
from ganscope.commands.evaluate import cmd_eval, cmd_metrics
from ganscope.commands.experiments import add_parsers as add_experiment_parsers
from ganscope.commands.experiments import cmd_lab, cmd_report, cmd_sweep
from ganscope.commands.lab2d import cmd_lab2d
from ganscope.commands.latent import add_parsers as add_latent_parsers
from ganscope.commands.latent import run_latent
from ganscope.commands.runs import cmd_compare, cmd_export, cmd_generate, cmd_plot, cmd_runs
from ganscope.commands.serve import add_parser as add_serve_parser
from ganscope.commands.serve import run_serve
from ganscope.commands.train import cmd_config, cmd_train
from ganscope.completion import complete_preset, completion_script
from ganscope.config import DEVICES, PRECISIONS
from ganscope.errors import UserError
from ganscope.lab2d.matrix import CAP_STEPS, PATIENCE_MODES
from ganscope.training.run import RunWarning


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
    t.add_argument("--device", choices=DEVICES,
                   help="cpu, cuda, mps (Apple GPUs) or auto: CUDA, then MPS, then the CPU; "
                        "same as --set train.device=")
    t.add_argument("--precision", choices=PRECISIONS,
                   help="autocast precision for the forward passes; auto: bf16 where the "
                        "GPU supports it or the CPU has AMX tiles, else fp32")
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

    pl = sub.add_parser("plot", parents=[runs],
                        help="write a run's figures: loss, D-output and metric curves (and a "
                             "2-D run's animation)")
    pl.add_argument("run", help="run name or path")

    g = sub.add_parser("generate", parents=[runs], help="images from a run's generator (E3)")
    g.add_argument("run", help="run name or path")
    g.add_argument("--seed", type=int, default=0,
                   help="z = torch.randn(N, z_dim) after torch.manual_seed(SEED) (default 0)")
    g.add_argument("-n", type=int, default=8, help="number of images (default 8)")
    g.add_argument("--z", metavar="FILE.npy", help="use these latent vectors (N, z_dim) instead")
    g.add_argument("--epoch", type=int, help="generator of this epoch (default: the latest)")
    g.add_argument("--class", dest="classes", metavar="CLASS",
                   help="conditional/InfoGAN runs: a class name or index, several "
                        "comma-separated, or 'all' (one row of -n images per class)")
    g.add_argument("--no-ema", action="store_true",
                   help="the trained weights, not their moving average (runs with tech.ema)")
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
    e.add_argument("--data-dir", metavar="DIR",
                   help="folder with the real images' original files (default: the run's "
                        "data.dir)")
    e.add_argument("--against", metavar="DIR|FILE",
                   help="with --images: score them against these real images (a folder or "
                        ".npy/.npz, as data.name=folder reads them) in Inception features")
    e.add_argument("--image-size", type=int, metavar="S",
                   help="with --against: the square size both sets are cut and resized to "
                        "(default: the images' own size)")
    e.add_argument("--inception-weights", metavar="FILE",
                   help="the FID Inception weights pt_inception-2015-12-05-6726825d.pth "
                        "(image-folder runs; default: $GANSCOPE_INCEPTION_WEIGHTS, else torch "
                        "hub's cache, else downloaded)")
    e.add_argument("--json", action="store_true", help="print the records as JSON")
    e.add_argument("--no-progress", action="store_true", help="no progress bars")
    e.add_argument("--no-save", action="store_true",
                   help="do not append the results to the run's metrics.jsonl")
    e.add_argument("--no-ema", action="store_true",
                   help="score the trained weights of a run with tech.ema, not their moving "
                        "average (its records say \"raw\": true)")

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
    l2.add_argument("--steps", type=int, default=None,
                    help="the cap: generator steps per run at most; a run stops earlier once "
                         f"its evaluations stop improving (default {CAP_STEPS} per "
                         f"{PATIENCE_MODES} modes of the target, at least {CAP_STEPS}: ring8 "
                         f"{CAP_STEPS}, grid25 {CAP_STEPS * 25 // PATIENCE_MODES})")
    l2.add_argument("--setup", choices=["literature", "same"], default="literature",
                    help="each objective's published optimiser settings, or the seed's one "
                         "setting for all (default literature)")
    l2.add_argument("--workers", type=int, metavar="N",
                    help="parallel processes (default: one per core)")
    l2.add_argument("--stack", action=argparse.BooleanOptionalAction, default=True,
                    help="train the runs that differ only in their seed as one stacked model in "
                         "one process (default; each run keeps its own directory); "
                         "--no-stack: one process per run")
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


# --- the one command here: it needs the parser itself (the rest: ganscope.commands) -----


def cmd_completion(a: argparse.Namespace) -> int:
    sys.stdout.write(completion_script(build_parser(), a.shell))
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
