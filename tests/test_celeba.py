"""CelebA loader: its real folder layout, centre crop + resize, attributes, partitions, the cache,
and one pinned line for every broken input; plus a check on the shared 10k subset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganscope.data.celeba as cb
from ganscope.cli import main
from ganscope.config import DataConfig, RunConfig, apply_overrides
from ganscope.domains import load_dataset
from ganscope.errors import ConfigError, DataError

REAL = Path("/work/shared/data/celeba-10k")
FIX = "replace it with the original file from the CelebA download"

# Colours of the planted pattern (far apart, so JPEG + resampling cannot confuse them).
RED, BLUE, GREEN, WHITE = (230, 20, 20), (20, 20, 230), (20, 200, 20), (240, 240, 240)


@pytest.fixture(autouse=True)
def _no_celeba_env(monkeypatch):
    monkeypatch.delenv("GANSCOPE_CELEBA", raising=False)


def attr_values(n: int, seed: int = 0) -> np.ndarray:
    """(n, 40) of 1/-1, deterministic; attribute Male (index 20) alternates starting with 1."""
    v = np.where(np.random.default_rng(seed).random((n, 40)) < 0.5, -1, 1).astype(np.int8)
    v[:, cb.ATTRIBUTES.index("Male")] = [1 if i % 2 == 0 else -1 for i in range(n)]
    return v


def write_attr_file(path: Path, files: list[str], values: np.ndarray,
                    count: int | None = None) -> None:
    """The official layout: count, the 40 names (trailing space), then rows padded to width 2."""
    lines = [str(len(files) if count is None else count), " ".join(cb.ATTRIBUTES) + " "]
    for f, row in zip(files, values):
        lines.append(f + " " + " ".join(f"{int(v):2d}" for v in row))
    path.write_text("\n".join(lines) + "\n")


def pattern_image(size: tuple[int, int], crop: float) -> Image.Image:
    """Red outside the centred crop square (1 px margin inside it); inside, quadrants:
    top-left blue, top-right green, bottom-left white, bottom-right blue."""
    w, h = size
    a = np.empty((h, w, 3), dtype=np.uint8)
    a[:] = RED
    left, top, right, bottom = cb.crop_box(w, h, crop)
    lo, t, r, b = int(np.floor(left)), int(np.floor(top)), int(np.ceil(right)), int(np.ceil(bottom))
    cx, cy = (lo + r) // 2, (t + b) // 2
    a[t:cy, lo:cx] = BLUE
    a[t:cy, cx:r] = GREEN
    a[cy:b, lo:cx] = WHITE
    a[cy:b, cx:r] = BLUE
    return Image.fromarray(a)


def make_celeba(folder: Path, n: int = 6, size: tuple[int, int] = (178, 218),
                partition: list[int] | None = None, seed: int = 0, crop: float = 0.8) -> Path:
    """A tiny CelebA folder in the real format; image i is the crop pattern, tinted by i."""
    (folder / cb.IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    files = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, f in enumerate(files):
        img = np.asarray(pattern_image(size, crop)).copy()
        img[:4, :4] = (i * 40) % 256  # a per-image mark outside the crop
        Image.fromarray(img).save(folder / cb.IMAGE_DIR / f, quality=95)
    write_attr_file(folder / cb.ATTR_FILE, files, attr_values(n, seed))
    if partition is not None:
        (folder / cb.PARTITION_FILE).write_text(
            "".join(f"{f} {p}\n" for f, p in zip(files, partition)))
    return folder


def quadrant_means(img: np.ndarray) -> dict[str, np.ndarray]:
    """Mean colour of each quadrant of a (3, S, S) image, 2 px away from edges and midlines."""
    s = img.shape[-1]
    h, m = s // 2, 2
    q = {"tl": img[:, m:h - m, m:h - m], "tr": img[:, m:h - m, h + m:s - m],
         "bl": img[:, h + m:s - m, m:h - m], "br": img[:, h + m:s - m, h + m:s - m]}
    return {k: v.reshape(3, -1).mean(1) for k, v in q.items()}


def load_error(*args, **kwargs) -> str:
    with pytest.raises(DataError) as e:
        cb.load_celeba(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ----------------------------------------------------------------------------------------------
# Loading


@pytest.mark.parametrize("size,image_size", [((178, 218), 32), ((178, 218), 64),
                                             ((89, 109), 32), ((89, 109), 64)])
def test_shapes_dtype_and_attributes(tmp_path, size, image_size):
    d = make_celeba(tmp_path / "celeba", n=6, size=size)
    ds = cb.load_celeba(d, image_size=image_size)
    assert ds.images.shape == (6, 3, image_size, image_size)
    assert ds.images.dtype == torch.uint8
    assert ds.attributes.shape == (6, 40) and ds.attributes.dtype == torch.uint8
    assert np.array_equal(ds.attributes.numpy(), (attr_values(6) > 0).astype(np.uint8))
    assert ds.attribute_names == cb.ATTRIBUTES
    assert ds.files == [f"{i:06d}.jpg" for i in range(1, 7)]
    assert ds.attribute("Male").tolist() == [True, False] * 3
    assert ds.split == "train" and len(ds) == 6
    assert ds.source["dir"] == str(d.resolve()) and ds.source["found_by"] == "--data-dir"
    assert ds.source["from_cache"] is False and ds.source["partition"] is None


@pytest.mark.parametrize("size,crop,image_size", [((178, 218), 0.5, 32), ((178, 218), 0.8, 64),
                                                  ((178, 218), 1.0, 32), ((89, 109), 0.8, 32),
                                                  ((89, 109), 1.0, 64)])
def test_centre_crop_takes_exactly_the_planted_square(tmp_path, size, crop, image_size):
    d = make_celeba(tmp_path / "c", n=1, size=size, crop=crop)
    img = cb.load_celeba(d, image_size=image_size, crop=crop).images[0].numpy().astype(float)
    q = quadrant_means(img)
    for k, colour in (("tl", BLUE), ("tr", GREEN), ("bl", WHITE), ("br", BLUE)):
        assert np.abs(q[k] - colour).max() < 25, (k, q[k])
    # Nothing of the red outside the square comes in, even at the output's edge rows/columns:
    # red is R high with G and B low, which none of the planted inside colours is.
    red = (img[0] > 150) & (img[1] < 90) & (img[2] < 90)
    assert red.sum() == 0
    # Orientation: not flipped or transposed (green is top-right only).
    assert q["tr"][1] > 150 and q["bl"][1] > 150 and q["tl"][1] < 60


def test_crop_box():
    assert cb.crop_box(178, 218, 1.0) == (0.0, 20.0, 178.0, 198.0)
    assert cb.crop_box(178, 218, 0.5) == (44.5, 64.5, 133.5, 153.5)
    assert cb.crop_box(89, 109, 0.8) == pytest.approx((8.9, 18.9, 80.1, 90.1))


def test_matches_a_direct_pil_crop_and_resize(tmp_path):
    d = make_celeba(tmp_path / "c", n=2, size=(89, 109))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (109, 89, 3), dtype=np.uint8)).save(
        d / cb.IMAGE_DIR / "000002.jpg", quality=95)
    got = cb.load_celeba(d, image_size=64, crop=0.8).images[1].numpy()
    with Image.open(d / cb.IMAGE_DIR / "000002.jpg") as im:
        ref = im.convert("RGB").resize((64, 64), Image.BICUBIC, box=cb.crop_box(89, 109, 0.8))
    assert np.array_equal(got, np.asarray(ref).transpose(2, 0, 1))


def test_reduced_jpeg_decoding_stays_close_to_a_full_decode(tmp_path):
    # Shrinking 2x or more, the JPEG is decoded at 1/2 (or 1/4 ...) scale first: faster, and
    # on smooth content the same picture as decoding in full.
    d = make_celeba(tmp_path / "c", n=1, size=(178, 218))
    yy, xx = np.mgrid[0:218, 0:178]
    smooth = np.stack([xx * 255 / 177, yy * 255 / 217, 128 + 60 * np.sin(xx / 20.0)], -1)
    Image.fromarray(smooth.astype(np.uint8)).save(d / cb.IMAGE_DIR / "000001.jpg", quality=95)
    got = cb.load_celeba(d, image_size=32, crop=0.8).images[0].numpy().astype(float)
    with Image.open(d / cb.IMAGE_DIR / "000001.jpg") as im:
        ref = im.convert("RGB").resize((32, 32), Image.BICUBIC, box=cb.crop_box(178, 218, 0.8))
    ref = np.asarray(ref).transpose(2, 0, 1).astype(float)
    assert np.abs(got - ref).mean() < 2.0 and np.abs(got - ref).max() < 12


def test_attribute_file_with_many_spaces_and_crlf(tmp_path):
    d = make_celeba(tmp_path / "c", n=3)
    text = (d / cb.ATTR_FILE).read_text().replace(" ", "   ").replace("\n", "\r\n")
    (d / cb.ATTR_FILE).write_text(text)
    a = cb.read_attributes(d / cb.ATTR_FILE)
    assert a.files == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert a.names == cb.ATTRIBUTES
    assert np.array_equal(a.values, attr_values(3))
    assert a.lines == [3, 4, 5]


def test_partition_selects_the_split(tmp_path):
    d = make_celeba(tmp_path / "c", n=6, partition=[0, 0, 1, 2, 0, 2])
    sel = {s: cb.load_celeba(d, split=s, image_size=32).files for s in cb.SPLITS}
    assert sel["train"] == ["000001.jpg", "000002.jpg", "000005.jpg"]
    assert sel["valid"] == ["000003.jpg"]
    assert sel["test"] == ["000004.jpg", "000006.jpg"]
    assert sel["all"] == [f"{i:06d}.jpg" for i in range(1, 7)]
    test = cb.load_celeba(d, split="test", image_size=32)
    assert test.attribute("Male").tolist() == [False, False]  # rows 4 and 6 (index 3, 5)
    assert test.source["partition"] == cb.PARTITION_FILE
    # limit: the first N of the split
    assert cb.load_celeba(d, split="train", image_size=32, limit=2).files == [
        "000001.jpg", "000002.jpg"]


def test_no_partition_file_train_is_everything_and_test_is_an_error(tmp_path):
    d = make_celeba(tmp_path / "c", n=4)
    assert len(cb.load_celeba(d, split="train", image_size=32)) == 4
    assert len(cb.load_celeba(d, split="all", image_size=32)) == 4
    assert load_error(d, split="test", image_size=32) == (
        f"CelebA split 'test' needs list_eval_partition.txt in {d.resolve()} (the CelebA "
        "download's Eval/ folder); without it use data.split=train (all images)")


def test_environment_variable_is_the_fallback(tmp_path, monkeypatch):
    d = make_celeba(tmp_path / "c", n=2)
    monkeypatch.setenv("GANSCOPE_CELEBA", str(d))
    ds = cb.load_celeba(image_size=32)
    assert len(ds) == 2 and ds.source["found_by"] == "GANSCOPE_CELEBA"
    # an explicit folder wins over the variable
    other = make_celeba(tmp_path / "other", n=3)
    assert len(cb.load_celeba(other, image_size=32)) == 3


def test_registered_dataset_and_config(tmp_path):
    d = make_celeba(tmp_path / "c", n=5)
    ds = load_dataset(DataConfig(name="celeba", dir=str(d), image_size=32, limit=4))
    assert ds.images.shape == (4, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.labels.shape == (4, 40)
    assert ds.source["attributes"] == list(cb.ATTRIBUTES)
    x = ds.training_tensor()
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1


def test_config_fields_and_validation():
    base = RunConfig()
    assert (base.data.image_size, base.data.crop) == (64, 0.8)
    ok = apply_overrides(base, ["data.name=celeba", "data.split=all", "data.image_size=32",
                                "data.crop=1"])
    assert ok.validate() is ok and ok.data.crop == 1.0
    for over, msg in [
        (["data.name=celeba", "data.split=dev"],
         "bad config: data.split must be train, valid, test or all for celeba"),
        (["data.split=all"], "bad config: data.split must be 'train' or 'test'"),
        (["data.image_size=48"], "bad config: data.image_size must be 32 or 64"),
        (["data.crop=0"], "bad config: data.crop must lie in (0, 1] (a fraction of the width)"),
        (["data.crop=1.5"], "bad config: data.crop must lie in (0, 1] (a fraction of the width)"),
    ]:
        cfg = apply_overrides(base, over)
        with pytest.raises(ConfigError) as e:
            cfg.validate()
        assert str(e.value) == msg


# ----------------------------------------------------------------------------------------------
# The cache


def cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "celeba").glob("*.pt"))  # GANSCOPE_CACHE (conftest)


def test_second_load_reads_the_cache_not_the_jpegs(tmp_path, monkeypatch):
    d = make_celeba(tmp_path / "c", n=4)
    first = cb.load_celeba(d, image_size=32)
    assert len(cache_files(tmp_path)) == 1
    assert first.source["cache"] == str(cache_files(tmp_path)[0])

    def no_decoding(*a, **k):
        raise AssertionError("a JPEG was decoded")

    monkeypatch.setattr(cb, "decode_image", no_decoding)
    second = cb.load_celeba(d, image_size=32)
    assert second.source["from_cache"] is True
    assert torch.equal(first.images, second.images)
    assert torch.equal(first.attributes, second.attributes)
    assert second.files == first.files


def test_different_options_get_different_cache_files(tmp_path):
    d = make_celeba(tmp_path / "c", n=4, partition=[0, 0, 1, 2])
    for kw in ({}, {"image_size": 64}, {"crop": 1.0}, {"limit": 2}, {"split": "all"},
               {"split": "test"}):
        cb.load_celeba(d, **{"image_size": 32, **kw})
    assert len(cache_files(tmp_path)) == 6
    # the same options again reuse their file
    cb.load_celeba(d, image_size=32, limit=2)
    assert len(cache_files(tmp_path)) == 6
    # a changed attribute file is a new key: the old cache can never be served for it
    v = attr_values(4)
    v[0, 0] = -v[0, 0]
    write_attr_file(d / cb.ATTR_FILE, [f"{i:06d}.jpg" for i in range(1, 5)], v)
    ds = cb.load_celeba(d, image_size=32)
    assert ds.source["from_cache"] is False and len(cache_files(tmp_path)) == 7
    assert ds.attributes[0, 0].item() == int(v[0, 0] > 0)


def test_no_cache_option_writes_nothing(tmp_path):
    d = make_celeba(tmp_path / "c", n=2)
    ds = cb.load_celeba(d, image_size=32, use_cache=False)
    assert len(ds) == 2 and ds.source["cache"] is None and cache_files(tmp_path) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-shape"])
def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path, capsys, damage):
    d = make_celeba(tmp_path / "c", n=3)
    good = cb.load_celeba(d, image_size=32)
    path = cache_files(tmp_path)[0]
    if damage == "garbage":
        path.write_bytes(b"not a torch file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        obj = torch.load(path, weights_only=True)
        obj["images"] = obj["images"][:2]
        torch.save(obj, path)
    capsys.readouterr()
    again = cb.load_celeba(d, image_size=32)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"warning: ignoring damaged CelebA cache {path} (")
    assert lines[0].endswith("); rebuilding it from the JPEGs")
    assert again.source["from_cache"] is False
    assert torch.equal(again.images, good.images)
    # rebuilt: the next load is served from the cache, silently
    third = cb.load_celeba(d, image_size=32)
    assert third.source["from_cache"] is True and capsys.readouterr().err == ""


# ----------------------------------------------------------------------------------------------
# Broken inputs: one line each, saying what is wrong and how to fix it


def test_no_folder_given(tmp_path):
    assert load_error() == (
        "CelebA not found (no --data-dir and no $GANSCOPE_CELEBA): download CelebA's "
        "Align&Cropped images (img_align_celeba/) and list_attr_celeba.txt from "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into one folder, then pass "
        "--data-dir DIR or set GANSCOPE_CELEBA=DIR")


def test_missing_folder(tmp_path, monkeypatch):
    d = tmp_path / "nowhere"
    assert load_error(d) == (
        f"CelebA folder {d} (from --data-dir) does not exist: download CelebA's Align&Cropped "
        "images (img_align_celeba/) and list_attr_celeba.txt from "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into one folder, then pass "
        "--data-dir DIR or set GANSCOPE_CELEBA=DIR")
    monkeypatch.setenv("GANSCOPE_CELEBA", str(d))
    assert load_error().startswith(f"CelebA folder {d} (from GANSCOPE_CELEBA) does not exist: ")


def test_missing_attribute_file_and_image_folder(tmp_path):
    d = make_celeba(tmp_path / "c", n=2)
    (d / cb.ATTR_FILE).unlink()
    assert load_error(d) == (
        f"CelebA attribute file {d / cb.ATTR_FILE} is missing: put the CelebA download's "
        "list_attr_celeba.txt (folder Anno/) next to img_align_celeba/")
    d2 = tmp_path / "only-attrs"
    d2.mkdir()
    write_attr_file(d2 / cb.ATTR_FILE, ["000001.jpg"], attr_values(1))
    assert load_error(d2) == (
        f"CelebA image folder {d2 / cb.IMAGE_DIR} is missing: unpack the CelebA download's "
        f"img_align_celeba.zip into {d2}")


def broken_attr(tmp_path: Path, edit) -> tuple[Path, Path]:
    d = make_celeba(tmp_path / "c", n=3)
    p = d / cb.ATTR_FILE
    lines = p.read_text().splitlines()
    edit(lines)
    p.write_text("\n".join(lines) + "\n")
    return d, p.resolve()


def test_attribute_file_wrong_count(tmp_path):
    def edit(lines):
        lines[0] = "4"

    d, p = broken_attr(tmp_path, edit)
    assert load_error(d) == (
        f"corrupt CelebA attribute file {p}: line 1 says 4 images but 3 rows follow; {FIX}")


def test_attribute_file_count_not_a_number(tmp_path):
    def edit(lines):
        lines[0] = "many"

    d, p = broken_attr(tmp_path, edit)
    assert load_error(d) == (
        f"corrupt CelebA attribute file {p}: line 1 is 'many', expected the image count; {FIX}")


def test_attribute_file_bad_value(tmp_path):
    def edit(lines):
        parts = lines[3].split()
        parts[21] = "0"  # the 21st value: Male
        lines[3] = " ".join(parts)

    d, p = broken_attr(tmp_path, edit)
    assert load_error(d) == (
        f"corrupt CelebA attribute file {p}: line 4: value '0' for Male, expected 1 or -1; {FIX}")


def test_attribute_file_short_row(tmp_path):
    def edit(lines):
        lines[4] = " ".join(lines[4].split()[:-1])

    d, p = broken_attr(tmp_path, edit)
    assert load_error(d) == (
        f"corrupt CelebA attribute file {p}: line 5 has 39 values, expected 40; {FIX}")


def test_attribute_file_names_a_missing_image(tmp_path):
    d = make_celeba(tmp_path / "c", n=3)
    (d / cb.IMAGE_DIR / "000002.jpg").unlink()
    assert load_error(d) == (
        f"CelebA image {d.resolve() / cb.IMAGE_DIR / '000002.jpg'} is missing (listed on line 4 "
        "of list_attr_celeba.txt): put the whole img_align_celeba/ folder there, or load fewer "
        "images with data.limit")
    # with a limit that stops before it, the rest loads
    assert len(cb.load_celeba(d, image_size=32, limit=1)) == 1


@pytest.mark.parametrize("how,exc", [("garbage", "UnidentifiedImageError"),
                                     ("truncated", "OSError")])
def test_corrupt_jpeg(tmp_path, how, exc):
    d = make_celeba(tmp_path / "c", n=3)
    p = d / cb.IMAGE_DIR / "000003.jpg"
    p.write_bytes(b"this is not a jpeg" if how == "garbage" else p.read_bytes()[:600])
    assert load_error(d, image_size=32) == (
        f"corrupt CelebA image {d.resolve() / cb.IMAGE_DIR / '000003.jpg'}: PIL cannot decode "
        f"it ({exc}); {FIX}")
    assert cache_files(tmp_path) == []  # nothing half-built was cached


def test_bad_partition_file(tmp_path):
    d = make_celeba(tmp_path / "c", n=3, partition=[0, 1, 2])
    p = d / cb.PARTITION_FILE
    p.write_text("000001.jpg 0\n000002.jpg 7\n000003.jpg 2\n")
    assert load_error(d, split="train", image_size=32) == (
        f"corrupt CelebA partition file {p.resolve()}: line 2 is '000002.jpg 7', expected "
        f"'NAME.jpg 0|1|2'; {FIX}")
    p.write_text("000001.jpg 0\n000002.jpg 1\n")
    assert load_error(d, split="train", image_size=32) == (
        f"corrupt CelebA partition file {p.resolve()}: no partition for 1 images of "
        f"list_attr_celeba.txt (first: 000003.jpg); {FIX}")


def test_bad_options():
    assert load_error(split="dev") == "unknown CelebA split 'dev': use train, valid, test or all"
    assert load_error(crop=0.0) == ("CelebA crop 0.0 is out of range: use a fraction of the image "
                                    "width in (0, 1], e.g. 0.8")


def test_cli_reports_missing_celeba_in_one_line_exit_2(tmp_path, capsys):
    rc = main(["train", "e6-faces", "--runs-dir", str(tmp_path / "runs"),
               "--data-dir", str(tmp_path / "nowhere"), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith(
        f"error: CelebA folder {tmp_path / 'nowhere'} (from --data-dir) does not exist: ")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ----------------------------------------------------------------------------------------------
# The shared 10k subset (skipped where it is absent)

real = pytest.mark.skipif(not (REAL / cb.ATTR_FILE).is_file(),
                          reason=f"CelebA subset not in {REAL}")


@real
@pytest.mark.realdata
def test_real_subset_first_200(tmp_path):
    ds = cb.load_celeba(REAL, image_size=64, limit=200)
    assert ds.images.shape == (200, 3, 64, 64) and ds.images.dtype == torch.uint8
    assert ds.files[0] == "000001.jpg" and ds.files[-1] == "000200.jpg"
    # Attribute rates: the loader's first 200 rows against a plain reading of the file.
    rows = (REAL / cb.ATTR_FILE).read_text().splitlines()
    names = rows[1].split()
    male = names.index("Male") + 1
    file_male = [r.split()[male] == "1" for r in rows[2:]]
    assert ds.attribute("Male").tolist() == file_male[:200]
    assert abs(np.mean(file_male) - 0.42) < 0.01  # the README's 42 %
    assert 0.3 < ds.attribute("Male").float().mean().item() < 0.55
    assert abs(ds.attribute("Smiling").float().mean().item() - 0.48) < 0.1
    # Face-sized, aligned crops: the mean face is close to mirror-symmetric and has the
    # eyes-and-mouth contrast in the middle, not a flat or one-sided image.
    mean = ds.images.float().mean((0, 1))
    c = np.corrcoef(mean.flatten().numpy(), mean.flip(-1).flatten().numpy())[0, 1]
    assert c > 0.9
    assert ds.images.float().std() > 30
    # cached: a second load is the same, from the cache
    again = cb.load_celeba(REAL, image_size=64, limit=200)
    assert again.source["from_cache"] and torch.equal(again.images, ds.images)


@real
@pytest.mark.realdata
def test_real_subset_through_the_registry():
    ds = load_dataset(dataclasses.replace(DataConfig(), name="celeba", dir=str(REAL),
                                          image_size=32, limit=64))
    assert ds.images.shape == (64, 3, 32, 32) and ds.labels.shape == (64, 40)
