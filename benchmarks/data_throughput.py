"""Image-folder data throughput: the in-memory path vs the memory-mapped cache (data.memory).

A benchmark, not a test: it asserts nothing and exits 0. It builds a synthetic image set in a
temporary folder (``--dir`` to choose one; removed afterwards unless ``--keep``):

* an array input: ``--n`` random uint8 RGB images of ``--size`` px, (N, H, W, C) in one ``.npy``
  file (written in chunks, never whole in memory). The folder domain reads ``.npy`` images as
  they are; at 64 px, N = 100 000 decodes to 1.23 GB (uint8), the in-memory path's float32
  copy for training is 4.9 GB more.
* a small PNG folder (``--png`` files of 80 px, resized to ``--size``): the decoding rate, for
  the ram and the mmap build, which the array input (no decoding) does not show.

Every measurement runs in its own process (``--child``), so peak RSS (``VmHWM``) does not mix:

1. **build** - ``load_folder(memory="mmap")`` on the array: the one-off streaming copy into the
   cache (``.npy`` + sidecar, fsynced), i.e. "decoding once".
2. **ram** - ``load_folder(memory="ram")``, ``Dataset.training_tensor`` (the whole set to
   float32 [-1, 1]) - together ``setup_s`` - then ``Dataset.batch`` over ``--batches`` batches
   of 64 and of 256 random rows (a ``randperm`` sliced, as the training loop draws them).
3. **mmap cold** - the cache's pages dropped first (``posix_fadvise(DONTNEED)`` on the file,
   residency checked with ``mincore``), then the same batches from the map: each gathers its
   rows from disk and converts just them. One process per batch size, each started cold.
4. **mmap warm** - the file read once first (page cache full), then the same batches.

The measuring processes run ``--threads`` torch threads (default 1: on a shared 2-core box
another busy process stalls the OpenMP barriers of 2 threads, and the numbers become noise; the
data path's own cost is what is compared). Images/s are the batches' rows over their wall time (``time.perf_counter``), the best of
``REPEATS`` passes except cold runs (timed once: a second pass would be warm). RSS: ``VmHWM``
(peak) and, at the end, ``RssAnon`` (private memory) and ``RssFile`` (mapped file pages: page
cache the kernel can drop, not memory the process holds on to).

Run: ``.venv/bin/python benchmarks/data_throughput.py [--n 100000] [--size 64] [--batches 200]
[--png 2000] [--threads 1] [--dir DIR] [--keep] [--out PATH]``. The default run takes about 1-2 minutes on 2
cores (mostly the in-memory path's set-up and the file writes).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "data_throughput.json"
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from train_speed import OtherLoad, atomic_write_json, cpu_model  # noqa: E402

BATCH_SIZES = (64, 256)
REPEATS = 3  # timed passes per batch size (best reported), except the cold runs
SEED = 0


# ----------------------------------------------------------------------------------------------
# Memory and page-cache probes


def proc_status() -> dict[str, float]:
    """VmHWM, VmRSS, RssAnon, RssFile of this process in MB (Linux), else peak RSS only."""
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = round(int(v.split()[0]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        import resource

        out["VmHWM"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def resident_fraction(path: Path) -> float | None:
    """The part of ``path``'s pages in the page cache (mincore), or None when unknown."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        size = path.stat().st_size
        page = mmap.PAGESIZE
        with open(path, "rb") as f:
            m = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
        try:
            buf = (ctypes.c_char * size).from_buffer(m)
            n = (size + page - 1) // page
            vec = (ctypes.c_ubyte * n)()
            rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(buf)), ctypes.c_size_t(size), vec)
            frac = None if rc != 0 else sum(v & 1 for v in vec) / n
            del buf
        finally:
            m.close()
        return frac
    except Exception:  # noqa: BLE001  (a probe: no answer is an answer)
        return None


def drop_cache(path: Path) -> bool:
    """Ask the kernel to drop ``path``'s (clean) pages from the page cache."""
    if not hasattr(os, "posix_fadvise"):
        return False
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return True


