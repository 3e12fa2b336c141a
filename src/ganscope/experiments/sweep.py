"""``ganscope sweep``: every combination of a grid of config values x seeds, in one directory.

```
SWEEP/
  sweep.json                 the spec: base config, grid, variants, seeds, the expanded cells
                             (name and overrides), the spec file and its description, created;
                             a sweep started again must have the same spec
  runs/<cell>-s<seed>/       ordinary run directories, named from the cell's overrides
  compare/                   written by `ganscope compare SWEEP` (table, bands, summary.json)
  report.html                written by `ganscope report SWEEP`
```

Grid keys are config keys; a section that has a ``name`` stands for its name (``loss`` means
``loss.name``, ``optim`` means ``optim.name``), other keys are dotted (``optim.lr``,
``train.n_critic``). Values are comma-separated and parsed like ``--set`` values (YAML), with
commas inside brackets kept (``optim.betas=[0.5,0.9],[0.9,0.999]``).

A sweep spec file (``ganscope sweep --spec FILE.yaml``, read by :func:`read_sweep_file`) gives
the same arguments as YAML (``preset``, ``seeds``, ``set``, ``grid``) plus named ``variants``,
each a list of overrides: an ablation. The cells are then the variants x the grid, each named
``<variant>`` or ``<variant>_<grid part>``. Both paths end in the one :func:`make_spec`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ganscope.config import (
    _YAML_VALUE_ERRORS,
    RunConfig,
    _hints,
    apply_overrides,
    from_dict,
    load_config,
)
from ganscope.domains import load_dataset
from ganscope.environment import now_iso
from ganscope.errors import ConfigError, RunError
from ganscope.experiments.runner import BACKENDS, execute, plan_runs, ray_module
from ganscope.io import atomic_write_text
from ganscope.training.run import _NAME_RE, Run, runs_root

SPEC_FILE = "sweep.json"
SPEC_FORMAT = "ganscope-sweep-v1"
RUNS = "runs"
MAX_CELL_NAME = 80  # + "-s<seed>" stays within a run name's 100 characters
DEFAULT_SEEDS = "0-2"
_SPEC_KEYS = ("base", "grid", "seeds", "cells")  # what every sweep.json holds
# What must match when a sweep is started again ("variants" is null without a spec file, and
# absent from sweep.json files written before spec files existed).
_IDENTITY_KEYS = ("base", "grid", "seeds", "variants", "cells")
FILE_KEYS = ("preset", "seeds", "set", "grid", "variants", "description")


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


def canonical_key(key: str, item: str, where: str | None = None) -> str:
    """A grid key as a dotted config key: a section with a ``name`` field means its name.
    ``where`` names the grid in errors (default ``--grid ITEM``)."""
    where = where or f"--grid {item}"
    parts = key.split(".")
    cls: Any = RunConfig
    for i, part in enumerate(parts):
        hints = _hints(cls)  # the one source of the config's fields
        if part not in hints:
            at = ".".join(parts[:i])
            at_s = f"under '{at}'" if at else "at the top level"
            raise ConfigError(f"unknown config key '{key}' in {where}: valid keys "
                              f"{at_s} are {', '.join(hints)}")
        tp = hints[part]
        if i < len(parts) - 1 and not dataclasses.is_dataclass(tp):
            raise ConfigError(f"unknown config key '{key}' in {where}: '{part}' is not a "
                              "section")
        cls = tp
    if dataclasses.is_dataclass(cls):
        if "name" in _hints(cls):
            return f"{key}.name"
        raise ConfigError(f"{where}: '{key}' is a section; give one of its keys "
                          f"({', '.join(_hints(cls))})")
    if key == "seed":
        raise ConfigError(f"{where}: seeds come from --seeds (e.g. --seeds 0-4), not "
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


def _shorten(name: str) -> str:
    if len(name) > MAX_CELL_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:MAX_CELL_NAME - 9].rstrip('-_.')}-{digest}"
    return name


def cell_name(grid: list[tuple[str, list[str]]], values: tuple[str, ...],
              variant: str | None = None) -> str:
    """The run-name stem of one combination, e.g. 'loss-bce_optim-adam'; 'base' for no grid.
    With a variant, its name comes first: 'ema' alone, 'ema_lr-1e-4' with a grid."""
    if not grid:
        return variant if variant is not None else "base"
    labels = _labels([k for k, _ in grid])
    name = "_".join(f"{labels[k]}-{_slug(v)}" for (k, _), v in zip(grid, values))
    return _shorten(f"{variant}_{name}" if variant is not None else name)


def _with(cfg: RunConfig, overrides: list[str], where: str) -> RunConfig:
    try:
        return apply_overrides(cfg, overrides).validate()
    except ConfigError as e:
        msg = re.sub(r" \(in --set [^)]*\)$", "", str(e))
        raise ConfigError(f"{msg} (in {where})") from None


def _apply_named(cfg: RunConfig, overrides: list[str] | tuple[str, ...], where: str,
                 validate: bool = True) -> RunConfig:
    """Apply overrides that come from a spec file, not from --set: an error names ``where``
    (e.g. 'variant ema of FILE') instead of a --set the user never typed."""
    for ov in overrides:
        try:
            cfg = apply_overrides(cfg, [ov])
        except ConfigError as e:
            msg = (str(e).replace(f" (in --set {ov})", "").replace(f" in --set {ov}:", ":")
                   .replace(f"bad --set {ov!r}", f"bad override {ov!r}")
                   .replace(f"--set {ov}: ", f"{ov}: "))
            raise ConfigError(f"{msg} (in {where})") from None
    if not validate:
        return cfg
    try:
        return cfg.validate()
    except ConfigError as e:
        raise ConfigError(f"{e} (in {where})") from None


def _override_key(ov: str) -> str:
    return ov.split("=", 1)[0].strip()


def expand(base: RunConfig, grid: list[tuple[str, list[str]]],
           variants: list[Cell] | None = None, source: str | None = None) -> list[Cell]:
    """Every variant (or the base alone) x every combination of the grid's values, in the order
    given; each grid value and each variant is checked on its own first, so a bad one is named
    with its --grid or its variant (``source``: the spec file the variants come from)."""
    for key, values in grid:
        for v in values:
            _with(base, [f"{key}={v}"], f"--grid {key}={','.join(values)}")
    of = f" of {source}" if source else ""
    for var in variants or []:
        where = f"variant {var.name}{of}"
        for ov in var.overrides:
            if _override_key(ov) == "seed":
                raise ConfigError(f"{where}: seeds come from `seeds:` (or --seeds), not from a "
                                  "variant: drop seed=")
            if any(_override_key(ov) == k for k, _ in grid):
                raise ConfigError(f"{where} sets {_override_key(ov)}, which the grid varies: "
                                  "drop it from the variant or from the grid")
        _apply_named(base, var.overrides, where)
    cells = []
    for var in (variants or [None]):
        for combo in itertools.product(*[vals for _, vals in grid]):
            grid_ovs = tuple(f"{k}={v}" for (k, _), v in zip(grid, combo))
            name = cell_name(grid, combo, var.name if var is not None else None)
            overrides = (var.overrides if var is not None else ()) + grid_ovs
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


# --- the spec file ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepFile:
    """A sweep spec file as read, checked for its form (config keys are checked against the
    base config by :func:`make_spec`). ``seeds`` is --seeds text; ``grid`` is canonical keys
    with raw values as :func:`parse_grid` gives them; ``variants`` is None when not given."""

    path: str
    preset: str | None = None
    seeds: str | None = None
    set: tuple[str, ...] = ()
    grid: tuple[tuple[str, tuple[str, ...]], ...] = ()
    variants: tuple[Cell, ...] | None = None
    description: str | None = None


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(key)
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a spec file names each key (and each
    variant) once."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: list[Any] = []
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise _DuplicateKey(key, key_node.start_mark.line + 1)
        seen.append(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _raw_value(v: Any) -> str:
    """A YAML value back as the text --grid/--set would take (parsed again as YAML later)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _overrides(value: Any, what: str, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"bad value for {what} in sweep spec {path}: expected a list of "
                          f"key=value overrides, e.g. [train.epochs=2], got {value!r}")
    out = []
    for item in value:
        if not isinstance(item, str) or "=" not in item or not _override_key(item):
            hint = (" (a value with commas needs quotes inside [...]: "
                    "\"tech.augment=color,translation\")" if isinstance(item, str) else "")
            raise ConfigError(f"bad override {item!r} in {what} of sweep spec {path}: write it "
                              f"as key=value, e.g. tech.ema=0.999{hint}")
        out.append(item.strip())
    return tuple(out)


