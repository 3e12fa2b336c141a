"""``ganscope lab``: the whole seed lab (E1-E6) over seeds, and a lab report the tool writes.

The five seed reports each ran part of one lab by hand, from single runs, and answered by eye.
This runs every experiment as they ran it, over seeds, with the library's own functions
(training, evaluation, generation, the latent probe and claims check, the 2-D matrix, the face
directions), and writes ``LAB/index.html`` plus one page per experiment with the measured
answers. ``--quick`` shortens every experiment to finish in under 10 minutes on 2 cores, and
each page says exactly what was shortened next to its numbers.

```
LAB/
  index.html  e1.html ... e6.html   the report (self-contained pages, linked to each other)
  lab.json                          settings, timings, answers (for scripts)
  runs/<name>/                      E1, E2 and E6 runs (ordinary run directories)
  e3/ e4/ e5/ e6/                   generated grids, probe, 2-D matrix, face walks
```
A lab started again keeps finished runs (the same planner as sweeps).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganscope.config import RunConfig, apply_overrides, load_config
from ganscope.errors import UserError
from ganscope.experiments import compare as C
from ganscope.experiments import stats
from ganscope.experiments.runner import execute, plan_runs
from ganscope.report import html as H
from ganscope.training.run import Run, atomic_write_text, now_iso

EXPERIMENTS = ("e1", "e2", "e3", "e4", "e5", "e6")
TITLES = {
    "e1": "E1: the baseline MLP GAN on Fashion-MNIST",
    "e2": "E2: convolutional GANs vs the MLP",
    "e3": "E3: generation from a chosen random vector",
    "e4": "E4: what single latent dimensions do",
    "e5": "E5: GAN vs WGAN vs WGAN-GP, Adam vs RMSprop, on 2-D points",
    "e6": "E6: semantic directions in a face GAN's latent space",
}
SEEDS_DID = {
    "e1": "All five reports trained the course's MLP GAN (G: 100-128-784, D: 784-128-1, "
          "LeakyReLU 0.2, BCE, Adam 2e-4 for both, batch 64) on Fashion-MNIST for 10 epochs "
          "(one for 20), from one run each, and showed the D and G loss curves (seed 003 also "
          "D(x) and D(G(z))); they discussed why the losses oscillate instead of falling.",
    "e2": "Seeds 000, 001 and 002 each built a convolutional GAN (seed 000 a strided-conv CNN, "
          "seed 002 the DCGAN, seed 001 a deliberately tiny CNN) with the same Adam 2e-4 / BCE "
          "set-up, and compared its sample grids with the MLP's by eye, one run each.",
    "e3": "Seeds 000-003 fixed a seed (seed 001: torch.manual_seed(23231)), drew z of shape "
          "(8, 100) and showed the 8 generated images as one grid.",
    "e4": "Seeds 000-003 picked 5 of the 100 latent dims, set or shifted each to 3 values, "
          "looked at the grids and said in words what each dim controls; their answers "
          "disagree (seed 000: dims 20, 50, 60, 70, 90 shifted by -10 / 0 / +10).",
    "e5": "Seed 004 fitted a 2-D point set with an MLP GAN, WGAN (weight clipping) and WGAN-GP "
          "under Adam and under RMSprop, and judged stability and fit from the point clouds of "
          "one run per cell.",
    "e6": "Seed 004 described searching a face generator's latent space for directions that "
          "change one attribute (gender, pose, age, smile) and showing frames along them.",
}
E2_PRESETS = ("e1-mlp", "e2-cnn", "e2-dcgan", "e2-dcgan-fixed", "e2-tiny-cnn")
E6_ATTRS = ("Male", "Smiling", "Young")
E3_SEED = 23231
COST = {"mlp": 1.0, "tiny-cnn": 12.0, "dcgan": 100.0, "cnn": 150.0, "dcgan32": 60.0,
        "dcgan64": 200.0}  # rough relative cost of a step, to start the longest runs first


@dataclass
class Settings:
    """What each experiment runs. ``full()`` is the seeds' set-up; ``quick()`` the shortened
    one; tests pass their own."""

    quick: bool
    seeds: list[int]
    e1_epochs: int | None  # None: the preset's
    e1_limit: int | None
    eval_n: int
    e2_presets: tuple[str, ...]
    e2_epochs: int | None
    e2_limit: int | None
    probe_n_base: int
    probe_n_null: int
    probe_dims: list[int] | None
    e5_steps: int
    e5_seeds: list[int]
    e5_extra: list[str] = field(default_factory=list)
    e6_epochs: int | None = None
    e6_limit: int | None = None
    e6_find_n: int = 10000
    e6_measure_n: int = 512
    e6_steps: str = "-3:3:9"

    @classmethod
    def full(cls) -> Settings:
        return cls(quick=False, seeds=[0, 1, 2], e1_epochs=None, e1_limit=None, eval_n=10000,
                   e2_presets=E2_PRESETS, e2_epochs=None, e2_limit=None, probe_n_base=256,
                   probe_n_null=32, probe_dims=None, e5_steps=2000, e5_seeds=[0, 1, 2])

    @classmethod
    def quick_settings(cls) -> Settings:
        return cls(quick=True, seeds=[0, 1], e1_epochs=5, e1_limit=None, eval_n=2000,
                   e2_presets=E2_PRESETS, e2_epochs=2, e2_limit=3200, probe_n_base=64,
                   probe_n_null=32, probe_dims=None, e5_steps=500, e5_seeds=[0, 1],
                   e6_epochs=2, e6_limit=None, e6_find_n=2000, e6_measure_n=128,
                   e6_steps="-3:3:7")


@dataclass
class LabOptions:
    out: Path
    quick: bool = False
    data_dir: str | None = None
    celeba_dir: str | None = None
    only: list[str] | None = None
    workers: int | None = None
    progress: bool = True
    settings: Settings | None = None  # default: full() or quick_settings()


# --- what was shortened ---------------------------------------------------------------------------


def shortened(exp: str, s: Settings) -> list[str]:
    """The exact differences from the full lab (the seeds' set-up), one line each."""
    f = Settings.full()
    out = []
    if exp in ("e1", "e2") and s.seeds != f.seeds:
        out.append(f"seeds {_seeds(s.seeds)} instead of {_seeds(f.seeds)}")
    if exp == "e1":
        if s.e1_epochs is not None:
            out.append(f"{_n(s.e1_epochs, 'epoch')} instead of the preset's "
                       f"{_epochs('e1-mlp')}")
        if s.e1_limit:
            out.append(f"data.limit={s.e1_limit}: the first {s.e1_limit} training images "
                       "instead of all 60,000")
    if exp in ("e1", "e2") and s.eval_n != f.eval_n:
        out.append(f"evaluation with {s.eval_n} generated images vs {min(s.eval_n, 10000)} "
                   f"test images instead of 10,000 vs 10,000 (FID is biased upwards at small "
                   "n: compare these numbers only with each other)")
    if exp == "e2":
        if s.e2_epochs is not None:
            own = ", ".join(f"{p} {_epochs(p)}" for p in s.e2_presets)
            out.append(f"{_n(s.e2_epochs, 'epoch')} instead of the presets' own ({own})")
        if s.e2_limit:
            out.append(f"data.limit={s.e2_limit}: the first {s.e2_limit} training images "
                       "instead of all 60,000")
        if tuple(s.e2_presets) != f.e2_presets:
            out.append(f"presets {', '.join(s.e2_presets)} only")
    if exp == "e3" and (s.e1_epochs is not None or s.e1_limit):
        out.append("the generators are E1's and E2's shortened runs (see their pages)")
    if exp == "e4":
        if s.probe_n_base != f.probe_n_base:
            out.append(f"probe with {s.probe_n_base} base vectors per sweep instead of "
                       f"{f.probe_n_base} (noisier slopes: fewer effects pass the null)")
        if s.probe_n_null != f.probe_n_null:
            out.append(f"{s.probe_n_null} random null directions instead of {f.probe_n_null}")
        if s.probe_dims is not None:
            out.append(f"dims {', '.join(map(str, s.probe_dims))} only, not all 100")
        if s.e1_epochs is not None or s.e1_limit:
            out.append("the probed generator is E1's shortened run")
    if exp == "e5":
        if s.e5_steps != f.e5_steps:
            out.append(f"{_n(s.e5_steps, 'generator step')} per run instead of {f.e5_steps}")
        if s.e5_seeds != f.e5_seeds:
            out.append(f"seeds {_seeds(s.e5_seeds)} instead of {_seeds(f.e5_seeds)}")
        if s.e5_extra:
            out.append("overrides " + ", ".join(s.e5_extra))
    if exp == "e6":
        if s.e6_epochs is not None:
            out.append(f"{_n(s.e6_epochs, 'epoch')} instead of the preset's "
                       f"{_epochs('e6-faces')}")
        if s.e6_limit:
            out.append(f"data.limit={s.e6_limit}: {s.e6_limit} faces instead of "
                       f"{load_config('e6-faces').data.limit or 'all'}")
        if s.e6_find_n != f.e6_find_n:
            out.append(f"directions found from {s.e6_find_n} generated faces instead of "
                       f"{f.e6_find_n}")
        if s.e6_measure_n != f.e6_measure_n:
            out.append(f"walks measured on {s.e6_measure_n} latents instead of "
                       f"{f.e6_measure_n}")
        if s.e6_steps != f.e6_steps:
            out.append(f"walk steps {s.e6_steps} instead of {f.e6_steps}")
    return out


def _epochs(preset: str) -> int:
    return load_config(preset).train.epochs


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def _seeds(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds))