def warm_cache(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


# ----------------------------------------------------------------------------------------------
# The measuring child


def child(mode: str, src: str, size: int, batches: int, batch_sizes: tuple[int, ...],
          threads: int) -> dict:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)

    from ganscope.data import Dataset
    from ganscope.data.folder import load_folder

    memory = "ram" if mode.endswith("ram") else "mmap"
    t0 = time.perf_counter()
    f = load_folder(src, size, 3, memory=memory, progress=False)
    t_load = time.perf_counter() - t0
    out = {"mode": mode, "n": len(f), "load_s": round(t_load, 3),
           "from_cache": f.source["from_cache"], "mapped": f.mapped}
    if mode.startswith("build"):
        out["images_per_s"] = round(len(f) / t_load, 1)
        out["rss_mb"] = proc_status()
        return out
    ds = Dataset(f.images, f.labels, f.source, mapped=f.mapped)
    t1 = time.perf_counter()
    x = ds.training_tensor("cpu")
    out["training_tensor_s"] = round(time.perf_counter() - t1, 3)
    out["setup_s"] = round(time.perf_counter() - t0, 3)
    # warm-up on a small in-memory stand-in of the same kind: the ops' one-off costs (kernel
    # selection, allocator) are not charged to the first timed batches, and no file page of
    # the measured set is touched before the cold runs
    stand = torch.zeros((512, *x.shape[1:]), dtype=x.dtype)
    sd = Dataset(stand, None, {}, mapped=f.mapped)
    for b in batch_sizes:
        for _ in range(5):
            sd.batch(stand, torch.randperm(512)[:b], "cpu")
    g = torch.Generator().manual_seed(SEED)
    n = x.shape[0]
    # a cold run is timed once (a second pass would find its pages cached); the others take
    # the best of REPEATS passes (fresh random batches each): other processes on a 2-core box
    # stall the OpenMP threads of small batches now and then
    repeats = 1 if "cold" in mode else REPEATS
    for b in batch_sizes:
        k = min(batches, n // b)
        passes = []
        for _ in range(repeats):
            perm = torch.randperm(n, generator=g)
            first = None
            t = time.perf_counter()
            for i in range(k):
                real = ds.batch(x, perm[i * b:(i + 1) * b], "cpu")
                if first is None:
                    first = time.perf_counter() - t
            dt = time.perf_counter() - t
            assert real.dtype == torch.float32 and real.shape[0] == b
            passes.append({"seconds": round(dt, 4), "images_per_s": round(k * b / dt, 1),
                           "first_batch_ms": round(1000 * first, 3)})
        best = max(passes, key=lambda r: r["images_per_s"])
        out[f"b{b}"] = {"batches": k, **best, "passes": passes}
    out["rss_mb"] = proc_status()
    return out


def run_child(env: dict, mode: str, src: Path, a, batch_sizes=BATCH_SIZES) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--src", str(src),
           "--size", str(a.size), "--batches", str(a.batches),
           "--batch-sizes", ",".join(str(b) for b in batch_sizes),
           "--threads", str(a.threads)]
    with OtherLoad() as load:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["other_load"] = round(load.fraction, 3)  # other processes' share of the CPUs
    return out


# ----------------------------------------------------------------------------------------------
# The synthetic data


def write_array(path: Path, n: int, size: int) -> float:
    """n random uint8 RGB images (N, H, W, 3) into ``path``, 5000 at a time; seconds taken."""
    t = time.perf_counter()
    rng = np.random.default_rng(SEED)
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    for i in range(0, n, 5000):
        a[i:i + 5000] = rng.integers(0, 256, (min(5000, n - i), size, size, 3), dtype=np.uint8)
    a.flush()
    del a
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    return time.perf_counter() - t


