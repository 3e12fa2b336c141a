"""``data.memory``: an image folder (or array) decoded once into a memory-mapped uint8 cache
file and trained from it by gathering each batch: the same images, labels and weights as the
in-memory path; auto's choice; a killed or damaged build is never taken for a valid cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganscope.data.folder as fd
from ganscope.config import RunConfig, apply_overrides
from ganscope.domains import load_dataset
from ganscope.errors import ConfigError
from ganscope.training.loop import train
from ganscope.training.run import Run, load_checkpoint


def png(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def class_folder(root: Path, n: int = 6) -> Path:
    """Two classes of noisy PNGs of two sizes (one RGB), so the crop and resize do work."""
    rng = np.random.default_rng(0)
    for i in range(n):
        png(root / "b_light" / f"{i:02d}.png", rng.integers(100, 256, (20, 26), dtype=np.uint8))
        png(root / "a_dark" / "nested" / f"{i:02d}.png",
            rng.integers(0, 120, (24, 24), dtype=np.uint8))
    png(root / "b_light" / "rgb.png", rng.integers(0, 256, (30, 18, 3), dtype=np.uint8))
    return root


def maps_file(t: torch.Tensor, path: str) -> bool:
    """Whether ``t``'s memory lies in a mapping of the file ``path`` (Linux's /proc)."""
    addr = t.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5] == path:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr < hi:
                return True
    return False


def same(a: fd.ImageFolder, b: fd.ImageFolder) -> None:
    assert torch.equal(a.images, b.images) and a.images.dtype == b.images.dtype == torch.uint8
    assert (a.labels is None) == (b.labels is None)
    assert a.labels is None or torch.equal(a.labels, b.labels)
    assert a.class_names == b.class_names and a.files == b.files


def cache_files() -> list[str]:
    d = fd.cache_dir()
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_mmap_gives_the_ram_images_labels_and_names_from_a_file(tmp_path):
    d = class_folder(tmp_path / "imgs")
    ram = fd.load_folder(d, image_size=16, memory="ram")
    mm = fd.load_folder(d, image_size=16, memory="mmap")
    assert ram.images.shape == (13, 3, 16, 16) and ram.class_names == ("a_dark", "b_light")
    same(ram, mm)
    assert (ram.mapped, mm.mapped) == (False, True)
    assert (ram.source["memory"], mm.source["memory"]) == ("ram", "mmap")
    cache = mm.source["cache"]
    assert cache.endswith(".npy") and mm.source["from_cache"] is False
    assert Path(cache).with_suffix(".mmap.json").is_file()
    if Path("/proc/self/maps").is_file():
        assert maps_file(mm.images, cache) and not maps_file(ram.images, cache)
    again = fd.load_folder(d, image_size=16, memory="mmap")
    assert again.source["from_cache"] is True and again.mapped
    same(ram, again)
    # the map is copy-on-write: a write changes this process's page, never the file
    again.images[0].fill_(7)
    same(ram, fd.load_folder(d, image_size=16, memory="mmap"))
    # data.limit: the cache holds just the chosen images (its own key), both classes kept
    lr = fd.load_folder(d, image_size=8, limit=4, memory="ram")
    lm = fd.load_folder(d, image_size=8, limit=4, memory="mmap")
    same(lr, lm)
    assert len(lm) == 4 and sorted(set(lm.labels.tolist())) == [0, 1]


@pytest.mark.parametrize("kind", ["npy-nhwc-uint8", "npy-float", "npz-labels"])
def test_array_inputs_stream_into_the_same_images(tmp_path, kind, monkeypatch):
    rng = np.random.default_rng(1)
    monkeypatch.setattr(fd, "CHUNK", 4)  # several chunks even for 10 images
    if kind == "npy-nhwc-uint8":
        p = tmp_path / "a.npy"
        np.save(p, rng.integers(0, 256, (10, 12, 14, 3), dtype=np.uint8))
    elif kind == "npy-float":
        p = tmp_path / "a.npy"
        np.save(p, rng.uniform(-1, 1, (10, 1, 12, 12)).astype(np.float32))
    else:
        p = tmp_path / "a.npz"
        np.savez(p, images=rng.integers(0, 256, (10, 12, 12), dtype=np.uint8),
                 labels=np.arange(10) % 3, class_names=np.array(["x", "y", "z"]))
    for limit in (None, 4):
        ram = fd.load_folder(p, image_size=8, limit=limit, memory="ram")
        mm = fd.load_folder(p, image_size=8, limit=limit, memory="mmap")
        same(ram, mm)
        assert mm.mapped and not ram.mapped and mm.source["kind"] == p.suffix[1:]
    # a changed array file is a new key: rebuilt, not the old rows
    np.save(tmp_path / "b.npy", np.zeros((3, 8, 8), np.uint8))
    b = fd.load_folder(tmp_path / "b.npy", image_size=8, memory="mmap")
    np.save(tmp_path / "b.npy", np.full((3, 8, 8), 9, np.uint8))
    st = (tmp_path / "b.npy").stat()
    os.utime(tmp_path / "b.npy", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    b2 = fd.load_folder(tmp_path / "b.npy", image_size=8, memory="mmap")
    assert b.source["cache"] != b2.source["cache"] and int(b2.images.max()) == 9


def test_auto_picks_ram_for_tiny_data_and_mmap_above_the_threshold(tmp_path, monkeypatch):
    d = class_folder(tmp_path / "imgs")
    assert fd.mmap_threshold() > 10**6  # a real machine's memory: tiny data stays in ram
    assert not fd.load_folder(d, image_size=8).mapped
    monkeypatch.setattr(fd, "available_memory", lambda: None)
    assert fd.mmap_threshold() == fd.FALLBACK_THRESHOLD
    monkeypatch.setattr(fd, "available_memory", lambda: 10**9)
    assert fd.mmap_threshold() == int(10**9 * fd.AUTO_FRACTION)
    # 13 images of 3x8x8 = 2496 bytes decoded
    monkeypatch.setattr(fd, "mmap_threshold", lambda: 2496)
    assert not fd.load_folder(d, image_size=8).mapped
    monkeypatch.setattr(fd, "mmap_threshold", lambda: 2495)
    f = fd.load_folder(d, image_size=8)
    assert f.mapped and f.source["memory"] == "mmap"
    # once built, auto reuses the mapped cache instead of decoding again into memory
    monkeypatch.setattr(fd, "mmap_threshold", lambda: 10**12)
    g = fd.load_folder(d, image_size=8)
    assert g.mapped and g.source["from_cache"] is True
    # the domain passes data.memory through and marks the Dataset mapped
    cfg = apply_overrides(RunConfig(), ["data.name=folder", f"data.dir={d}",
                                        "data.image_size=8", "data.memory=mmap"]).validate()
    ds = load_dataset(cfg.data)
    assert ds.mapped and ds.training_tensor() is ds.images and ds.source["memory"] == "mmap"
    ram = load_dataset(apply_overrides(cfg, ["data.memory=ram"]).data)
    assert not ram.mapped and torch.equal(ram.images, ds.images)


def test_a_killed_build_leaves_nothing_that_loads_and_is_rebuilt(tmp_path, monkeypatch, capsys):
    d = class_folder(tmp_path / "imgs")
    monkeypatch.setattr(fd, "CHUNK", 4)
    ram = fd.load_folder(d, image_size=8, memory="ram")
    before = cache_files()
    real_decode, calls = fd.decode_image, []

    def dies_midway(*a, **k):
        calls.append(1)
        if len(calls) == 7:  # after one chunk has been written
            raise KeyboardInterrupt
        return real_decode(*a, **k)

    monkeypatch.setattr(fd, "decode_image", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        fd.load_folder(d, image_size=8, memory="mmap")
    assert cache_files() == before  # no array, no sidecar, no temporary file
    monkeypatch.setattr(fd, "decode_image", real_decode)

    # killed between the two renames: the array is in place, its sidecar is not
    real_replace, n = os.replace, []

    def dies_between(src, dst):
        n.append(1)
        if len(n) == 2:
            raise SystemExit("killed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_between)
    with pytest.raises(SystemExit):
        fd.load_folder(d, image_size=8, memory="mmap")
    monkeypatch.setattr(os, "replace", real_replace)
    left = [x for x in cache_files() if x not in before]
    assert len(left) == 1 and left[0].endswith(".npy")
    capsys.readouterr()
    f = fd.load_folder(d, image_size=8, memory="mmap")
    assert "warning: ignoring damaged memory-mapped image cache" in capsys.readouterr().err
    assert f.source["from_cache"] is False
    same(ram, f)

    # a SIGKILLed build's temporary files (its process gone) are swept by the next build
    npy = Path(f.source["cache"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = npy.parent / f".{npy.stem}.{dead}.npy.tmp"
    stale.write_bytes(b"\0" * 100)
    # damaged: a truncated array and a junk sidecar are each a warning and a rebuild
    with open(npy, "r+b") as fh:
        fh.truncate(npy.stat().st_size - 10)
    g = fd.load_folder(d, image_size=8, memory="mmap")
    assert "ignoring damaged memory-mapped" in capsys.readouterr().err and not stale.exists()
    same(ram, g)
    npy.with_suffix(".mmap.json").write_text("junk")
    h = fd.load_folder(d, image_size=8, memory="mmap")
    assert "ignoring damaged memory-mapped" in capsys.readouterr().err
    assert h.source["from_cache"] is False
    same(ram, h)


def test_a_mapped_folder_trains_the_same_weights_as_in_memory(tmp_path):
    d = class_folder(tmp_path / "imgs", n=20)  # 41 images: the last batch is a partial one
    runs = {}
    for memory in ("ram", "mmap"):
        cfg = apply_overrides(RunConfig(), [
            "data.name=folder", f"data.dir={d}", "data.image_size=28", "data.channels=1",
            f"data.memory={memory}",
            "model.name=tiny-cnn", "train.epochs=1", "train.batch_size=8", "train.n_samples=4",
            "seed=3"]).validate()
        runs[memory] = train(Run.create(cfg, tmp_path / "runs", memory), progress=False)
    assert load_dataset(runs["mmap"].config().data).mapped
    a, b = (load_checkpoint(runs[m].last_checkpoint) for m in ("ram", "mmap"))
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


def test_bad_memory_setting_is_one_line():
    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), ["data.memory=disk"]).validate()
    assert str(e.value) == "bad config: data.memory must be auto, ram or mmap"
