"""``ganscope sweep``: every combination of a grid of config values x seeds, in one directory.

```
SWEEP/
  sweep.json                 the spec: base config, grid, seeds, the expanded cells (name and
                             overrides), created; a sweep started again must have the same spec
  runs/<cell>-s<seed>/       ordinary run directories, named from the cell's overrides
  compare/                   written by `ganscope compare SWEEP` (table, bands, summary.json)
  report.html                written by `ganscope report SWEEP`
```

Grid keys are config keys; a section that has a ``name`` stands for its name (``loss`` means
``loss.name``, ``optim`` means ``optim.name``), other keys are dotted (``optim.lr``,
``train.n_critic``). Values are comma-separated and parsed like ``--set`` values (YAML), with
commas inside brackets kept (``optim.betas=[0.5,0.9],[0.9,0.999]``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganscope.config import RunConfig, _hints, apply_overrides, from_dict, load_config
from ganscope.domains import load_dataset
from ganscope.environment import now_iso
from ganscope.errors import ConfigError, RunError
from ganscope.experiments.runner import BACKENDS, execute, plan_runs, ray_module
from ganscope.io import atomic_write_text
from ganscope.training.run import Run, runs_root

SPEC_FILE = "sweep.json"
SPEC_FORMAT = "ganscope-sweep-v1"
RUNS = "runs"
MAX_CELL_NAME = 80  # + "-s<seed>" stays within a run name's 100 characters
_SPEC_KEYS = ("base", "grid", "seeds", "cells")  # what must match when a sweep is started again


@dataclass(frozen=True)
class Cell:
    """One combination of grid values: its run-name stem and its ``key=value`` overrides."""

    name: str
    overrides: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "overrides": list(self.overrides)}


# --- parsing ------------------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2,7' and '0-2,9' too; one number is one seed."""
    seeds: list[int] = []
    bad = ConfigError(f"bad --seeds '{text}': give seeds as a range or a list, e.g. 0-4, "
                      "0,1,2 or 0-2,9")
    for part in (p.strip() for p in str(text).split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise bad
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise ConfigError(f"bad --seeds '{text}': the range {part} runs backwards")
        seeds.extend(range(a, b + 1))
    if len(seeds) > 10000:
        raise ConfigError(f"--seeds '{text}' asks for {len(seeds)} seeds: at most 10000")
    return list(dict.fromkeys(seeds))


def format_seeds(seeds: list[int]) -> str:
    """The --seeds text of ``seeds``, the inverse of :func:`parse_seeds`: [0, 1, 2, 9] -> '0-2,9'."""
    parts: list[str] = []
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if j == i else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)


