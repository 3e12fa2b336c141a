"""The lab's settings in one object, built from what each experiment module declares (its
``FULL`` and ``QUICK`` values), and ``shortened``: how a lab differs from the full one.

One flat object, so that tests (and scripts) can give a whole lab's settings at once and
``lab.json`` records them together; the values themselves live with their experiments.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ganscope.lab import e1, e2, e3, e4, e5, e6

MODULES = {"e1": e1, "e2": e2, "e3": e3, "e4": e4, "e5": e5, "e6": e6}


def _declared(which: str) -> dict[str, Any]:
    """Every experiment's FULL or QUICK values, copied (Settings own their lists)."""
    out: dict[str, Any] = {}
    for mod in MODULES.values():
        out.update(copy.deepcopy(getattr(mod, which)))
    return out


@dataclass
class Settings:
    """What each experiment runs. ``full()`` is the seeds' set-up; ``quick_settings()`` the
    shortened one; tests pass their own."""

    quick: bool
    seeds: list[int]  # E1's and E2's (one run per seed)
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
    e6_epochs: int | None = e6.FULL["e6_epochs"]
    e6_limit: int | None = e6.FULL["e6_limit"]
    e6_find_n: int = e6.FULL["e6_find_n"]
    e6_measure_n: int = e6.FULL["e6_measure_n"]
    e6_steps: str = e6.FULL["e6_steps"]

    @classmethod
    def full(cls) -> Settings:
        return cls(quick=False, **_declared("FULL"))

    @classmethod
    def quick_settings(cls) -> Settings:
        return cls(quick=True, **_declared("QUICK"))


def shortened(exp: str, s: Settings) -> list[str]:
    """The exact differences from the full lab (the seeds' set-up), one line each."""
    return MODULES[exp].shortened(s)
