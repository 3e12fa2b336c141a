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
- ``_isolate_env`` (autouse): every test gets its own cache and runs folders, no
  ``$GANSCOPE_DATA`` and a Debian data folder that does not exist, so no test ever depends on
  (or writes to) what this machine happens to have; under pytest-xdist, one torch thread.
"""

from __future__ import annotations

import os
from pathlib import Path

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
# files that took 30 s or more of test time in that run go first, longest first; the rest keep
# their order. A stable sort: only the order of files changes, never that within a file.
LONG_FILES = ("test_training.py", "test_metrics_realdata.py", "test_run_lock.py",
              "test_sweep.py", "test_distributed.py", "test_gpu_check.py",
              "test_crash_resume.py", "test_fuzz_inputs.py", "test_package.py",
              "test_folder_domain.py", "test_serve_lab_browser.py", "test_stacked.py")


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