# --- the runs -------------------------------------------------------------------------------------


def _cfg(preset: str, over: list[str], data_dir: str | None) -> RunConfig:
    cfg = apply_overrides(load_config(preset), over)
    if data_dir:
        cfg.data.dir = str(Path(data_dir).resolve())
    return cfg.validate()


def e1_configs(s: Settings, data_dir: str | None) -> list[tuple[str, RunConfig]]:
    over = ["eval.every=1", f"eval.n={s.eval_n}"]
    if s.e1_epochs is not None:
        over.append(f"train.epochs={s.e1_epochs}")
    if s.e1_limit:
        over.append(f"data.limit={s.e1_limit}")
    return [(f"e1-mlp-s{seed}", _cfg("e1-mlp", [*over, f"seed={seed}"], data_dir))
            for seed in s.seeds]


def e2_configs(s: Settings, data_dir: str | None) -> list[tuple[str, RunConfig]]:
    over = ["eval.every=1", f"eval.n={s.eval_n}"]
    if s.e2_epochs is not None:
        over.append(f"train.epochs={s.e2_epochs}")
    if s.e2_limit:
        over.append(f"data.limit={s.e2_limit}")
    out = []
    for preset in s.e2_presets:
        short = "mlp" if preset == "e1-mlp" else preset.removeprefix("e2-")
        for seed in s.seeds:
            out.append((f"e2-{short}-s{seed}", _cfg(preset, [*over, f"seed={seed}"], data_dir)))
    return out


def e6_config(s: Settings, celeba: str) -> RunConfig:
    over = ["seed=0"]
    if s.e6_epochs is not None:
        over.append(f"train.epochs={s.e6_epochs}")
    if s.e6_limit:
        over.append(f"data.limit={s.e6_limit}")
    return _cfg("e6-faces", over, celeba)


def _cost(cfg: RunConfig) -> float:
    n = cfg.data.limit or (10000 if cfg.data.name == "celeba" else 60000)
    return COST.get(cfg.model.name, 50.0) * cfg.train.epochs * n


# --- the lab --------------------------------------------------------------------------------------