def read_sweep_file(path: str | Path) -> SweepFile:
    """Read and check a sweep spec file (YAML: preset, seeds, set, grid, variants,
    description); every problem is one ConfigError line that says how to fix it."""
    path = str(path)
    p = Path(path)
    if not p.is_file():
        what = "is not a file" if p.exists() else "not found"
        raise ConfigError(f"sweep spec {path} {what}: give the path of a YAML file with keys "
                          f"{', '.join(FILE_KEYS)} (e.g. configs/sweeps/ablation-cpu.yaml)")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read sweep spec {path}: {getattr(e, 'strerror', None) or e}"
                          ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except _DuplicateKey as e:
        raise ConfigError(f"sweep spec {path}: '{e.key}' is given twice (line {e.line}): give "
                          "each key and each variant name once") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"sweep spec {path} is not valid YAML{where}: fix the file") from None
    except _YAML_VALUE_ERRORS as e:
        raise ConfigError(f"sweep spec {path} holds a value YAML cannot read "
                          f"({type(e).__name__}): fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"sweep spec {path} must be a YAML mapping with keys "
                          f"{', '.join(FILE_KEYS)}")
    unknown = [k for k in data if k not in FILE_KEYS]
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}' in sweep spec {path}: valid keys are "
                          f"{', '.join(FILE_KEYS)}")

    def bad(key: str, expected: str) -> ConfigError:
        return ConfigError(f"bad value for {key} in sweep spec {path}: expected {expected}, got "
                           f"{data[key]!r}")

    preset = data.get("preset")
    if preset is not None:
        if not isinstance(preset, str) or not preset.strip():
            raise bad("preset", "a preset name or the path of a YAML config")
        preset = preset.strip()
        q = Path(preset)
        if (q.suffix in (".yaml", ".yml") or os.sep in preset) and not q.is_absolute():
            preset = os.path.normpath(p.parent / q)  # a config path is relative to the file

    seeds = data.get("seeds")
    if seeds is not None:
        if isinstance(seeds, bool):
            raise bad("seeds", "a range or a list, e.g. 0-4, [0, 1, 2] or 0-2,9")
        if isinstance(seeds, int):
            seeds = str(seeds)
        elif isinstance(seeds, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                             for x in seeds) and seeds:
            seeds = ",".join(map(str, seeds))
        elif not isinstance(seeds, str):
            raise bad("seeds", "a range or a list, e.g. 0-4, [0, 1, 2] or 0-2,9")
        try:
            parse_seeds(seeds)
        except ConfigError as e:
            raise ConfigError(f"{str(e).replace('--seeds', 'seeds', 1)} (in sweep spec {path})"
                              ) from None

    overrides = _overrides(data.get("set"), "set", path)

    grid: list[tuple[str, tuple[str, ...]]] = []
    raw_grid = data.get("grid")
    if raw_grid is not None:
        if not isinstance(raw_grid, dict):
            raise bad("grid", "a mapping of config keys to lists of values, e.g. "
                              "{optim.lr: [1e-4, 2e-4]}")
        for key, vals in raw_grid.items():
            where = f"grid of sweep spec {path}"
            ckey = canonical_key(str(key), str(key), where)
            vals = vals if isinstance(vals, list) else [vals]
            values = tuple(_raw_value(v) for v in vals)
            if not values or any(v == "" for v in values):
                raise ConfigError(f"bad value for grid.{key} in sweep spec {path}: give one or "
                                  "more values, none empty")
            if len(set(values)) != len(values):
                raise ConfigError(f"bad value for grid.{key} in sweep spec {path}: a value is "
                                  "repeated")
            if any(k == ckey for k, _ in grid):
                raise ConfigError(f"grid key {ckey} is given twice in sweep spec {path}: put all "
                                  "its values under one key")
            grid.append((ckey, values))

    variants: list[Cell] | None = None
    raw_var = data.get("variants")
    if raw_var is not None:
        if not isinstance(raw_var, dict) or not raw_var:
            raise bad("variants", "a mapping of variant names to lists of overrides, e.g. "
                                  "{base: [], ema: [tech.ema=0.999]}")
        variants = []
        folded: dict[str, str] = {}
        for name, ovs in raw_var.items():
            if not isinstance(name, str) or not _NAME_RE.match(name) or len(
                    name) > MAX_CELL_NAME:
                raise ConfigError(f"bad variant name {name!r} in sweep spec {path}: use letters, "
                                  "digits, '.', '_' and '-', starting with a letter or digit "
                                  f"(at most {MAX_CELL_NAME}); it names the runs")
            if name.lower() in folded:
                raise ConfigError(f"variants {folded[name.lower()]!r} and {name!r} in sweep spec "
                                  f"{path} differ only in case: their run directories would "
                                  "clash; rename one")
            folded[name.lower()] = name
            variants.append(Cell(name, _overrides(ovs, f"variants.{name}", path)))

    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise bad("description", "free text")
    return SweepFile(path=path, preset=preset, seeds=seeds, set=overrides, grid=tuple(grid),
                     variants=tuple(variants) if variants is not None else None,
                     description=description.strip() if description else None)


