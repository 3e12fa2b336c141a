"""``ganscope latent edit|interp|walk|probe|check``: E4's dimension edits, interpolation, class
walks, the probe and the claims check.

Wired into the main parser with ``add_parsers(sub, runs_parent)`` and ``run_latent``. Library
errors are UserErrors (one line, exit 2 in the main CLI); this module only parses and prints.

Handlers import their library modules when they run, so ``ganscope --help``, completion
and a quick command do not pay for the others (matplotlib, PIL and the modules over them);
cheap ones (a few ms, nothing third-party) are imported at the top.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganscope.commands.values import values_parser_class
from ganscope.errors import UserError
from ganscope.latent.values import parse_dims, parse_ints, parse_numbers, parse_steps
from ganscope.tables import format_table
from ganscope.training.run import resolve_run

_EXAMPLES = {"--shift": "-10,0,10", "--set": "-1,5,10", "--steps": "-3:3:7",
             "--values": "-3,-2,-1,0,1,2,3"}


def add_parsers(sub: argparse._SubParsersAction, runs_parent: argparse.ArgumentParser) -> None:
    """Add ``latent`` with subcommands edit, interp, walk, probe and check to the main CLI's
    subparsers."""
    lat = sub.add_parser("latent", help="explore a run's latent space: edit dims (E4), "
                                        "interpolate, walk along class directions, probe every "
                                        "dim, check the seeds' claims")
    lsub = lat.add_subparsers(dest="latent_command", metavar="SUBCOMMAND",
                              parser_class=values_parser_class(type(lat), _EXAMPLES))

    e = lsub.add_parser(
        "edit", parents=[runs_parent],
        help="E4: shift or set single latent dims, one grid per dim, change measured",
        description="Shift or set chosen dims of z, generate, and write one grid per dim "
                    "(rows: values, columns: samples) plus edits.png/.npy/.json, e.g. "
                    "--dims 20,50 --shift -10,0,10.")
    e.add_argument("run", help="run name or path")
    e.add_argument("--dims", metavar="D,D,...", help="latent dims to edit, e.g. 20,50,60,70,90")
    mode = e.add_mutually_exclusive_group()
    mode.add_argument("--shift", metavar="V,V,...",
                      help="add each value to the dim, e.g. --shift -10,0,10")
    mode.add_argument("--set", metavar="V,V,...",
                      help="set the dim to each value, e.g. --set -1,5,10")
    e.add_argument("--preset", metavar="NAME",
                   help="a seed's own E4 choice: seed000, seed001, seed001-together, seed002, "
                        "seed003 (fills dims, values, mode, seed and n)")
    e.add_argument("--together", action="store_true",
                   help="edit all dims in every row at once (what seed 001's code did)")
    e.add_argument("--seed", type=int,
                   help="z = torch.randn(N, z_dim) after torch.manual_seed(SEED) (default 23231)")
    e.add_argument("-n", type=int, help="number of latent samples (default 8)")
    e.add_argument("--z", metavar="FILE.npy", help="use these latents (N, z_dim) instead")
    e.add_argument("--epoch", type=int, help="generator of this epoch (default: the latest)")
    e.add_argument("--out", metavar="DIR",
                   help="output folder (default RUN/figures/latent-edit-MODE-DIMS)")

    i = lsub.add_parser(
        "interp", parents=[runs_parent], help="interpolate between the latents of two seeds",
        description="Images along the path from seed A's latent to seed B's (slerp or lerp).")
    i.add_argument("run", help="run name or path")
    i.add_argument("--from-seed", type=int, required=True, help="seed of the start latent")
    i.add_argument("--to-seed", type=int, required=True, help="seed of the end latent")
    i.add_argument("--steps", type=int, default=10, help="images per strip, ends included "
                                                         "(default 10)")
    i.add_argument("--method", choices=["slerp", "lerp"], default="slerp",
                   help="spherical (default) or straight-line interpolation")
    i.add_argument("-n", type=int, default=1,
                   help="strips: pair i is sample i of each seed's randn(n, z_dim) (default 1)")
    i.add_argument("--epoch", type=int, help="generator of this epoch (default: the latest)")
    i.add_argument("--out", metavar="FILE.png",
                   help="default RUN/figures/latent-interp-METHOD-FROM-TO.png")

    w = lsub.add_parser(
        "walk", parents=[runs_parent], help="walk samples along a class direction (A -> B)",
        description="Find mean(z | B) - mean(z | A) with the shipped classifier, move samples "
                    "along it and measure the class shares per step, e.g. --steps -2:2:5.")
    w.add_argument("run", help="run name or path")
    w.add_argument("--from", dest="class_from", required=True, metavar="CLASS",
                   help="start class: name (any case, e.g. shirt) or index 0..9")
    w.add_argument("--to", dest="class_to", required=True, metavar="CLASS",
                   help="target class, e.g. trouser")
    w.add_argument("--steps", default="-3:3:7", metavar="START:STOP:COUNT|S,S,...",
                   help="steps in units of the class-mean distance, e.g. --steps -2:2:5 "
                        "(default -3:3:7)")
    w.add_argument("--seed", type=int, default=23231, help="seed of the walked samples "
                                                           "(default 23231)")
    w.add_argument("-n", type=int, default=8, help="walked samples (default 8)")
    w.add_argument("--direction-n", type=int, default=2048,
                   help="samples used to find the direction (default 2048)")
    w.add_argument("--direction-seed", type=int, default=0,
                   help="seed of those samples (default 0)")
    w.add_argument("--epoch", type=int, help="generator of this epoch (default: the latest)")
    w.add_argument("--out", metavar="FILE.png", help="default RUN/figures/latent-walk-A-B.png")

    pr = lsub.add_parser(
        "probe", parents=[runs_parent],
        help="measure what every latent dim does, against random directions",
        description="Shift each dim over --values on --n-base base vectors, measure class "
                    "probabilities, brightness, regions, silhouette and pixel change per unit, "
                    "and call an effect real only beyond --null random directions. Writes "
                    "probe.csv, probe.json, heatmap.png and ranked.txt.")
    pr.add_argument("run", help="run name or path")
    _probe_options(pr)
    pr.add_argument("--out", metavar="DIR", help="output folder (default RUN/figures/latent-probe)")
    pr.add_argument("--top", type=int, default=10, help="findings to print (default 10)")

    ck = lsub.add_parser(
        "check", parents=[runs_parent],
        help="hold the seeds' claims about latent dims against the probe",
        description="Read RUN/figures/latent-probe/probe.json (or --probe DIR), or run the probe "
                    "when there is none, and say which of the seeds' claims hold.")
    ck.add_argument("run", help="run name or path")
    ck.add_argument("--probe", metavar="DIR",
                    help="folder (or probe.json) of a saved probe (default: the run's, probed "
                         "now if missing)")
    ck.add_argument("--claims", metavar="FILE.yaml",
                    help="claims to check (default: the seeds', ganscope/latent/claims.yaml)")
    _probe_options(ck)


def _probe_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epoch", type=int, help="generator of this epoch (default: the latest)")
    p.add_argument("--n-base", type=int, default=None, metavar="N",
                   help="base vectors per sweep (default 256)")
    p.add_argument("--values", metavar="V,V,...",
                   help="shifts added to each dim, e.g. --values -2,0,2 "
                        "(default -3,-2,-1,0,1,2,3)")
    p.add_argument("--dims", metavar="0-99|D,D,...", help="dims to probe (default: all)")
    p.add_argument("--null", type=int, default=None, metavar="N",
                   help="random unit directions for the null (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of bases and directions (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# --- commands ---------------------------------------------------------------------------------


def _cmd_edit(a: argparse.Namespace) -> int:
    from ganscope.latent.edit import DEFAULT_N, DEFAULT_SEED, preset_edit, run_edit

    if a.preset:
        if a.dims or a.shift is not None or a.set is not None or a.together:
            raise UserError("--preset sets dims, values, mode and --together: do not combine "
                            "it with --dims, --shift, --set or --together")
        p = preset_edit(a.preset)
        dims, values, mode, together = p["dims"], p["values"], p["mode"], p["together"]
        seed, n = p["seed"], p["n"]
    else:
        if not a.dims:
            raise UserError("give --dims D,D,... (e.g. --dims 20,50) or --preset NAME")
        if a.shift is None and a.set is None:
            raise UserError("give --shift V,... or --set V,... (e.g. --shift -10,0,10), "
                            "or --preset NAME")
        dims = parse_ints(a.dims, "--dims")
        mode = "shift" if a.shift is not None else "set"
        values = parse_numbers(a.shift if a.shift is not None else a.set, f"--{mode}")
        together, seed, n = a.together, DEFAULT_SEED, DEFAULT_N
    if a.z and (a.seed is not None or a.n is not None):
        raise UserError("give --z FILE.npy or --seed/-n, not both")
    seed = a.seed if a.seed is not None else seed
    n = a.n if a.n is not None else n
    run = resolve_run(a.run, a.runs_dir)
    res = run_edit(run, dims, values, mode, seed=seed, n=n, z_file=a.z, epoch=a.epoch,
                   together=together, out_dir=a.out)
    names = ", ".join(Path(f).name for f in res["files"])
    print(f"wrote {res['out_dir']}/: {names}")
    print(format_table(
        ["DIMS", "EDIT", "MEAN_ABS_CHANGE", "CHANGED"],
        [(",".join(map(str, r["dims"])), r["label"], f"{r['mean_abs_change']:.2f}",
          f"{r['changed']}/{r['of']}") for r in res["rows"]]))
    print("mean |pixel change| (0..255) of each row vs the unedited images")
    return 0


def _cmd_interp(a: argparse.Namespace) -> int:
    from ganscope.latent.interpolate import run_interp

    run = resolve_run(a.run, a.runs_dir)
    res = run_interp(run, a.from_seed, a.to_seed, steps=a.steps, method=a.method, n=a.n,
                     epoch=a.epoch, out=a.out)
    print(f"wrote {res['out']} ({a.n} strip{'s' if a.n != 1 else ''} of {a.steps} images, "
          f"{a.method} seed {a.from_seed} -> seed {a.to_seed})")
    return 0


def _cmd_walk(a: argparse.Namespace) -> int:
    from ganscope.latent.interpolate import run_walk

    steps = parse_steps(a.steps)
    run = resolve_run(a.run, a.runs_dir)
    res = run_walk(run, a.class_from, a.class_to, steps=steps, seed=a.seed, n=a.n,
                   direction_n=a.direction_n, direction_seed=a.direction_seed, epoch=a.epoch,
                   out=a.out)
    print(f"wrote {res['out']}")
    print(f"direction {res['class_from']} -> {res['class_to']}: class-mean distance "
          f"{res['distance']:.3f} (step 1), from {res['direction_n']} samples "
          f"({res['count_from']} {res['class_from']}, {res['count_to']} {res['class_to']})")
    print(format_table(
        ["STEP", f"%{res['class_from'].upper()}", f"%{res['class_to'].upper()}"],
        [(f"{s:+g}", f"{100 * fa:.0f}", f"{100 * fb:.0f}")
         for s, fa, fb in zip(res["steps"], res["share_from"], res["share_to"])]))
    return 0


def _probe_kwargs(a: argparse.Namespace) -> dict:
    from ganscope.latent.probe import DEFAULT_N_BASE, DEFAULT_N_NULL, DEFAULT_VALUES

    return {"epoch": a.epoch,
            "n_base": a.n_base if a.n_base is not None else DEFAULT_N_BASE,
            "values": parse_numbers(a.values, "--values") if a.values else list(DEFAULT_VALUES),
            "dims": parse_dims(a.dims) if a.dims else None,
            "n_null": a.null if a.null is not None else DEFAULT_N_NULL,
            "seed": a.seed, "progress": not a.no_progress}


def _cmd_probe(a: argparse.Namespace) -> int:
    from ganscope.latent.probe import run_probe

    if a.top < 0:
        raise UserError(f"--top must be at least 0, got {a.top}")
    kw = _probe_kwargs(a)
    run = resolve_run(a.run, a.runs_dir)
    res, files = run_probe(run, out_dir=a.out, **kw)
    info = res.info
    n_real = int(res.real.any(axis=1).sum())
    print(f"probed {len(res.dims)} dims of {run.name} ({info['images']} images, "
          f"{info['seconds']:.0f} s): {n_real} with a real effect (beyond {info['n_null']} random "
          f"directions and at least the floor)")
    for d in res.ranked()[:a.top]:
        print("  " + res.sentence(d))
    print(f"wrote {Path(files[0]).parent}/: {', '.join(Path(f).name for f in files)}")
    return 0


def _cmd_check(a: argparse.Namespace) -> int:
    from ganscope.latent.claims import check, load_claims
    from ganscope.latent.probe import load_probe, run_probe

    claims = load_claims(a.claims)
    kw = _probe_kwargs(a)
    run = resolve_run(a.run, a.runs_dir)
    if a.probe:
        res = load_probe(a.probe)
        where = str(a.probe)
    elif (run.probe_dir / "probe.json").is_file():
        res = load_probe(run.probe_dir)
        where = str(run.probe_dir)
    else:
        res, files = run_probe(run, **kw)
        where = f"{Path(files[0]).parent} (probed now)"
    rows = check(res, claims)
    print(f"claims checked against the probe in {where}")
    print(format_table(["CLAIM", "SEED", "VERDICT", "EVIDENCE"],
                       [(r["claim"], r["seed"], r["verdict"].upper(), r["evidence"])
                        for r in rows]))
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("holds", "fails", "untestable")}
    print(", ".join(f"{n} {v}" for v, n in counts.items()))
    return 0


_SUBCOMMANDS = {"edit": _cmd_edit, "interp": _cmd_interp, "walk": _cmd_walk,
                "probe": _cmd_probe, "check": _cmd_check}


def run_latent(a: argparse.Namespace) -> int:
    """Dispatch ``ganscope latent SUBCOMMAND``."""
    cmd = getattr(a, "latent_command", None)
    if cmd not in _SUBCOMMANDS:
        raise UserError("give a subcommand: edit, interp, walk, probe or check (see `ganscope latent --help`)")
    return _SUBCOMMANDS[cmd](a)