class Lab:
    def __init__(self, opts: LabOptions) -> None:
        self.o = opts
        self.s = opts.settings or (Settings.quick_settings() if opts.quick
                                   else Settings.full())
        self.out = Path(opts.out)
        self.selected = list(opts.only or EXPERIMENTS)
        self.t0 = time.perf_counter()
        self.times: dict[str, float] = {}
        self.results: dict[str, dict[str, Any]] = {e: {"status": "not run"} for e in EXPERIMENTS}
        self.celeba = opts.celeba_dir or os.environ.get("GANSCOPE_CELEBA")
        self.runs: dict[str, Run] = {}
        self.failed: dict[str, str] = {}
        self.kept_runs = (0, 0)  # (finished before this start, all) of the E1/E2/E6 runs

    def say(self, msg: str) -> None:
        print(f"lab [{time.perf_counter() - self.t0:5.0f} s] {msg}", file=sys.stderr)

    # -- phase 1: every image run in one pool --
    def train_all(self) -> None:
        want = set(self.selected)
        entries: list[tuple[str, RunConfig]] = []
        if want & {"e1", "e3", "e4"}:
            entries += e1_configs(self.s, self.o.data_dir)
        if want & {"e2", "e3"}:
            e1_cfgs = {c.to_dict().__repr__(): n for n, c in entries}
            for name, cfg in e2_configs(self.s, self.o.data_dir):
                twin = e1_cfgs.get(cfg.to_dict().__repr__())
                entries.append((twin or name, cfg))  # full lab: E2's MLP is E1's run
        if "e6" in want and self.celeba:
            entries.append(("e6-faces-s0", e6_config(self.s, self.celeba)))
        entries = list({n: (n, c) for n, c in entries}.values())
        if not entries:
            return
        t = time.perf_counter()
        if any(c.data.name == "fashion-mnist" for _, c in entries):
            from ganscope.data import load_dataset

            first = next(c for _, c in entries if c.data.name == "fashion-mnist")
            load_dataset(first.data, 0)  # missing data: one line before anything is made
        plan = plan_runs([(self.out / "runs" / n, c) for n, c in entries])
        self.kept_runs = (len(plan.kept), len(plan.runs))
        self.runs = {r.name: r for r in plan.runs}
        cost = {n: _cost(c) for n, c in entries}
        todo = sorted(plan.todo, key=lambda pr: -cost[Path(pr[0]).name])
        self.say(f"training {len(todo)} runs ({len(plan.kept)} finished before) in "
                 f"{self.o.workers or os.cpu_count()} processes")
        for r in execute(todo, "local", workers=self.o.workers, desc="lab runs",
                         progress=self.o.progress):
            if r["status"] != "completed":
                self.failed[Path(r["run"]).name] = f"{r['status']}: {r.get('error') or ''}"
        self.times["training (E1, E2, E6 runs)"] = time.perf_counter() - t

    def _timed(self, exp: str, fn) -> None:
        if exp not in self.selected:
            return
        t = time.perf_counter()
        self.say(f"{exp.upper()}: {TITLES[exp].split(': ', 1)[1]}")
        try:
            self.results[exp] = {"status": "done"}
            self.results[exp].update(fn())
        except UserError as e:
            self.results[exp] = {"status": "failed", "error": str(e)}
            self.say(f"{exp.upper()} failed: {e}")
        except Exception as e:  # a bug in one experiment: say it on its page, keep the lab
            import traceback

            traceback.print_exc()
            self.results[exp] = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
        self.times[exp.upper()] = time.perf_counter() - t

    def completed(self, names: list[str]) -> list[Run]:
        out = []
        for n in names:
            r = self.runs.get(n)
            if r is not None and n not in self.failed and r.status() == "completed":
                out.append(r)
        return out

    # -- the experiments' measurements --
    def e1(self) -> dict[str, Any]:
        runs = self.completed([n for n, _ in e1_configs(self.s, self.o.data_dir)])
        if not runs:
            raise UserError("no E1 run completed: " + "; ".join(
                f"{k} {v}" for k, v in self.failed.items() if k.startswith("e1")))
        groups = C.group_runs(runs)
        res = C.compare_groups(groups)
        g = res["groups"][0]
        dyn: dict[str, Any] = {}
        for key in ("loss_d", "loss_g", "d_x", "d_g_z"):
            first, last = [], []
            for r in runs:
                ev = r.read_events()
                e_last = max(e["epoch"] for e in ev)
                first.append(stats.mean([e[key] for e in ev if e["epoch"] == 1]))
                last.append(stats.mean([e[key] for e in ev if e["epoch"] == e_last]))
            dyn[key] = {"first_epoch": stats.summarize(first).to_dict(),
                        "last_epoch": stats.summarize(last).to_dict()}
        return {"runs": [r.name for r in runs], "comparison": res, "dynamics": dyn,
                "epochs": g["epochs"]}

    def e2(self) -> dict[str, Any]:
        names = []
        e1_cfgs = {c.to_dict().__repr__(): n for n, c in e1_configs(self.s, self.o.data_dir)}
        for name, cfg in e2_configs(self.s, self.o.data_dir):
            names.append(e1_cfgs.get(cfg.to_dict().__repr__(), name))
        runs = self.completed(names)
        if not runs:
            raise UserError("no E2 run completed")
        groups = C.group_runs(runs)
        return {"runs": [r.name for r in runs], "comparison": C.compare_groups(groups),
                "missing": [n for n in names if n not in {r.name for r in runs}]}

    def e3(self) -> dict[str, Any]:
        from ganscope.latent.generate import (
            generate_images,
            latents_from_seed,
            load_generator,
            save_images,
        )

        seed0 = [n for n in self.runs if n.endswith("-s0") and not n.startswith("e6")]
        runs = self.completed(sorted(seed0, key=lambda n: (not n.startswith("e1"), n)))
        if not runs:
            raise UserError("no E1/E2 run to generate from")
        out, grids = self.out / "e3", []
        for r in runs:
            G = load_generator(r)
            z = latents_from_seed(E3_SEED, 8, r.config().model.z_dim)
            a = generate_images(G, z)
            b = generate_images(load_generator(r), latents_from_seed(E3_SEED, 8,
                                                                     r.config().model.z_dim))
            path = save_images(a, out / f"{r.name}-seed{E3_SEED}.png", nrow=8, scale=3)
            grids.append({"run": r.name, "preset": r.config().preset, "file": str(path),
                          "repeatable": bool((a == b).all()),
                          "epoch": r.meta().get("epochs_done")})
        return {"grids": grids}

    def e4(self) -> dict[str, Any]:
        from ganscope.latent.claims import check
        from ganscope.latent.edit import preset_edit, run_edit
        from ganscope.latent.probe import run_probe

        runs = self.completed(["e1-mlp-s0"])
        if not runs:
            raise UserError("E1's seed-0 run did not complete: nothing to probe")
        run = runs[0]
        res, files = run_probe(run, n_base=self.s.probe_n_base, n_null=self.s.probe_n_null,
                               dims=self.s.probe_dims, seed=0, out_dir=self.out / "e4" / "probe",
                               progress=self.o.progress)
        verdicts = check(res)
        p = preset_edit("seed000")
        edit = run_edit(run, p["dims"], p["values"], p["mode"], seed=p["seed"], n=p["n"],
                        out_dir=self.out / "e4" / "edit-seed000")
        n_real = int(res.real.any(axis=1).sum())
        return {"run": run.name, "probe_dir": str(Path(files[0]).parent), "dims": len(res.dims),
                "n_real": n_real, "ranked": [res.sentence(d) for d in res.ranked()[:12]],
                "claims": verdicts, "edit_dir": edit["out_dir"], "edit_rows": edit["rows"],
                "probe_seconds": res.info.get("seconds"),
                "sentences_of_seed_dims": [res.sentence(d) for d in p["dims"]
                                           if d in res.dims]}

    def e5(self) -> dict[str, Any]:
        from ganscope.lab2d.matrix import (
            LOSS_NAMES,
            OPTIMS,
            Cell,
            cell_gifs,
            matrix_figure,
            run_matrix,
            summarize,
            table_rows,
            write_tables,
        )

        out = self.out / "e5"
        cells = [Cell(lo, op) for lo in LOSS_NAMES for op in OPTIMS]
        runs = run_matrix(out, "ring8", cells, self.s.e5_seeds, self.s.e5_steps,
                          workers=self.o.workers, progress=self.o.progress,
                          extra=self.s.e5_extra)
        summary = summarize(runs)
        summary.update({"data": "ring8", "steps": self.s.e5_steps,
                        "seeds": len(self.s.e5_seeds)})
        write_tables(out, summary)
        fig = matrix_figure(runs, out, seed=self.s.e5_seeds[0])
        gifs = cell_gifs(runs, out)
        head, rows = table_rows(summary)
        groups = C.group_runs(runs)
        for g in groups:
            g.label = g.label.removeprefix("lab2d-")
        return {"summary": summary, "table": [head, rows], "matrix": str(fig),
                "gifs": [str(g) for g in gifs], "comparison": C.compare_groups(groups),
                "runs": [r.name for r in runs]}

    def e6(self) -> dict[str, Any]:
        if not self.celeba:
            return {"status": "skipped", "skipped": "no CelebA folder: give --celeba-dir DIR or set "
                               "$GANSCOPE_CELEBA (a folder with img_align_celeba/ and "
                               "list_attr_celeba.txt); nothing of E6 was run"}
        runs = self.completed(["e6-faces-s0"])
        if not runs:
            raise UserError("the face run did not complete: "
                            + self.failed.get("e6-faces-s0", "see LAB/runs/e6-faces-s0"))
        run = runs[0]
        out: dict[str, Any] = {"run": run.name}
        try:
            from ganscope.directions.walk import find_run_directions, walk_run
            from ganscope.latent.cli import parse_steps

            rows, _ = find_run_directions(run, "interfacegan", list(E6_ATTRS),
                                          n=self.s.e6_find_n, seed=0,
                                          progress=self.o.progress)
            names = [r["name"] for r in rows]
            walk = walk_run(run, names, parse_steps(self.s.e6_steps), seed=0,
                            n_measure=self.s.e6_measure_n, progress=self.o.progress)
            out["directions"] = [{k: v for k, v in r.items() if k != "details"} for r in rows]
            out["walks"] = [{"name": w["summary"]["name"], "summary": w["summary"],
                             "files": [str(f) for f in w["files"]]} for w in walk["results"]]
            out["walk_dir"] = walk["out"]
        except UserError as e:
            out["directions_error"] = str(e)
        except ImportError as e:
            out["directions_error"] = f"the directions module is not available ({e})"
        return out

    # -- all of it --
    def run(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        self.say(f"{'quick' if self.s.quick else 'full'} lab into {self.out} "
                 f"({', '.join(e.upper() for e in self.selected)})")
        self.train_all()
        for exp in ("e1", "e2", "e3", "e4", "e5", "e6"):
            self._timed(exp, getattr(self, exp))
        t = time.perf_counter()
        write_pages(self)
        self.times["pages"] = time.perf_counter() - t
        total = time.perf_counter() - self.t0
        record = {"format": "ganscope-lab-v1", "quick": self.s.quick, "out": str(self.out),
                  "selected": self.selected, "seconds": round(total, 1),
                  "times": {k: round(v, 1) for k, v in self.times.items()},
                  "settings": self.s.__dict__, "failed_runs": self.failed,
                  "finished": now_iso(), "machine": machine(),
                  "results": _jsonable(self.results)}
        atomic_write_text(self.out / "lab.json", json.dumps(record, indent=1, default=str) + "\n")
        index = write_index(self, total)
        self.say(f"done in {total:.0f} s")
        return index


def machine() -> dict[str, Any]:
    import torch

    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__}


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def run_lab(opts: LabOptions) -> Path:
    return Lab(opts).run()