# --- the spec -----------------------------------------------------------------------------------


def make_spec(config: str | None, overrides: list[str], grid_items: list[str],
              seeds_text: str | None, data_dir: str | None = None, *,
              file: SweepFile | None = None) -> dict[str, Any]:
    """The sweep's spec from the command line, and from a spec file when ``file`` is given
    (what the command line gives wins: its config and seeds replace the file's, its overrides
    come after the file's ``set``, its grid keys join the file's): every value checked before
    anything is written."""
    src = file.path if file else None
    if file is not None:
        config = config or file.preset
        if seeds_text is None:
            seeds_text = file.seeds
    if not config:
        raise ConfigError(f"sweep spec {src} names no preset: add `preset: NAME` to it, or give "
                          "the preset on the command line" if src else
                          "give a preset (e.g. e1-mlp) or a YAML config, or --spec FILE.yaml")
    seeds_text = DEFAULT_SEEDS if seeds_text is None else seeds_text
    base = load_config(config)
    if file is not None:
        base = _apply_named(base, file.set, f"set of sweep spec {src}", validate=False)
    base = apply_overrides(base, overrides)
    if data_dir:
        base.data.dir = str(Path(data_dir).resolve())
    base.validate()
    grid = [(k, list(v)) for k, v in file.grid] if file is not None else []
    for key, values in parse_grid(grid_items):
        if any(k == key for k, _ in grid):
            raise ConfigError(f"--grid {key} is also in the grid of sweep spec {src}: change "
                              "its values there, or vary another key")
        grid.append((key, values))
    seeds = parse_seeds(seeds_text)
    variants = list(file.variants) if file is not None and file.variants is not None else None
    cells = expand(base, grid, variants, f"sweep spec {src}" if src else None)
    return {"format": SPEC_FORMAT, "config": config, "file": src,
            "description": file.description if file is not None else None,
            "set": [*(file.set if file is not None else ()), *overrides],
            "base": base.to_dict(), "grid": [[k, v] for k, v in grid],
            "variants": [v.to_dict() for v in variants] if variants is not None else None,
            "seeds": seeds, "cells": [c.to_dict() for c in cells], "created": now_iso()}


