"""Facts about where and when something ran: the time, the ganscope source commit, versions."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import ganscope


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask (``taskset``, a Slurm or
    container CPU set), not the machine's count. Pools and torch thread counts are sized from
    it: sized from ``os.cpu_count()``, a job pinned to one core runs as many threads there as
    the machine has cores, and OpenMP threads that share a core wait on each other."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


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


def python_info() -> str:
    return sys.version.split()[0]


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products fast enough to pay for autocast's
    casts: a CUDA GPU that supports bf16, or a CPU with AMX tiles (``amx_bf16``).

    AVX512-BF16 alone does not count: on a 2-core Xeon with it (and no AMX) e2-dcgan-fixed
    trained 0.67x as fast in bf16 as in fp32 (benchmarks/precision_fid.py, 3 seeds)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return "amx_bf16" in cpu_flags()
    return False