# --- pages ----------------------------------------------------------------------------------------


def _nav(current: str) -> list[tuple[str, str]]:
    return [("index", "index.html")] + [(e.upper(), f"{e}.html") for e in EXPERIMENTS]


def _ran_box(lab: Lab, exp: str, items: list[tuple[str, Any]]) -> H.Raw:
    lines = shortened(exp, lab.s)
    if lab.s.quick or lines:
        box = H.Raw('<div class="note"><strong>Shortened (--quick):</strong><ul>'
                    + "".join(f"<li>{H.esc(x)}</li>" for x in lines or ["nothing"])
                    + "</ul>The numbers on this page come from these shortened runs; "
                    "`ganscope lab` without --quick runs the seeds' full set-up.</div>")
    else:
        box = H.p("Full settings: as the seeds ran it (and over seeds).", "ok")
    return H.section("ran", "What ganscope ran", box, H.kv_table(items))


def _status_block(lab: Lab, exp: str) -> H.Raw | None:
    r = lab.results[exp]
    if r["status"] == "not run":
        return H.Raw(f'<div class="skip">{H.esc(exp.upper())} was not run in this lab '
                     f"(--only {H.esc(','.join(lab.selected))}).</div>")
    if r["status"] == "failed":
        return H.Raw(f'<div class="skip">{H.esc(exp.upper())} failed: {H.esc(r["error"])}'
                     "</div>")
    return None