def write_pngs(d: Path, n: int, side: int = 80) -> float:
    from PIL import Image

    t = time.perf_counter()
    rng = np.random.default_rng(SEED + 1)
    base = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    for i in range(n):
        img = np.roll(base, i, axis=(0, 1)) // 2 + (i % 128)  # distinct, partly compressible
        (d / f"c{i % 4}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.astype(np.uint8)).save(d / f"c{i % 4}" / f"{i:06d}.png")
    return time.perf_counter() - t


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="images in the array input")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=200, help="timed batches per batch size")
    ap.add_argument("--png", type=int, default=2000, help="PNG files for the decode rate (0: none)")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads in the measuring processes (0: torch's default)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--src", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch-sizes", default="64,256", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        sizes = tuple(int(x) for x in a.batch_sizes.split(","))
        print(json.dumps(child(a.child, a.src, a.size, a.batches, sizes, a.threads)))
        return 0

    import torch

    work = a.dir or Path(tempfile.mkdtemp(prefix="ganscope-data-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GANSCOPE_CACHE": str(work / "cache")}
    shutil.rmtree(work / "cache", ignore_errors=True)  # every build is a real one
    t_all = time.perf_counter()
    try:
        arr = work / "images.npy"
        decoded_gb = a.n * 3 * a.size * a.size / 1e9
        print(f"writing {a.n} random {a.size}px RGB images ({decoded_gb:.2f} GB) to {arr} ...",
              flush=True)
        gen_s = write_array(arr, a.n, a.size)
        res: dict = {}
        res["build"] = run_child(env, "build", arr, a)
        cache = next((work / "cache" / "folder").glob("*.npy"))
        if a.png:
            pngs = work / "pngs"
            png_gen = write_pngs(pngs, a.png)
            res["png_build_ram"] = run_child(env, "build-png-ram", pngs, a)
            res["png_build_mmap"] = run_child(env, "build-png", pngs, a)
            res["png_build_ram"]["files_written_s"] = round(png_gen, 2)
        res["ram"] = run_child(env, "ram", arr, a)
        for b in BATCH_SIZES:
            drop_cache(cache)
            before = resident_fraction(cache)
            r = run_child(env, f"mmap-cold-{b}", arr, a, (b,))
            r["resident_before"] = before
            res[f"mmap_cold_{b}"] = r
        warm_cache(cache)
        before = resident_fraction(cache)
        res["mmap_warm"] = run_child(env, "mmap-warm", arr, a)
        res["mmap_warm"]["resident_before"] = before
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    rows = []
    for name, key, r in [("in-memory (ram)", "ram", res["ram"]),
                         ("mmap, cold cache", "cold", None),
                         ("mmap, warm cache", "mmap_warm", res["mmap_warm"])]:
        if key == "cold":
            per = {b: res[f"mmap_cold_{b}"][f"b{b}"] for b in BATCH_SIZES}
            setup = res[f"mmap_cold_{BATCH_SIZES[0]}"]["setup_s"]
            rss = max(res[f"mmap_cold_{b}"]["rss_mb"].get("VmHWM", 0) for b in BATCH_SIZES)
            anon = max(res[f"mmap_cold_{b}"]["rss_mb"].get("RssAnon", 0) for b in BATCH_SIZES)
        else:
            per = {b: r[f"b{b}"] for b in BATCH_SIZES}
            setup, rss, anon = r["setup_s"], r["rss_mb"].get("VmHWM"), r["rss_mb"].get("RssAnon")
        rows.append({"path": name, "setup_s": setup,
                     **{f"img_s_b{b}": per[b]["images_per_s"] for b in BATCH_SIZES},
                     "peak_rss_mb": rss, "rss_anon_end_mb": anon})
    result = {
        "benchmark": "data_throughput",
        "what": "Dataset.batch images/s over random batches: in-memory float32 set vs a "
                "memory-mapped uint8 cache (gather + convert per batch); peak RSS per process",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "threads": a.threads or torch.get_num_threads(), "torch": torch.__version__,
                    "mem_available_gb": round((_avail() or 0) / 1e9, 1)},
        "config": {"n": a.n, "size": a.size, "channels": 3, "batches": a.batches,
                   "batch_sizes": list(BATCH_SIZES), "png": a.png,
                   "decoded_bytes": a.n * 3 * a.size * a.size,
                   "input_written_s": round(gen_s, 2)},
        "table": rows,
        "runs": res,
        "total_s": round(time.perf_counter() - t_all, 1),
    }
    atomic_write_json(a.out, result)

    b = res["build"]
    print(f"\n{a.n} images {a.size}px RGB = {decoded_gb:.2f} GB uint8 ({4 * decoded_gb:.2f} GB as "
          f"float32); {a.batches} batches per size; {a.threads or torch.get_num_threads()} "
          f"torch thread(s) on "
          f"{cpu_model()}")
    print(f"cache build (array -> mmap .npy, once): {b['load_s']:.1f} s "
          f"({b['images_per_s']:.0f} img/s), peak RSS {b['rss_mb'].get('VmHWM')} MB")
    if a.png:
        pr, pm = res["png_build_ram"], res["png_build_mmap"]
        print(f"PNG decode ({a.png} files 80px -> {a.size}px): ram {pr['images_per_s']:.0f} "
              f"img/s, mmap build {pm['images_per_s']:.0f} img/s")
    hdr = (f"{'path':<18}{'setup s':>9}" + "".join(f"{'img/s b' + str(b):>14}"
                                                   for b in BATCH_SIZES)
           + f"{'peak RSS MB':>13}{'anon MB':>10}")
    print(hdr)
    for r in rows:
        print(f"{r['path']:<18}{r['setup_s']:>9.2f}"
              + "".join(f"{r['img_s_b' + str(b)]:>14.0f}" for b in BATCH_SIZES)
              + f"{r['peak_rss_mb']:>13.0f}{r['rss_anon_end_mb']:>10.0f}")
    cold = [res[f"mmap_cold_{b}"]["resident_before"] for b in BATCH_SIZES]
    print(f"cold: page-cache residency before each cold run {cold} (mincore); warm: "
          f"{res['mmap_warm']['resident_before']}")
    print(f"wrote {a.out} ({result['total_s']:.0f} s)")
    return 0


def _avail() -> int | None:
    from ganscope.data.folder import available_memory

    return available_memory()


if __name__ == "__main__":
    sys.exit(main())