def split_values(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: 'a,[1,2],b' -> ['a', '[1,2]', 'b']."""
    out, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def canonical_key(key: str, item: str) -> str:
    """A grid key as a dotted config key: a section with a ``name`` field means its name."""
    parts = key.split(".")
    cls: Any = RunConfig
    for i, part in enumerate(parts):
        hints = _hints(cls)  # the one source of the config's fields
        if part not in hints:
            where = ".".join(parts[:i])
            where_s = f"under '{where}'" if where else "at the top level"
            raise ConfigError(f"unknown config key '{key}' in --grid {item}: valid keys "
                              f"{where_s} are {', '.join(hints)}")
        tp = hints[part]
        if i < len(parts) - 1 and not dataclasses.is_dataclass(tp):
            raise ConfigError(f"unknown config key '{key}' in --grid {item}: '{part}' is not a "
                              "section")
        cls = tp
    if dataclasses.is_dataclass(cls):
        if "name" in _hints(cls):
            return f"{key}.name"
        raise ConfigError(f"--grid {item}: '{key}' is a section; give one of its keys "
                          f"({', '.join(_hints(cls))})")
    if key == "seed":
        raise ConfigError(f"--grid {item}: seeds come from --seeds (e.g. --seeds 0-4), not "
                          "from the grid")
    return key


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``["loss=bce,wgan-gp", "optim.lr=1e-4,2e-4"]`` -> [(dotted key, [raw values]), ...]."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"bad --grid {item!r}: write it as key=value,value,... e.g. "
                              "--grid loss=bce,wgan-gp")
        key, raw = (s.strip() for s in item.split("=", 1))
        ckey = canonical_key(key, item)
        values = split_values(raw) if raw else []
        if not values or any(v == "" for v in values):
            raise ConfigError(f"bad --grid {item!r}: give one or more values separated by "
                              "commas, none empty")
        if len(set(values)) != len(values):
            raise ConfigError(f"bad --grid {item!r}: a value is repeated")
        if any(k == ckey for k, _ in grid):
            raise ConfigError(f"--grid {ckey} is given twice: put all its values in one --grid")
        grid.append((ckey, values))
    return grid


# --- expansion ----------------------------------------------------------------------------------


def _labels(keys: list[str]) -> dict[str, str]:
    """Short labels for the run names: 'loss.name' -> 'loss', 'train.epochs' -> 'epochs' (the
    last part when it is unique among the grid's keys, else the whole key)."""
    stems = {k: k.removesuffix(".name") for k in keys}
    lasts = [s.rsplit(".", 1)[-1] for s in stems.values()]
    return {k: (s.rsplit(".", 1)[-1] if lasts.count(s.rsplit(".", 1)[-1]) == 1 else s)
            for k, s in stems.items()}


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", value).strip("-.") or "x"


def cell_name(grid: list[tuple[str, list[str]]], values: tuple[str, ...]) -> str:
    """The run-name stem of one combination, e.g. 'loss-bce_optim-adam'; 'base' for no grid."""
    if not grid:
        return "base"
    labels = _labels([k for k, _ in grid])
    name = "_".join(f"{labels[k]}-{_slug(v)}" for (k, _), v in zip(grid, values))
    if len(name) > MAX_CELL_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:MAX_CELL_NAME - 9].rstrip('-_.')}-{digest}"
    return name


def _with(cfg: RunConfig, overrides: list[str], where: str) -> RunConfig:
    try:
        return apply_overrides(cfg, overrides).validate()
    except ConfigError as e:
        msg = re.sub(r" \(in --set [^)]*\)$", "", str(e))
        raise ConfigError(f"{msg} (in {where})") from None


def expand(base: RunConfig, grid: list[tuple[str, list[str]]]) -> list[Cell]:
    """Every combination of the grid's values, in the order given; each value is checked on
    its own first, so a bad one is named with its --grid."""
    for key, values in grid:
        for v in values:
            _with(base, [f"{key}={v}"], f"--grid {key}={','.join(values)}")
    cells = []
    for combo in itertools.product(*[vals for _, vals in grid]):
        overrides = tuple(f"{k}={v}" for (k, _), v in zip(grid, combo))
        name = cell_name(grid, combo)
        _with(base, list(overrides), f"cell {name}")
        cells.append(Cell(name, overrides))
    names = [c.name for c in cells]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ConfigError(f"two grid cells would both be named '{dup}': make their values "
                          "differ in letters or digits, not only in punctuation")
    return cells


def run_name(cell: Cell | dict[str, Any], seed: int) -> str:
    name = cell.name if isinstance(cell, Cell) else cell["name"]
    return f"{name}-s{seed}"


# --- the spec -----------------------------------------------------------------------------------


def make_spec(config: str, overrides: list[str], grid_items: list[str], seeds_text: str,
              data_dir: str | None = None) -> dict[str, Any]:
    """The sweep's spec from the command line: every value checked before anything is written."""
    base = load_config(config)
    base = apply_overrides(base, overrides)
    if data_dir:
        base.data.dir = str(Path(data_dir).resolve())
    base.validate()
    grid = parse_grid(grid_items)
    seeds = parse_seeds(seeds_text)
    cells = expand(base, grid)
    return {"format": SPEC_FORMAT, "config": config, "set": list(overrides),
            "base": base.to_dict(), "grid": [[k, v] for k, v in grid], "seeds": seeds,
            "cells": [c.to_dict() for c in cells], "created": now_iso()}


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps({k: spec[k] for k in _SPEC_KEYS}, sort_keys=True)
                          .encode()).hexdigest()[:8]