def _exp_page(lab: Lab, exp: str, body: list[Any]) -> None:
    t = lab.times.get(exp.upper())
    sub = f"{'quick' if lab.s.quick else 'full'} lab" + (
        f"; this experiment's analysis took {t:.0f} s" if t is not None else "")
    parts = [H.section("seeds", "What the seeds did", H.p(SEEDS_DID[exp])), *body]
    doc = H.page(TITLES[exp], H.join(parts), subtitle=sub, nav=_nav(exp), footer=_footer())
    H.write(lab.out / f"{exp}.html", doc)


def _footer() -> str:
    from ganscope.report.run import footer

    return footer()


def _metric_rows(res: dict[str, Any], keys: list[str]) -> tuple[list[str], list[list[Any]]]:
    head = ["config", "seeds", *[C.metric_label(k) for k in keys], "flags"]
    rows = []
    for g in res["groups"]:
        flags = ", ".join(f"{f} {n}/{g['n_runs']}" for f, n in g["flags"].items()) or "-"
        rows.append([g["label"], H.cell(g["n_runs"], "d"),
                     *[_two_line(k, g["label"], g["metrics"].get(k)) for k in keys], flags])
    return head, rows


def _two_line(key: str, label: str, m: dict[str, Any] | None) -> H.Raw:
    """'mean ± std' over '[lo, hi]' in one cell; data-value holds the mean."""
    if not m:
        return H.Raw("<td>-</td>")
    text = C.cell_text(key, m)
    top, _, ci = text.partition(" [")
    inner = H.esc(top) + (f'<br><span class="muted">[{H.esc(ci)}</span>' if ci else "")
    return H.Raw(f'<td class="num" data-key="{H.esc(label)}/{key}" '
                 f'data-value="{H.esc(repr(m["mean"]))}">{inner}</td>')


def _runs_of(lab: Lab, names: list[str]) -> list[Run]:
    return [lab.runs[n] for n in names if n in lab.runs]


def page_e1(lab: Lab) -> None:
    s, r = lab.s, lab.results["e1"]
    items = [("preset", "e1-mlp (G 100-128-784, D 784-128-1, BCE, Adam 2e-4, batch 64)"),
             ("seeds", _seeds(s.seeds)), ("epochs", s.e1_epochs or _epochs("e1-mlp")),
             ("data", f"first {s.e1_limit}" if s.e1_limit else "all 60,000 training images"),
             ("evaluation", f"every epoch, {s.eval_n} generated vs the test split"),
             ("command", "ganscope train e1-mlp --eval-every 1 --seed S")]
    body: list[Any] = [_ran_box(lab, "e1", items)]
    block = _status_block(lab, "e1")
    if block is not None:
        body.append(block)
        return _exp_page(lab, "e1", body)
    res = r["comparison"]
    g = res["groups"][0]
    fid = g["metrics"].get("fid")
    best = g["metrics"].get("best_fid")
    dyn = r["dynamics"]

    def d(key: str, when: str) -> str:
        m = dyn[key][when]
        return f"{m['mean']:.3f}" + (f" ± {m['std']:.3f}" if m["std"] is not None else "")

    answers = []
    if fid:
        answers.append(f"After {max(g['epochs'] or [0])} epochs the MLP GAN scores FID "
                       f"{C.cell_text('fid', fid)} over {fid['n']} seeds (mean ± std "
                       "[95 % interval]); best FID during training "
                       f"{C.cell_text('best_fid', best)}.")
    dx, dgz = (dyn[k]["last_epoch"]["mean"] for k in ("d_x", "d_g_z"))
    wins = "d-wins" in g["flags"]
    if wins:
        balance = "D wins outright in some seeds (flag d-wins): G gets almost no gradient there"
    elif abs(dx - 0.5) < 0.15 and abs(dgz - 0.5) < 0.15:
        balance = ("both near the 0.5 equilibrium: neither net wins, so each step of one "
                   "undoes part of the other's (the oscillation the seeds described)")
    else:
        balance = ("D is ahead (it scores real images higher than generated ones) without "
                   "winning outright (no d-wins flag), so G keeps getting a gradient and the "
                   "two losses keep trading places from step to step (the oscillation the "
                   "seeds described)")
    answers.append(f"The losses do not fall towards zero: D loss {d('loss_d', 'first_epoch')} "
                   f"in epoch 1 and {d('loss_d', 'last_epoch')} in the last epoch, G loss "
                   f"{d('loss_g', 'first_epoch')} then {d('loss_g', 'last_epoch')}. Mean D(x) "
                   f"{d('d_x', 'last_epoch')} and D(G(z)) {d('d_g_z', 'last_epoch')} in the last "
                   f"epoch: {balance}; quality is read from the metrics, not from the loss.")
    flags = ", ".join(f"{f} in {n} of {g['n_runs']} runs" for f, n in g["flags"].items())
    answers.append(f"Diagnostics: {flags or 'no flags in any seed'}.")
    body.append(H.section("answers", "Measured answers",
                          H.Raw("<ul>" + "".join(f"<li>{H.esc(a)}</li>" for a in answers)
                                + "</ul>")))
    runs = _runs_of(lab, r["runs"])
    from ganscope.report.sweep import comparison_body

    body.append(comparison_body(res, C.group_runs(runs), "E1", level=2))
    from ganscope.report.run import run_body

    body.append(H.section("run", f"Seed 0 in detail ({runs[0].name})",
                          run_body(runs[0], prefix="run-", level=3), level=2))
    _exp_page(lab, "e1", body)


