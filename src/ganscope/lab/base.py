"""What every experiment module of the lab shares: the lab's state, a planned run, and the
small wording helpers their settings lines and pages use.

It sits below the experiment modules and the driver (it imports none of them), so that each
experiment can be written against one ``LabState`` without knowing how the driver fills it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganscope.config import RunConfig, apply_overrides, load_config
from ganscope.domains import Domain, domain_for
from ganscope.training.run import Run

if TYPE_CHECKING:  # annotations only: settings.py builds Settings from the experiment modules,
    # which import this module, so a run-time import here would be a cycle.
    from ganscope.lab.settings import Settings

EXPERIMENTS = ("e1", "e2", "e3", "e4", "e5", "e6")


@dataclass
class PlannedRun:
    """One training run an experiment needs, with its own estimate of how long it takes.

    ``cost`` only orders the runs (the longest start first, so the pool is not left waiting
    on one long run at the end); the experiment that declares the run knows its model and data,
    so it, not the driver, says what a run costs.
    """

    name: str
    cfg: RunConfig
    cost: float


def run_cost(step_cost: float, cfg: RunConfig, full_size: int) -> float:
    """Rough relative cost of a run: a step's cost x epochs x training images."""
    n = cfg.data.limit or full_size
    return step_cost * cfg.train.epochs * n


@dataclass
class LabState:
    """What the experiments read and the driver fills: settings, where things go, the runs
    trained in phase 1 and every experiment's result so far (pages read the results)."""

    s: Settings
    out: Path
    data_dir: str | None
    #: domain name -> the user's folder of a data set ganscope cannot download (None: not given)
    folders: dict[str, str | None]
    workers: int | None
    progress: bool
    selected: list[str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    kept_runs: tuple[int, int] = (0, 0)  # (finished before this start, all) of the E1/E2/E6 runs

    def folder(self, domain: Domain) -> str | None:
        """The user's folder of ``domain``'s data (``--<name>-dir`` or its environment
        variable), or None when neither was given."""
        return self.folders.get(domain.name)

    def completed(self, names: list[str]) -> list[Run]:
        """The named runs that trained to the end in this lab (failed or missing left out)."""
        out = []
        for n in names:
            r = self.runs.get(n)
            if r is not None and n not in self.failed and r.status() == "completed":
                out.append(r)
        return out

    def runs_named(self, names: list[str]) -> list[Run]:
        return [self.runs[n] for n in names if n in self.runs]


def make_config(preset: str, over: list[str], data_dir: str | None) -> RunConfig:
    """A preset with the lab's overrides, its data folder made absolute (runs start elsewhere)."""
    cfg = apply_overrides(load_config(preset), over)
    if data_dir:
        cfg.data.dir = str(Path(data_dir).resolve())
    return cfg.validate()


def length_overrides(epochs: int | None, limit: int | None) -> list[str]:
    """The ``--set`` lines that shorten a preset's run (None / 0: the preset's own)."""
    over = [] if epochs is None else [f"train.epochs={epochs}"]
    return over + ([f"data.limit={limit}"] if limit else [])


def preset_domain(preset: str) -> Domain:
    """The domain a preset trains on: its title goes into the pages' prose, its folder option
    decides whether an experiment can run."""
    return domain_for(load_config(preset).data.name)


def preset_epochs(preset: str) -> int:
    return load_config(preset).train.epochs


def plural(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def seed_list(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds))