def default_dir(spec: dict[str, Any], runs_dir: str | None = None) -> Path:
    """RUNS_DIR/sweep-<preset>-<hash of the spec>: the same command finds the same sweep."""
    preset = re.sub(r"[^A-Za-z0-9._-]+", "_", str(spec["base"].get("preset", "custom")))[:40]
    return runs_root(runs_dir) / f"sweep-{preset}-{spec_digest(spec)}"


def is_sweep(path: str | Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file()


def load_spec(sweep_dir: str | Path) -> dict[str, Any]:
    f = Path(sweep_dir) / SPEC_FILE
    try:
        spec = json.loads(f.read_text())
    except FileNotFoundError:
        raise RunError(f"{sweep_dir} is not a sweep (no {SPEC_FILE}): give a sweep directory "
                       "made by `ganscope sweep`") from None
    except (OSError, json.JSONDecodeError):
        raise RunError(f"cannot read {f}: the sweep directory is damaged") from None
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT or any(
            k not in spec for k in _SPEC_KEYS):
        raise RunError(f"{f} is not a ganscope sweep spec ({SPEC_FORMAT})")
    return spec


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    for key, what in (("base", "base config differs"), ("grid", "grid differs"),
                      ("seeds", "seeds differ"), ("cells", "cells differ")):
        if old.get(key) != new.get(key):
            return what
    return "spec differs"


def write_spec(sweep_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Write sweep.json, or check the one on disk: a sweep started again must ask for the same
    runs. Returns the spec in force (the original ``created`` kept)."""
    f = sweep_dir / SPEC_FILE
    if f.is_file():
        old = load_spec(sweep_dir)
        if any(old[k] != spec[k] for k in _SPEC_KEYS):
            raise ConfigError(
                f"sweep {sweep_dir} was started with another spec (its "
                f"{_difference(old, spec)}): give another --out, or delete {f} to start it "
                "over")
        return old
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(f, json.dumps(spec, indent=2) + "\n")
    return spec


def entries(sweep_dir: Path, spec: dict[str, Any]) -> list[tuple[Path, RunConfig]]:
    """(run dir, config) of every cell x seed, cells outer, seeds inner."""
    base = from_dict(spec["base"])
    out = []
    for cell in spec["cells"]:
        cfg = apply_overrides(base, list(cell["overrides"]))
        for seed in spec["seeds"]:
            c = apply_overrides(cfg, [f"seed={seed}"]).validate()
            out.append((sweep_dir / RUNS / run_name(cell, seed), c))
    return out


def sweep_runs(sweep_dir: str | Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], int, Run]]]:
    """The spec and (cell, seed, run) for every run of a sweep, in spec order (the run may not
    exist yet)."""
    sweep_dir = Path(sweep_dir)
    spec = load_spec(sweep_dir)
    return spec, [(cell, seed, Run(sweep_dir / RUNS / run_name(cell, seed)))
                  for cell in spec["cells"] for seed in spec["seeds"]]


def run_sweep(sweep_dir: Path, spec: dict[str, Any], *, backend: str = "local",
              workers: int | None = None, address: str | None = None, progress: bool = True,
              announce=None) -> tuple[Any, list[dict[str, Any]]]:
    """Write (or check) the spec, plan the runs (keep completed, resume interrupted, create the
    rest) and train what is left. ``announce(plan)`` is called before training starts."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}': choose local or ray")
    if backend == "ray":
        ray_module()  # missing Ray: one line, before anything is written
    elif address:
        raise ConfigError("--address applies to --backend ray only")
    ents = entries(sweep_dir, spec)
    # Data first: a missing data set fails before the sweep directory is made.
    load_dataset(ents[0][1].data, ents[0][1].seed)
    spec = write_spec(sweep_dir, spec)
    plan = plan_runs(ents)
    if announce is not None:
        announce(plan)
    results = execute(plan.todo, backend, workers=workers, address=address, desc="sweep",
                      progress=progress)
    return plan, results