def page_e2(lab: Lab) -> None:
    s, r = lab.s, lab.results["e2"]
    items = [("presets", ", ".join(s.e2_presets)),
             ("architectures", "e2-cnn: seed 000's CNN; e2-dcgan: seed 002's DCGAN as it ran "
                               "(default init, Adam betas 0.9); e2-dcgan-fixed: the same with "
                               "the DCGAN recipe (N(0, 0.02) init, betas 0.5); e2-tiny-cnn: "
                               "seed 001's tiny CNN; e1-mlp: the baseline"),
             ("seeds", _seeds(s.seeds)),
             ("epochs", s.e2_epochs or "the presets' own: " + ", ".join(
                 f"{p} {_epochs(p)}" for p in s.e2_presets)),
             ("data", f"first {s.e2_limit} training images" if s.e2_limit
              else "all 60,000 training images"),
             ("evaluation", f"every epoch, {s.eval_n} generated vs the test split")]
    body: list[Any] = [_ran_box(lab, "e2", items)]
    block = _status_block(lab, "e2")
    if block is not None:
        body.append(block)
        return _exp_page(lab, "e2", body)
    res = r["comparison"]
    keys = [k for k in ("fid", "best_fid", "kid", "recall", "coverage", "classes_covered")
            if k in res["metrics"]]
    head, rows = _metric_rows(res, keys)
    answers = []
    have = [g for g in res["groups"] if g["metrics"].get("fid")]
    if have:
        ranked = sorted(have, key=lambda g: g["metrics"]["fid"]["mean"])
        answers.append("Final FID, lowest first: " + "; ".join(
            f"{g['label']} {C.cell_text('fid', g['metrics']['fid'])}" for g in ranked) + ".")
        mlp = next((g for g in have if g["label"] == "e1-mlp"), None)
        if mlp is not None:
            verdicts = []
            for g in ranked:
                if g is mlp:
                    continue
                ov = stats.intervals_overlap(C._summary(g["metrics"]["fid"]),
                                             C._summary(mlp["metrics"]["fid"]))
                if ov is None:
                    word = "cannot be compared with one seed"
                elif ov:
                    word = "is not distinguishable from the MLP at this number of seeds"
                elif g["metrics"]["fid"]["mean"] < mlp["metrics"]["fid"]["mean"]:
                    word = "beats the MLP (intervals disjoint)"
                else:
                    word = "is worse than the MLP (intervals disjoint)"
                verdicts.append(f"{g['label']} {word}")
            answers.append("CNN vs MLP at equal epochs and data: " + "; ".join(verdicts) + ".")
    for g in res["groups"]:
        for f, n in g["flags"].items():
            answers.append(f"{g['label']}: flag {f} in {n} of {g['n_runs']} seeds.")
    body.append(H.section("answers", "Measured answers",
                          H.Raw("<ul>" + "".join(f"<li>{H.esc(a)}</li>" for a in answers)
                                + "</ul>"),
                          H.p("each cell: mean ± std over seeds of the final evaluation, "
                              "below it the 95 % Student-t interval", "muted"),
                          H.table(head, rows, cls="e2", tid="e2-table")))
    grids = []
    for name in r["runs"]:
        run = lab.runs[name]
        if name.endswith("-s0"):
            from ganscope.report.run import sample_epochs

            eps = sample_epochs(run, 1_000)
            if eps:
                grids.append((eps[-1][1], f"{run.config().preset}, seed 0, epoch {eps[-1][0]}"))
    if grids:
        body.append(H.section("samples", "Samples (seed 0, last epoch)", H.strip(grids)))
    from ganscope.report.sweep import comparison_body

    body.append(comparison_body(res, C.group_runs(_runs_of(lab, r["runs"])), "E2", level=2))
    _exp_page(lab, "e2", body)


def page_e3(lab: Lab) -> None:
    r = lab.results["e3"]
    items = [("latents", f"torch.manual_seed({E3_SEED}); z = torch.randn(8, 100)"),
             ("generators", "the seed-0 run of E1 and of every E2 preset, last epoch"),
             ("command", f"ganscope generate RUN --seed {E3_SEED} -n 8 --out grid.png")]
    body: list[Any] = [_ran_box(lab, "e3", items)]
    block = _status_block(lab, "e3")
    if block is None:
        parts = []
        for g in r["grids"]:
            parts.append(H.img_file(g["file"], f"{g['run']} seed {E3_SEED}",
                                    f"{g['run']} ({g['preset']}, epoch {g['epoch']}): 8 images "
                                    f"from seed {E3_SEED}; generated twice, identical: "
                                    f"{'yes' if g['repeatable'] else 'NO'}"))
        ok = all(g["repeatable"] for g in r["grids"])
        body.append(H.section("answers", "Measured answers", H.p(
            f"{len(r['grids'])} generators, the same 8 latents each. Generating again from the "
            f"same seed gives {'the same images, byte for byte' if ok else 'DIFFERENT images'}"
            "."), *parts))
    else:
        body.append(block)
    _exp_page(lab, "e3", body)


