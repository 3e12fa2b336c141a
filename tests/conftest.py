"""Fixtures shared by every test module.

- ``tiny_fmnist_dir``: a folder with the four Fashion-MNIST files in the real IDX ``.gz`` format
  (256 train / 64 test images, deterministic content, labels cycling 0..9). Session-scoped: copy
  it before changing anything in it.
- ``tiny_fmnist_arrays``: the exact arrays written there, to compare loads against.
- ``make_fmnist``: ``make_fmnist(folder, n_train=..., n_test=..., seed=...)`` writes another such
  folder (returns it) for tests that need several distinguishable data sets.
- ``real_fmnist``: the path of the real, installed Fashion-MNIST; skips when it is missing. Mark
  tests that use it with ``@pytest.mark.realdata``.
- ``browser``: Debian's headless Chromium driven by Playwright, one per test module (the browser
  tests skip at import when Chromium or Playwright is missing).
- ``ForkedProcess``: a function (the CLI's ``main``, say) run in a forked copy of this process,
  driven like ``subprocess.Popen``; for tests about another process (signals, kills, locks,
  resource limits) that do not need a fresh interpreter.
- ``_isolate_env`` (autouse): every test gets its own cache and runs folders, no
  ``$GANSCOPE_DATA`` and a Debian data folder that does not exist, so no test ever depends on
  (or writes to) what this machine happens to have; under pytest-xdist, one torch thread.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import selectors
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ganscope.data.fashion_mnist as fm

# pytest-xdist: N worker processes, each with torch's default of one thread per core, put N x N
# OpenMP threads on N cores, and OpenMP threads that share a core spin while they wait for each
# other (measured on a 2-core AMD EPYC: a DCGAN step took 0.93 s in each of two 1-thread
# processes, 1.7 s in each of two 2-thread ones). So each worker, every test (whatever an earlier
# test set) and every process a test starts get one thread.
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if XDIST_WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# pytest-xdist's --dist loadfile (with --no-loadscope-reorder, as `make test` runs it; by default
# it orders files by their number of tests) hands out whole files in order, so a long file
# collected late runs alone at the end while the other worker has nothing left (measured on
# 2026-12-01, 2-core AMD EPYC: test_crash_resume.py, 44 s, was the suite's last minute). The
# files that took 20 s or more of test time go first, longest first (as measured on 2026-12-02,
# 2 workers on a 2-core AMD EPYC: 71 s for test_training.py down to 20 s; the two workers'
# test time then differed by under 20 s); the rest keep their order. A stable sort: only the
# order of files changes, never that within a file.
LONG_FILES = ("test_training.py", "test_sweep.py", "test_gpu_check.py",
              "test_metrics_realdata.py", "test_stacked.py", "test_fuzz_inputs.py",
              "test_package.py", "test_distributed.py", "test_serve_lab_browser.py",
              "test_serve_load.py", "test_lab.py", "test_serve.py", "test_export.py",
              "test_folder_domain.py", "test_serve_lab.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))


REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")
TINY_SIZES = {"train": 256, "test": 64}


def synthetic_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic uint8 images (n, 28, 28), with 0 and 255 present, and labels 0..9 cycling."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0] = 0
    if n > 1:
        images[1] = 255
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_fmnist_dir(folder: Path, n_train: int = 256, n_test: int = 64, seed: int = 0
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write the four IDX .gz files into ``folder``; return {split: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        images, labels = synthetic_split(n, s)
        fm.write_idx_gz(folder / fm.FILES[(split, "images")], images)
        fm.write_idx_gz(folder / fm.FILES[(split, "labels")], labels)
        out[split] = (images, labels)
    return out


@pytest.fixture(scope="session")
def tiny_fmnist_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {split: synthetic_split(n, s)
            for (split, n), s in zip(TINY_SIZES.items(), (0, 1))}


@pytest.fixture(scope="session")
def tiny_fmnist_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiny-fmnist")
    write_fmnist_dir(d, TINY_SIZES["train"], TINY_SIZES["test"], seed=0)
    return d


@pytest.fixture
def make_fmnist():
    def make(folder: Path, n_train: int = 256, n_test: int = 64, seed: int = 0) -> Path:
        write_fmnist_dir(Path(folder), n_train, n_test, seed)
        return Path(folder)

    return make


@pytest.fixture(scope="session")
def real_fmnist() -> Path:
    if not all((REAL_FMNIST / name).is_file() for name in fm.FILES.values()):
        pytest.skip(f"real Fashion-MNIST not installed in {REAL_FMNIST}")
    return REAL_FMNIST


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch, tmp_path):
    if XDIST_WORKERS > 1:
        torch.set_num_threads(1)
    monkeypatch.setenv("GANSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANSCOPE_DATA", raising=False)
    monkeypatch.setenv("GANSCOPE_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("GANSCOPE_FASHION_MNIST_URL", raising=False)
    monkeypatch.delenv("GANSCOPE_CONFIGS", raising=False)
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian-fashion-mnist")


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def _fresh_warnings() -> None:
    """CPython's default warning filters (this process's -W / $PYTHONWARNINGS options are not
    replayed), and warnings printed to sys.stderr: pytest records them in a test, where nobody
    would see them."""
    warnings.resetwarnings()
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                     ResourceWarning):
        warnings.filterwarnings("ignore", category=category, append=True)

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show


class ForkedProcess:
    """``target(*args)`` in a forked child of this process, with the parts of
    ``subprocess.Popen``'s interface the tests use (``pid``, ``stdout``/``stderr`` pipes as text,
    ``poll``, ``wait``, ``communicate``, ``send_signal``, ``kill``, ``returncode``).

    Why not ``python -m ganscope``: every fresh interpreter imports torch and, at its first
    optimiser, torch._dynamo: ~7.5 s of CPU on a 2-core AMD EPYC, most of what a test of a tiny
    run's crash, interrupt or lock costs. The child is still a process of its own: its own pid,
    signals, file descriptors, flocks and resource limits, and its exit status is the target's
    return value (an uncaught KeyboardInterrupt ends it by SIGINT, as Python does). It starts
    from this process's state (imports, torch's thread count, the test's environment); its
    warnings print to its stderr as a fresh process's would, not to pytest's recorder.
    """

    def __init__(self, target: Callable[..., Any], *args: Any, env: dict[str, str] | None = None,
                 stdout: int | None = subprocess.PIPE, stderr: int | None = subprocess.PIPE,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        pipes = {fd: os.pipe() if how == subprocess.PIPE else None
                 for fd, how in ((1, stdout), (2, stderr))}
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            self._child(target, args, env, pipes, preexec_fn)
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(self.pid)
        self.stdout = self.stderr = None
        for fd, pair in pipes.items():
            if pair is not None:
                os.close(pair[1])
                setattr(self, "stdout" if fd == 1 else "stderr",
                        open(pair[0], encoding="utf-8", errors="replace"))  # noqa: SIM115

    @staticmethod
    def _child(target, args, env, pipes, preexec_fn) -> None:
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            for fd, pair in pipes.items():
                os.dup2(pair[1] if pair is not None else devnull, fd)
            sys.stdin = open(0, closefd=False)  # noqa: SIM115 - for the child's lifetime
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
            _fresh_warnings()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            if preexec_fn is not None:
                preexec_fn()
            rc = target(*args)
            code = rc if isinstance(rc, int) else 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except KeyboardInterrupt:
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # noqa: BLE001 - printed, as an uncaught exception would be
            traceback.print_exc()
        finally:
            for f in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):  # a closed pipe: nothing left to say
                    f.flush()
            os._exit(code & 0xFF)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                os.close(self._pidfd)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit status, waiting on the child's pidfd (an event, not a poll loop)."""
        if self.returncode is None and not select.select([self._pidfd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(f"forked pid {self.pid}", timeout)
        while self.poll() is None:  # readable pidfd: exited; reaped at once
            pass
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Everything left on the pipes until the child closes them, then its exit."""
        sel = selectors.DefaultSelector()
        chunks: dict[int, list[bytes]] = {}
        for f in (self.stdout, self.stderr):
            if f is not None:
                sel.register(f.fileno(), selectors.EVENT_READ)
                chunks[f.fileno()] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        while sel.get_map():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = sel.select(left)
            if not ready:
                raise subprocess.TimeoutExpired(f"forked pid {self.pid}", timeout)
            for key, _ in ready:
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
        sel.close()
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        out = []
        for f in (self.stdout, self.stderr):
            if f is None:
                out.append(None)
                continue
            text = f.read() + b"".join(chunks[f.fileno()]).decode("utf-8", "replace")
            f.close()
            out.append(text)
        return out[0], out[1]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
