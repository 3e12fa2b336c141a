"""``ganscope directions find|walk|list``: semantic directions of a face run (issue 8).

Wired into the main parser with ``add_parsers(sub, runs_parent)`` and ``run_directions``.
Library errors are UserErrors (one line, exit 2 in the main CLI); this module parses and prints.

Handlers import their library modules when they run, so ``ganscope --help``, completion
and a quick command do not pay for the others (matplotlib, PIL and the modules over them);
cheap ones (a few ms, nothing third-party) are imported at the top.
"""

from __future__ import annotations

import argparse

from ganscope.commands.values import values_parser_class
from ganscope.directions.store import list_directions
from ganscope.errors import UserError
from ganscope.latent.values import parse_steps
from ganscope.tables import format_table
from ganscope.training.run import resolve_run

_EXAMPLES = {"--steps": "-3:3:9"}  # a bare --steps names the value it needs


def add_parsers(sub: argparse._SubParsersAction, runs_parent: argparse.ArgumentParser) -> None:
    """Add ``directions`` with subcommands find, walk and list to the main CLI."""
    top = sub.add_parser("directions", help="faces: find semantic latent directions (gender, "
                                            "smile, age, pose), walk and measure them")
    dsub = top.add_subparsers(dest="directions_command", metavar="SUBCOMMAND",
                              parser_class=values_parser_class(type(top), _EXAMPLES))

    f = dsub.add_parser(
        "find", parents=[runs_parent],
        help="find directions with a method, save them in RUN/directions/",
        description="Score generated faces with the shipped attribute classifier (and the Yaw "
                    "pose proxy), find one direction per attribute (interfacegan, "
                    "interfacegan-cond, mean) or the top components (sefa, ganspace; oriented "
                    "by --attr when given) and save them as RUN/directions/NAME.json.")
    f.add_argument("run", help="run name or path (a face run)")
    f.add_argument("--method", required=True,
                   help="interfacegan | interfacegan-cond | mean | sefa | ganspace")
    f.add_argument("--attr", default="", metavar="A,B,...",
                   help="attributes, e.g. Male,Smiling,Young (any case; Yaw = pose proxy)")
    f.add_argument("--condition", default="", metavar="A,B,...",
                   help="interfacegan-cond: attributes to project out, e.g. Male, or all "
                        "(every other measured attribute)")
    f.add_argument("-n", type=int, default=10000,
                   help="generated faces scored (default 10000)")
    f.add_argument("--seed", type=int, default=0,
                   help="latents: torch.manual_seed(SEED); randn(n, z_dim) (default 0)")
    f.add_argument("--epoch", type=int, help="generator of this epoch (default: the latest)")
    f.add_argument("--components", type=int, default=5,
                   help="sefa/ganspace: components to keep (default 5)")
    f.add_argument("--name", help="direction name (one attribute only; default: the "
                                  "attribute for interfacegan, e.g. male)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")

    w = dsub.add_parser(
        "walk", parents=[runs_parent],
        help="walk faces along saved directions: strip, GIF, curves, side effects",
        description="Move latents along each direction by --steps (std of z), and measure at "
                    "every step the mean P(attribute) of every attribute and Yaw, the target's "
                    "monotonicity, the side effects (first -> last step) and how far the faces "
                    "move. Writes OUT/NAME/strip.png, walk.png, walk.gif, curve.csv, walk.json "
                    "and OUT/side_effects.csv/.json/.png.")
    w.add_argument("run", help="run name or path (a face run)")
    w.add_argument("--direction", required=True, metavar="NAME[,NAME...]",
                   help="saved direction(s), e.g. male or male,smiling,young")
    w.add_argument("--steps", default="-3:3:9", metavar="START:STOP:COUNT|S,S,...",
                   help="steps along the unit direction in std of z (default -3:3:9)")
    w.add_argument("--seed", type=int, default=0, help="seed of the walked latents (default 0)")
    w.add_argument("-n", type=int, default=6, help="faces (rows) in the strip (default 6)")
    w.add_argument("--measure-n", type=int, default=512,
                   help="latents averaged for the measurements (default 512; the strip's are "
                        "the first of them)")
    w.add_argument("--target", help="attribute whose curve must rise (default: the "
                                    "direction's own; e.g. Yaw for a pose component)")
    w.add_argument("--epoch", type=int, help="generator of this epoch (default: the latest)")
    w.add_argument("--out", metavar="DIR", help="output folder (default RUN/figures/directions)")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")

    ls = dsub.add_parser("list", parents=[runs_parent], help="the run's saved directions")
    ls.add_argument("run", help="run name or path")


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _fmt(v, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _cmd_find(a: argparse.Namespace) -> int:
    from ganscope.directions.base import METHODS
    from ganscope.directions.walk import find_run_directions, label_summary

    METHODS.get(a.method)  # an unknown method fails before the run is read
    attrs, conds = _split(a.attr), _split(a.condition)
    run = resolve_run(a.run, a.runs_dir)
    rows, ctx = find_run_directions(run, a.method, attrs, conditions=conds, n=a.n, seed=a.seed,
                                    epoch=a.epoch, components=a.components, name=a.name,
                                    progress=not a.no_progress)
    print(format_table(["NAME", "METHOD", "ATTRIBUTE", "QUALITY", "CORR"],
                       [(r["name"], r["method"], r["attribute"] or "-", r["quality"],
                         _fmt(r["correlation"])) for r in rows]))
    print("CORR: Pearson correlation of z.d with the attribute's score over the "
          f"{a.n} faces from seed {a.seed}")
    if attrs:
        labels = label_summary(ctx)
        print(f"the {a.n} generated faces, labelled: " + ", ".join(
            f"{r['attribute']} {100 * r['share']:.0f}%" if r["share"] is not None
            else f"{r['attribute']} {r['mean']:+.3f}±{r['std']:.3f}" for r in labels))
    print(f"saved {len(rows)} direction{'s' if len(rows) != 1 else ''} in "
          f"{run.path / 'directions'}/")
    return 0


def _cmd_walk(a: argparse.Namespace) -> int:
    from ganscope.directions.walk import walk_run

    steps = parse_steps(a.steps)
    names = _split(a.direction)
    run = resolve_run(a.run, a.runs_dir)
    res = walk_run(run, names, steps, seed=a.seed, n_strip=a.n, n_measure=a.measure_n,
                   epoch=a.epoch, out=a.out, target=a.target, progress=not a.no_progress)
    rows = []
    for r in res["results"]:
        s = r["summary"]
        tgt = "-"
        if s["target"] is not None:
            tgt = f"{s['target']} {s['target_from']:.3f} -> {s['target_to']:.3f}"
        mono = "-" if s["target"] is None else (
            f"{'yes' if s['monotonic'] else 'no'} (rho {s['spearman']:+.2f}, "
            f"{s['non_increasing_steps']} flat/down)")
        side = "-" if s["largest_side_effect"] is None else (
            f"{s['largest_side_effect']} {s['largest_side_effect_delta']:+.3f}")
        rows.append((s["name"], s["method"], tgt, mono, side, _fmt(s["yaw_delta"], "+.3f"),
                     f"{s['pixel_rms_end']:.1f} ({_fmt(s['pixel_rms_relative_end'], '.2f')})",
                     _fmt(s["feature_relative_end"], ".2f")))
    print(format_table(["DIRECTION", "METHOD", "TARGET (first -> last step)", "MONOTONIC",
                        "LARGEST SIDE EFFECT", "YAW", "PIXEL RMS (REL)", "FEATURE REL"], rows))
    print(f"steps {res['steps'][0]:+g}..{res['steps'][-1]:+g} ({len(res['steps'])}), means over "
          f"{res['n_measure']} latents from seed {a.seed}; REL: distance from the unedited face "
          "at the far end, 1 = two different random faces")
    for r in res["results"]:
        print(f"wrote {r['files'][0].parent}/: {', '.join(p.name for p in r['files'])}")
    print(f"wrote {res['out']}/: {', '.join(p.name for p in res['matrix_files'])}")
    return 0


def _cmd_list(a: argparse.Namespace) -> int:
    run = resolve_run(a.run, a.runs_dir)
    dirs = list_directions(run)
    if not dirs:
        print(f"run '{run.name}' has no directions yet: `ganscope directions find {run.name} "
              "--method interfacegan --attr Male,Smiling,Young`")
        return 0
    print(format_table(["NAME", "METHOD", "ATTRIBUTE", "CREATED"],
                       [(d.name, d.method, d.attribute or "-", d.created) for d in dirs]))
    return 0


_SUBCOMMANDS = {"find": _cmd_find, "walk": _cmd_walk, "list": _cmd_list}


def run_directions(a: argparse.Namespace) -> int:
    """Dispatch ``ganscope directions SUBCOMMAND``."""
    cmd = getattr(a, "directions_command", None)
    if cmd not in _SUBCOMMANDS:
        raise UserError("give a subcommand: find, walk or list (see `ganscope directions --help`)")
    return _SUBCOMMANDS[cmd](a)