def page_e4(lab: Lab) -> None:
    s, r = lab.s, lab.results["e4"]
    items = [("generator", "E1's seed-0 run, last epoch"),
             ("probe", f"every dim shifted by -3..3 on {s.probe_n_base} base vectors; effects "
                       "measured by the shipped classifier and image statistics; real only "
                       f"when beyond {s.probe_n_null} random unit directions at a family-wise "
                       "5 %"),
             ("claims", "the seeds' 22 claims (latent/claims.yaml) held against the probe"),
             ("edit", "seed 000's own choice: dims 20, 50, 60, 70, 90 shifted by -10 / 0 / +10"),
             ("commands", "ganscope latent probe RUN; ganscope latent check RUN; "
                          "ganscope latent edit RUN --preset seed000")]
    body: list[Any] = [_ran_box(lab, "e4", items)]
    block = _status_block(lab, "e4")
    if block is not None:
        body.append(block)
        return _exp_page(lab, "e4", body)
    counts = {v: sum(c["verdict"] == v for c in r["claims"]) for v in ("holds", "fails",
                                                                      "untestable")}
    probe_dir = Path(r["probe_dir"])
    answers = [f"{r['n_real']} of {r['dims']} dims have an effect beyond the null.",
               f"The seeds' claims: {counts['holds']} hold, {counts['fails']} fail, "
               f"{counts['untestable']} cannot be tested on this generator."]
    parts: list[Any] = [H.Raw("<ul>" + "".join(f"<li>{H.esc(a)}</li>" for a in answers)
                              + "</ul>")]
    if (probe_dir / "heatmap.png").is_file():
        parts.append(H.img_file(probe_dir / "heatmap.png", "probe heatmap",
                                "|slope| / null median per dim and effect"))
    parts.append(H.tag("h3", "The strongest dims, measured"))
    parts.append(H.Raw("<ol>" + "".join(f"<li>{H.esc(x)}</li>" for x in r["ranked"])
                       + "</ol>"))
    parts.append(H.tag("h3", "Seed 000's dims (20, 50, 60, 70, 90), measured"))
    parts.append(H.Raw("<ul>" + "".join(f"<li>{H.esc(x)}</li>"
                                        for x in r["sentences_of_seed_dims"]) + "</ul>"))
    parts.append(H.tag("h3", "The seeds' claims"))
    parts.append(H.table(["claim", "seed", "verdict", "evidence"],
                         [[c["claim"], c["seed"], c["verdict"], c["evidence"]]
                          for c in r["claims"]], cls="claims", tid="claims"))
    edits = Path(r["edit_dir"]) / "edits.png"
    if edits.is_file():
        parts.append(H.tag("h3", "Seed 000's edit, re-run"))
        parts.append(H.img_file(edits, "seed 000 edit", "rows: dim and shift; columns: the "
                                "8 samples of seed 23231; the numbers are the mean |pixel "
                                "change| of each row"))
    body.append(H.section("answers", "Measured answers", *parts))
    _exp_page(lab, "e4", body)


def page_e5(lab: Lab) -> None:
    s, r = lab.s, lab.results["e5"]
    items = [("data", "ring8: 8 Gaussians on a circle of radius 2, std 0.02"),
             ("cells", "GAN (BCE), WGAN (clipping 0.01, n_critic 5), WGAN-GP (lambda 10, "
                       "n_critic 5) x Adam, RMSprop, each with its published settings"),
             ("seeds", _seeds(s.e5_seeds)), ("length", f"{s.e5_steps} generator steps"),
             ("command", f"ganscope lab2d --seeds {len(s.e5_seeds)} --steps {s.e5_steps}")]
    body: list[Any] = [_ran_box(lab, "e5", items)]
    block = _status_block(lab, "e5")
    if block is not None:
        body.append(block)
        return _exp_page(lab, "e5", body)
    from ganscope.lab2d.matrix import TABLE_METRICS

    head, rows = r["table"]
    winners = r["summary"].get("winners", {})
    answers = [f"best {TABLE_METRICS[k][0]}: {c}" for k, c in winners.items()]
    res = r["comparison"]
    notes = [n for n in C.significance_notes(res)
             if n.split(" (")[0].split(":")[0] in ("modes", "HQ fraction", "sliced W1")]
    parts: list[Any] = [
        H.p("mean ± std over seeds of each cell's final evaluation; * marks the best cell per "
            "metric; late spread: std of sliced W1 over the last quarter of training "
            "(stability)."),
        H.table(head, rows, cls="e5", tid="e5-table"),
        H.Raw("<ul>" + "".join(f"<li>{H.esc(a)}</li>" for a in answers + notes) + "</ul>"),
        H.img_file(r["matrix"], "final points per cell",
                   f"final points of seed {s.e5_seeds[0]} per cell over the target, D's "
                   "surface underneath"),
    ]
    gifs = [Path(g) for g in r["gifs"]]
    if gifs:
        parts.append(H.tag("h3", "Training, per cell (seed 0)"))
        parts.append(H.Raw('<div class="strip">' + "".join(
            H.img_file(g, g.stem, g.stem) for g in gifs) + "</div>"))
    body.append(H.section("answers", "Measured answers", *parts))
    from ganscope.report.sweep import comparison_body

    groups = C.group_runs(_runs_of_paths(r["runs"], lab.out / "e5" / "runs"))
    for g in groups:
        g.label = g.label.removeprefix("lab2d-")
    body.append(comparison_body(res, groups, "E5", level=2))
    _exp_page(lab, "e5", body)


def _runs_of_paths(names: list[str], root: Path) -> list[Run]:
    return [Run(root / n) for n in names if (root / n / "config.yaml").is_file()]


