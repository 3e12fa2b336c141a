"""The run directory: the contract between training and every tool that reads its results.

```
runs/<name>/
  config.yaml            the resolved RunConfig (re-create the run from it)
  meta.json              status, seed, versions, git commit, device, times, progress, data provenance
  events.jsonl           one line per generator step: loss_d, loss_g, d_x, d_g_z
  fixed_z.npy            the latent vectors behind every samples/ grid
  checkpoints/last.pt    full training state (resume); G-epoch-NNNN.pt: generator per epoch
  samples/epoch-NNNN.png sample grid from fixed_z after each epoch
  figures/               loss and D-output curves (ganscope plot)
```
Every file is written atomically (temp file + rename), so a crash never leaves half a file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml

import ganscope
from ganscope.config import RunConfig, from_dict, save_yaml
from ganscope.errors import ConfigError, RunError

CHECKPOINT_FORMAT = "ganscope-checkpoint-v1"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# --- atomic writes ----------------------------------------------------------------------------


def _file_mode() -> int:
    """The mode a plain open() would give (0o666 minus the umask); mkstemp's is 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_npy(path: str | os.PathLike, array: Any) -> None:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    atomic_write_bytes(path, buf.getvalue())


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (checkpoints, weights, latent files)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; corrupt files raise RunError, not a traceback."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint {path} not found: the run has not finished an epoch yet")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise RunError(
            f"corrupt checkpoint {path} ({msg}): delete it and resume from an earlier one, "
            "or retrain the run"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"corrupt checkpoint {path}: not a ganscope checkpoint; retrain the run")
    return obj


# --- environment facts ------------------------------------------------------------------------


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> dict[str, Any] | None:
    """The commit of the ganscope source tree, if it is a git checkout (None for a wheel)."""
    src = Path(ganscope.__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    return {
        "ganscope": ganscope.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "git": git_commit(),
    }


# --- locating runs ----------------------------------------------------------------------------


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """``--runs-dir``, else ``$GANSCOPE_RUNS``, else ``./runs``."""
    return Path(runs_dir or os.environ.get("GANSCOPE_RUNS") or "runs")


def resolve_run(name_or_path: str, runs_dir: str | os.PathLike | None = None) -> Run:
    """A run by its name (under the runs dir) or by its path."""
    root = runs_root(runs_dir)
    p = Path(name_or_path)
    for cand in (p, root / name_or_path):
        if (cand / "config.yaml").is_file():
            return Run(cand)
    if p.is_dir() or (root / name_or_path).is_dir():
        d = p if p.is_dir() else root / name_or_path
        raise RunError(f"{d} is not a ganscope run (no config.yaml): give a run's name or path")
    raise RunError(
        f"no run named '{name_or_path}' in {root}: see `ganscope runs` for the list, "
        "or give the run's path (or --runs-dir)"
    )


def iter_runs(runs_dir: str | os.PathLike | None = None) -> Iterator[Run]:
    root = runs_root(runs_dir)
    if not root.is_dir():
        return
    for d in sorted(root.iterdir()):
        if (d / "config.yaml").is_file():
            yield Run(d)


def auto_name(preset: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{preset}-{stamp}"


# --- the run ----------------------------------------------------------------------------------


class Run:
    """A handle on one run directory; reads lazily, writes atomically."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # paths
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    def generator_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"G-epoch-{epoch:04d}.pt"

    def sample_grid(self, epoch: int) -> Path:
        return self.samples / f"epoch-{epoch:04d}.png"

    # creation
    @classmethod
    def create(cls, cfg: RunConfig, runs_dir: str | os.PathLike | None = None,
               name: str | None = None) -> Run:
        root = runs_root(runs_dir)
        name = name or auto_name(cfg.preset)
        if not _NAME_RE.match(name):
            raise ConfigError(
                f"bad run name {name!r}: use letters, digits, '.', '_' and '-' (at most 100)"
            )
        path = root / name
        if path.exists():
            raise RunError(
                f"run '{name}' already exists in {root}: pick another --name, "
                f"or continue it with `ganscope train --resume {name}`"
            )
        try:
            path.mkdir(parents=True)
        except OSError as e:
            raise RunError(f"cannot create run directory {path}: {e.strerror}") from None
        run = cls(path)
        for sub in (run.checkpoints, run.samples, run.figures):
            sub.mkdir()
        atomic_write_text(path / "config.yaml", save_yaml(cfg))
        return run

    # config and meta
    def config(self) -> RunConfig:
        f = self.path / "config.yaml"
        try:
            data = yaml.safe_load(f.read_text())
        except (OSError, yaml.YAMLError):
            raise RunError(f"cannot read {f}: the run directory is damaged") from None
        try:
            return from_dict(data or {})
        except ConfigError as e:
            raise RunError(f"{f} does not hold a valid config ({e})") from None

    def meta(self) -> dict[str, Any]:
        f = self.path / "meta.json"
        if not f.is_file():
            return {}
        try:
            return json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            raise RunError(f"cannot read {f}: the run directory is damaged") from None

    def update_meta(self, **fields: Any) -> dict[str, Any]:
        meta = self.meta()
        meta.update(fields)
        atomic_write_text(self.path / "meta.json", json.dumps(meta, indent=2) + "\n")
        return meta

    def status(self) -> str:
        """``running`` is only believed while the recorded process is alive on this host."""
        meta = self.meta()
        st = meta.get("status", "created")
        if st == "running" and meta.get("host") == platform.node():
            pid = meta.get("pid")
            if isinstance(pid, int) and not _pid_alive(pid):
                return "died"
        return st

    # events
    def read_events(self) -> list[dict[str, Any]]:
        if not self.events_path.is_file():
            return []
        out = []
        with open(self.events_path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a torn last line from a killed process
        return out

    def append_events(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with open(self.events_path, "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())

    def truncate_events(self, max_step: int) -> None:
        """Drop events after the checkpoint's step (logged after it, then lost in a crash)."""
        rows = [r for r in self.read_events() if r.get("step", 0) <= max_step]
        atomic_write_text(self.events_path, "".join(json.dumps(r) + "\n" for r in rows))


    # metric results (one JSON object per evaluated checkpoint; see ganscope.metrics.evaluate)
    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        out = []
        for i, line in enumerate(self.metrics_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise RunError(
                    f"{self.metrics_path} line {i} is not JSON: delete the line (or the file) "
                    "and evaluate again with `ganscope eval`"
                ) from None
        return out

    def append_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite the whole file atomically: a reader never sees half a record."""
        text = self.metrics_path.read_text() if self.metrics_path.is_file() else ""
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write_text(self.metrics_path,
                          text + "".join(json.dumps(r) + "\n" for r in rows))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def python_info() -> str:
    return sys.version.split()[0]
