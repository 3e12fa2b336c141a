"""Latent directions saved in a run directory: ``RUN/directions/<name>.json``.

One JSON file per direction, so the finder (``ganscope directions find``), the walker, the report
and the browser view all read the same thing. A direction is a unit vector in the generator's
z-space plus how it was found; ``details`` holds method-specific numbers (boundary accuracy,
eigenvalue, explained variance...).

```
{"format": "ganscope-direction-v1", "name": "male", "method": "interfacegan",
 "attribute": "Male", "z_dim": 100, "vector": [...], "created": "...", "details": {...}}
```
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganscope.environment import now_iso
from ganscope.errors import RunError, UserError
from ganscope.io import atomic_write_text
from ganscope.training.run import Run

FORMAT = "ganscope-direction-v1"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass
class Direction:
    name: str
    method: str
    vector: np.ndarray  # (z_dim,) float64, unit norm
    attribute: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    @property
    def z_dim(self) -> int:
        return int(self.vector.shape[0])

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, "method": self.method,
                "attribute": self.attribute, "z_dim": self.z_dim,
                "vector": [float(v) for v in self.vector], "created": self.created or now_iso(),
                "details": self.details}


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise UserError(f"bad direction name '{name}': use lower-case letters, digits, '-' and "
                        "'_' (at most 64 characters), e.g. male or smiling-sefa")
    return name


def save_direction(run: Run, d: Direction) -> Path:
    """Write ``RUN/directions/<name>.json`` atomically; the vector is stored unit-norm."""
    check_name(d.name)
    v = np.asarray(d.vector, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm == 0.0:
        raise UserError(f"direction '{d.name}' has a zero or non-finite vector; nothing saved")
    d.vector = v / norm
    path = run.directions_dir / f"{d.name}.json"
    atomic_write_text(path, json.dumps(d.to_json(), indent=1) + "\n")
    return path


def _from_json(obj: Any, path: Path) -> Direction:
    try:
        if obj.get("format") != FORMAT:
            raise ValueError(f"format is {obj.get('format')!r}, not {FORMAT}")
        v = np.asarray(obj["vector"], dtype=np.float64)
        if v.ndim != 1 or v.size != int(obj["z_dim"]) or not np.all(np.isfinite(v)):
            raise ValueError("vector does not match z_dim or is not finite")
        return Direction(name=check_name(str(obj["name"])), method=str(obj["method"]),
                         vector=v / np.linalg.norm(v), attribute=obj.get("attribute"),
                         details=dict(obj.get("details") or {}), created=str(obj.get("created", "")))
    except (AttributeError, KeyError, TypeError, ValueError, UserError) as e:
        raise RunError(f"{path} is not a ganscope direction ({e}); delete it, or find it again "
                       "with `ganscope directions find`") from None


def load_direction(run: Run, name: str) -> Direction:
    path = run.directions_dir / f"{check_name(name)}.json"
    if not path.is_file():
        have = ", ".join(d.name for d in list_directions(run)) or "none"
        raise RunError(f"run '{run.name}' has no direction '{name}' (has: {have}); find one "
                       f"with `ganscope directions find {run.name} ...`")
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{path} is not readable JSON ({e.__class__.__name__}); delete it, or "
                       "find it again with `ganscope directions find`") from None
    return _from_json(obj, path)


def list_directions(run: Run) -> list[Direction]:
    """Every readable direction of the run, by name; unreadable files are skipped here
    (``load_direction`` reports them by name)."""
    out = []
    d = run.directions_dir
    if not d.is_dir():
        return out
    for p in sorted(d.glob("*.json")):
        try:
            out.append(_from_json(json.loads(p.read_text()), p))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RunError):
            continue
    return out