def page_e6(lab: Lab) -> None:
    s, r = lab.s, lab.results["e6"]
    items = [("preset", "e6-faces: DCGAN at 32x32 on the CelebA 10k slice, DCGAN recipe"),
             ("seeds", "0 (one run: faces are the most expensive experiment)"),
             ("epochs", s.e6_epochs or _epochs("e6-faces")),
             ("data", f"CelebA folder {lab.celeba}" if lab.celeba else "none given"),
             ("directions", f"InterFaceGAN for {', '.join(E6_ATTRS)} from {s.e6_find_n} "
                            "faces scored by the shipped attribute classifier"),
             ("walks", f"steps {s.e6_steps} (std of z), measured on {s.e6_measure_n} latents"),
             ("commands", "ganscope train e6-faces --data-dir DIR; ganscope directions find "
                          "RUN --method interfacegan --attr Male,Smiling,Young; ganscope "
                          "directions walk RUN --direction male,smiling,young")]
    body: list[Any] = [_ran_box(lab, "e6", items)]
    block = _status_block(lab, "e6")
    if block is not None:
        body.append(block)
        return _exp_page(lab, "e6", body)
    if "skipped" in r:
        body.append(H.Raw(f'<div class="skip"><strong>E6 was skipped:</strong> '
                          f"{H.esc(r['skipped'])}.</div>"))
        return _exp_page(lab, "e6", body)
    run = lab.runs[r["run"]]
    parts: list[Any] = []
    if "directions_error" in r:
        parts.append(H.Raw(f'<div class="skip">Directions were not found: '
                           f"{H.esc(r['directions_error'])}</div>"))
    else:
        parts.append(H.table(["direction", "method", "attribute", "quality", "correlation"],
                             [[d["name"], d["method"], d["attribute"] or "-", d["quality"],
                               H.cell(d["correlation"], ".3f")] for d in r["directions"]]))
        rows = []
        for w in r["walks"]:
            sm = w["summary"]
            rows.append([sm["name"],
                         "-" if sm["target"] is None else
                         f"{sm['target']} {sm['target_from']:.3f} -> {sm['target_to']:.3f}",
                         "-" if sm["target"] is None else
                         ("yes" if sm["monotonic"] else "no"),
                         "-" if sm["largest_side_effect"] is None else
                         f"{sm['largest_side_effect']} {sm['largest_side_effect_delta']:+.3f}"])
        parts.append(H.table(["walk", "target P (first -> last step)", "monotonic",
                              "largest side effect"], rows))
        for w in r["walks"]:
            f = next((Path(x) for x in w["files"] if x.endswith("walk.png")), None)
            if f is not None and f.is_file():
                parts.append(H.img_file(f, f"walk {w['name']}", f"walk along '{w['name']}'"))
        se = Path(r["walk_dir"]) / "side_effects.png"
        if se.is_file():
            parts.append(H.img_file(se, "side effects", "change of every attribute from the "
                                    "first to the last step of each walk"))
    body.append(H.section("answers", "Measured answers", *parts))
    from ganscope.report.run import run_body

    body.append(H.section("run", f"The face run ({run.name})",
                          run_body(run, prefix="run-", level=3, compact=True), level=2))
    _exp_page(lab, "e6", body)


PAGES = {"e1": page_e1, "e2": page_e2, "e3": page_e3, "e4": page_e4, "e5": page_e5,
         "e6": page_e6}


def write_pages(lab: Lab) -> None:
    for exp, fn in PAGES.items():
        try:
            fn(lab)
        except (UserError, KeyError, ValueError, OSError) as e:  # one broken page, not the lab
            lab.results[exp] = {"status": "failed", "error": f"page: {type(e).__name__}: {e}"}
            _exp_page(lab, exp, [_status_block(lab, exp)])


def _one_line(lab: Lab, exp: str) -> str:
    r = lab.results[exp]
    if r["status"] == "not run":
        return "not run (--only)"
    if r["status"] == "failed":
        return "failed: " + r["error"]
    try:
        if exp == "e1":
            fid = r["comparison"]["groups"][0]["metrics"].get("fid")
            return f"final FID {C.cell_text('fid', fid)}" if fid else "no FID"
        if exp == "e2":
            have = [g for g in r["comparison"]["groups"] if g["metrics"].get("fid")]
            best = min(have, key=lambda g: g["metrics"]["fid"]["mean"])
            return (f"lowest final FID: {best['label']} "
                    f"{C.cell_text('fid', best['metrics']['fid'])}")
        if exp == "e3":
            ok = all(g["repeatable"] for g in r["grids"])
            return f"{len(r['grids'])} grids from seed {E3_SEED}; repeatable: {'yes' if ok else 'NO'}"
        if exp == "e4":
            counts = {v: sum(c["verdict"] == v for c in r["claims"])
                      for v in ("holds", "fails", "untestable")}
            return (f"{r['n_real']} of {r['dims']} dims beyond the null; claims: "
                    f"{counts['holds']} hold, {counts['fails']} fail, "
                    f"{counts['untestable']} untestable")
        if exp == "e5":
            from ganscope.lab2d.matrix import TABLE_METRICS

            w = r["summary"].get("winners", {})
            return ("best " + "; ".join(f"{TABLE_METRICS[k][0]}: {v}" for k, v in w.items())
                    if w else "no cell wins on any metric")
        if exp == "e6":
            if "skipped" in r:
                return "skipped: no CelebA folder"
            if "directions_error" in r:
                return "face run trained; directions not found: " + r["directions_error"]
            return ", ".join(f"{w['name']} {w['summary']['target_from']:.2f} -> "
                             f"{w['summary']['target_to']:.2f}" for w in r["walks"]
                             if w["summary"]["target"])
    except (KeyError, ValueError, TypeError):
        pass
    return "see the page"


def write_index(lab: Lab, total: float) -> Path:
    rows = []
    for exp in EXPERIMENTS:
        short = shortened(exp, lab.s)
        t = lab.times.get(exp.upper())
        rows.append([H.Raw(f"<td>{H.link(exp.upper(), f'{exp}.html')}</td>"),
                     TITLES[exp].split(": ", 1)[1], lab.results[exp]["status"],
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
                 nav=_nav("index"), footer=_footer())
    return H.write(lab.out / "index.html", doc)