def _identity(spec: dict[str, Any]) -> dict[str, Any]:
    """What must match when a sweep is started again; "variants" only where there are some,
    so a grid sweep's digest (and default directory) is the one it always had."""
    return {k: spec.get(k) for k in _IDENTITY_KEYS
            if k != "variants" or spec.get(k) is not None}


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(_identity(spec), sort_keys=True)
                          .encode()).hexdigest()[:8]


def default_dir(spec: dict[str, Any], runs_dir: str | None = None) -> Path:
    """RUNS_DIR/sweep-<spec file's stem, else preset>-<hash of the spec>: the same command
    finds the same sweep."""
    stem = Path(spec["file"]).stem if spec.get("file") else spec["base"].get("preset", "custom")
    preset = re.sub(r"[^A-Za-z0-9._-]+", "_", str(stem))[:40]
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
                      ("seeds", "seeds differ"), ("variants", "variants differ"),
                      ("cells", "cells differ")):
        if old.get(key) != new.get(key):
            return what
    return "spec differs"


def write_spec(sweep_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Write sweep.json, or check the one on disk: a sweep started again must ask for the same
    runs. Returns the spec in force (the original ``created`` and description kept)."""
    f = sweep_dir / SPEC_FILE
    if f.is_file():
        old = load_spec(sweep_dir)
        if _identity(old) != _identity(spec):
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
              announce=None, stack: bool = True, plots: bool = True
              ) -> tuple[Any, list[dict[str, Any]]]:
    """Write (or check) the spec, plan the runs (keep completed, resume interrupted, create the
    rest) and train what is left. ``announce(plan)`` is called before training starts;
    ``stack``: seeds of one configuration train as one stacked model where they can;
    ``plots``: each run's curves written as it finishes (for tiny runs they cost as much as the
    training: ~2 s of matplotlib per run)."""
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
                      progress=progress, plots=plots, stack=stack)
    return plan, results
