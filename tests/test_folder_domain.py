"""``data.name: folder``: the user's own images (a folder of PNG/JPEG, or a .npy/.npz array):
the channels rule, centre crop + resize, labels from sub-folders, the cache and its key, one
line for every broken input, the config checks before a run exists, and a run trained,
evaluated in (stand-in) Inception features and sampled end to end."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganscope.data.folder as fd
import ganscope.metrics.inception as inc
from ganscope.cli import main
from ganscope.config import RunConfig, apply_overrides
from ganscope.domains import domain_for, load_dataset
from ganscope.errors import ConfigError, DataError

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from inception_standin import standin_state_dict  # noqa: E402

sys.path.remove(str(DATA))


def grey_png(path: Path, size=(28, 28), value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, dtype=np.uint8)).save(path)


def rgb_jpeg(path: Path, size=(40, 30), colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype=np.uint8)).save(path, quality=95)


def class_folder(root: Path, n_per_class: int = 6, size=(28, 28)) -> Path:
    """Two classes (bright 'b_light' and dark 'a_dark'), grey PNGs of ``size`` (w, h)."""
    for i in range(n_per_class):
        grey_png(root / "b_light" / f"{i:02d}.png", size, 200 + i)
        grey_png(root / "a_dark" / "nested" / f"{i:02d}.png", size, 20 + i)
    return root


def cfg_for(d, *over: str) -> RunConfig:
    return apply_overrides(RunConfig(), ["data.name=folder", f"data.dir={d}", *over])


def data_error(*args, **kwargs) -> str:
    with pytest.raises(DataError) as e:
        fd.load_folder(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


# ----------------------------------------------------------------------------------------------
# Loading


def test_class_folder_labels_crop_and_resize(tmp_path):
    d = class_folder(tmp_path / "imgs", size=(28, 28))
    f = fd.load_folder(d, image_size=16)
    assert f.images.shape == (12, 1, 16, 16) and f.images.dtype == torch.uint8
    assert f.class_names == ("a_dark", "b_light")  # top-level sub-folders, sorted
    assert f.labels.tolist() == [0] * 6 + [1] * 6
    assert f.files[0] == "a_dark/nested/00.png" and f.files[-1] == "b_light/05.png"
    # flat grey images stay flat through the resize
    assert f.images[0].unique().tolist() == [20] and f.images[-1].unique().tolist() == [205]
    assert f.source["channels"] == 1 and f.source["channels_from"] == "auto"


def test_centre_square_is_cut_from_wide_and_tall_images(tmp_path):
    # 60x20 wide: black sides, a white centre square of 20x20 -> all white after the cut
    wide = np.zeros((20, 60), dtype=np.uint8)
    wide[:, 20:40] = 255
    Image.fromarray(wide).save(tmp_path / "wide.png")
    tall = np.zeros((50, 10), dtype=np.uint8)
    tall[20:30] = 255
    Image.fromarray(tall).save(tmp_path / "tall.png")
    f = fd.load_folder(tmp_path, image_size=8, use_cache=False)
    assert f.files == ["tall.png", "wide.png"] and f.labels is None and f.class_names == ()
    # only the centre squares survive (the bicubic kernel reaches 1 px past the box's edge,
    # as PIL's resize with a box does, so the border is measured apart)
    assert f.images[:, :, 1:-1, 1:-1].min() == 255 and f.images.float().mean() > 250


def test_channels_auto_rule_and_override(tmp_path):
    grey = class_folder(tmp_path / "grey")
    assert fd.folder_channels(grey) == 1
    mixed = class_folder(tmp_path / "mixed")
    rgb_jpeg(mixed / "b_light" / "colour.jpg")  # one colour file makes the folder RGB
    assert fd.folder_channels(mixed) == 3
    f = fd.load_folder(mixed, image_size=8)
    assert f.images.shape == (13, 3, 8, 8)
    assert torch.equal(f.images[0, 0], f.images[0, 2])  # grey repeated to RGB
    assert fd.folder_channels(mixed, 1) == 1
    g = fd.load_folder(mixed, image_size=8, channels=1)
    red = g.images[g.files.index("b_light/colour.jpg")]
    assert abs(int(red.float().mean()) - 0.299 * 200 - 0.587 * 30 - 0.114 * 30) <= 2  # luma
    # a palette image whose palette is grey counts as grey
    pal = tmp_path / "pal"
    pal.mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert("P").save(pal / "p.png")
    assert fd.folder_channels(pal) == 1


def test_sample_shape_is_known_at_validation(tmp_path):
    grey = class_folder(tmp_path / "grey")
    cfg = cfg_for(grey, "data.image_size=28").validate()
    cfg.check_model_fits_data()  # mlp takes 1x28x28
    assert domain_for("folder").sample_shape(cfg.data) == "1x28x28"
    rgb = tmp_path / "rgb"
    rgb_jpeg(rgb / "x.jpg")
    c = cfg_for(rgb, "data.image_size=32", "model.name=dcgan32").validate()
    c.check_model_fits_data()
    with pytest.raises(ConfigError, match=r"model mlp takes 1x28x28 images but data folder "
                                          r"gives 3x32x32 images: set model.name to dcgan32"):
        cfg_for(rgb, "data.image_size=32").validate().check_model_fits_data()


def test_cache_is_keyed_by_names_sizes_and_mtimes(tmp_path):
    d = class_folder(tmp_path / "imgs")
    a = fd.load_folder(d, image_size=8)
    b = fd.load_folder(d, image_size=8)
    assert (a.source["from_cache"], b.source["from_cache"]) == (False, True)
    assert a.source["cache"] == b.source["cache"] and torch.equal(a.images, b.images)
    p = d / "b_light" / "00.png"
    grey_png(p, value=99)
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    c = fd.load_folder(d, image_size=8)
    assert not c.source["from_cache"] and c.source["cache"] != a.source["cache"]
    assert c.images[6].unique().tolist() == [99]
    grey_png(d / "b_light" / "new.png")
    assert len(fd.load_folder(d, image_size=8)) == 13
    assert fd.load_folder(d, image_size=16).source["cache"] != c.source["cache"]
    # a damaged cache is rebuilt with a warning
    Path(c.source["cache"]).write_bytes(b"junk")
    (d / "b_light" / "new.png").unlink()
    again = fd.load_folder(d, image_size=8)
    assert again.source["from_cache"] is False and torch.equal(again.images, c.images)


def test_limit_is_spread_over_the_classes(tmp_path):
    d = class_folder(tmp_path / "imgs", n_per_class=10)
    f = fd.load_folder(d, image_size=8, limit=4)
    assert len(f) == 4 and sorted(set(f.labels.tolist())) == [0, 1]


def test_corrupt_files_are_named_in_one_line(tmp_path):
    d = class_folder(tmp_path / "imgs")
    for name in ("bad1.png", "bad2.jpg", "bad3.png", "bad4.png"):
        (d / "a_dark" / name).write_bytes(b"not an image")
    msg = data_error(d, image_size=8)
    assert msg == (f"4 of 16 images in {d.resolve()} cannot be read: a_dark/bad1.png "
                   "(UnidentifiedImageError), a_dark/bad2.jpg (UnidentifiedImageError), "
                   "a_dark/bad3.png (UnidentifiedImageError) and 1 more: replace or remove them")
    # the same line before any run exists: validation peeks at the files
    with pytest.raises(DataError) as e:
        cfg_for(d, "data.image_size=28").validate()
    assert str(e.value) == msg
    # a truncated file that opens but does not decode: named by the load
    (d / "a_dark" / "bad1.png").unlink(), (d / "a_dark" / "bad2.jpg").unlink()
    (d / "a_dark" / "bad4.png").unlink(), (d / "a_dark" / "bad3.png").unlink()
    good = (d / "b_light" / "00.png").read_bytes()
    (d / "b_light" / "00.png").write_bytes(good[:45])  # header intact, pixels cut
    msg = data_error(d, image_size=8, channels=1)
    assert msg.startswith(f"1 of 12 images in {d.resolve()} cannot be read: b_light/00.png (")


def test_bad_folders_and_settings(tmp_path):
    assert data_error(None).startswith("data.name folder needs its images: set data.dir")
    assert data_error(tmp_path / "nowhere").startswith(
        f"image folder {tmp_path / 'nowhere'} does not exist: set data.dir")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert data_error(tmp_path / "empty") == (
        f"image folder {(tmp_path / 'empty').resolve()} holds no .png/.jpg/.jpeg images "
        "(searched recursively): put the images there, one per file")
    mixed = class_folder(tmp_path / "mixed")
    grey_png(mixed / "loose.png")
    assert data_error(mixed) == (
        f"image folder {mixed.resolve()} mixes images at its top level (loose.png, 1 in all) "
        "with class sub-folders: move every image into a sub-folder named after its class, or "
        "use no sub-folders")
    (tmp_path / "x.txt").write_text("x")
    assert data_error(tmp_path / "x.txt").startswith(f"{tmp_path / 'x.txt'} is a .txt file: ")
    d = class_folder(tmp_path / "ok")
    assert data_error(d, image_size=4) == ("image folder image_size 4 is out of range: use "
                                           "8..512")
    for over, msg in [
        ([], "bad config: data.name folder needs data.dir: set data.dir (or --data-dir) to a "
             "folder of PNG/JPEG images (sub-folders = classes) or to a .npy/.npz array of "
             "images"),
        ([f"data.dir={d}", "data.image_size=600"],
         "bad config: data.image_size must lie in 8..512 for an image folder"),
        ([f"data.dir={d}", "data.channels=2"],
         "bad config: data.channels must be 1 (grey), 3 (RGB) or 0 (auto)"),
        ([f"data.dir={d}", "data.split=test"],
         "bad config: data.split must be 'train' or 'all' for an image folder (both mean "
         "every image)"),
        ([f"data.dir={d}", "eval.metrics=fid,classes"],
         "bad config: eval.metrics: classes does not apply to image folder (its extractor "
         "has no class probabilities)"),
    ]:
        with pytest.raises(ConfigError) as e:
            apply_overrides(RunConfig(), ["data.name=folder", *over]).validate()
        assert str(e.value) == msg
    dom = domain_for("folder")
    assert dom.eval_metrics(RunConfig().eval) == ("fid", "kid", "prdc")  # the default, less


# ----------------------------------------------------------------------------------------------
# Arrays


@pytest.mark.parametrize("shape,channels", [((5, 12, 10), 1), ((5, 1, 12, 10), 1),
                                            ((5, 3, 12, 10), 3), ((5, 12, 10, 3), 3)])
def test_npy_layouts(tmp_path, shape, channels):
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    p = tmp_path / "imgs.npy"
    np.save(p, a)
    assert fd.folder_channels(p) == channels
    f = fd.load_folder(p, image_size=10)
    assert f.images.shape == (5, channels, 10, 10) and f.labels is None
    chw = a.reshape(5, 1, 12, 10) if len(shape) == 3 else (
        a if shape[1] in (1, 3) else a.transpose(0, 3, 1, 2))
    assert torch.equal(f.images, torch.from_numpy(chw[:, :, 1:11, :]))  # centre 10x10, no resize


def test_npz_with_labels_floats_and_bad_arrays(tmp_path):
    a = np.linspace(-1, 1, 4 * 8 * 8).reshape(4, 8, 8).astype(np.float32)
    p = tmp_path / "set.npz"
    np.savez(p, images=a, labels=np.array([0, 1, 1, 0]), class_names=np.array(["cat", "dog"]))
    f = fd.load_folder(p, image_size=8)
    assert f.images.dtype == torch.uint8 and int(f.images.min()) == 0
    assert int(f.images.max()) == 255
    assert f.labels.tolist() == [0, 1, 1, 0] and f.class_names == ("cat", "dog")
    assert cfg_for(p, "data.image_size=8", "model.name=mlp").validate()
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 2, 8, 8), dtype=np.uint8))
    assert data_error(bad) == (f"{bad.resolve()} holds an array of shape (3, 2, 8, 8): "
                               "expected images (N, H, W), (N, C, H, W) or (N, H, W, C) with "
                               "C 1 or 3")
    np.save(bad, np.full((3, 8, 8), 2.0))
    assert data_error(bad) == (f"{bad.resolve()} holds floats in [2, 2]: float images must "
                               "lie in [0, 1] (or [-1, 1] for tanh output)")
    bad.write_bytes(b"garbage")
    assert data_error(bad).startswith(f"cannot read {bad.resolve()} as a .npy array (")
    two = tmp_path / "two.npz"
    np.savez(two, a=a, b=a)
    assert data_error(two) == (f"{two.resolve()} holds arrays a, b: name the images 'images' "
                               "(and optionally 'labels', 'class_names')")


# ----------------------------------------------------------------------------------------------
# A run, end to end: train (scored in Inception during training), eval, generate


@pytest.fixture(scope="module")
def standin_weights(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("inception") / "standin.pth"
    torch.save(standin_state_dict({k: tuple(v.shape) for k, v in
                                   inc.FIDInceptionV3().state_dict().items()}), p)
    return p


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(inc.URL_ENV, "http://127.0.0.1:9/" + inc.WEIGHTS_FILE_NAME)


def test_folder_run_trains_evaluates_and_generates(tmp_path, capsys, standin_weights, offline,
                                                   monkeypatch):
    d = class_folder(tmp_path / "imgs", n_per_class=8, size=(30, 36))
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--no-progress"]
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(standin_weights))
    assert main(["train", "e1-mlp", "--name", "f", "--data-dir", str(d), "--eval-every", "1",
                 "--set", "data.name=folder", "--set", "data.image_size=28",
                 "--set", "train.epochs=1", "--set", "eval.n=10", "--no-plot", *common]) == 0
    recs = [json.loads(x) for x in (runs / "f" / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) == 1
    r = recs[0]
    assert set(r["metrics"]) == {"fid", "kid", "kid_std", "precision", "recall", "density",
                                 "coverage"}
    assert r["extractor"]["name"] == "inception-v3-fid" and r["n_fake"] == 10
    assert r["reference"]["dataset"] == "folder" and r["reference"]["split"] == "all"
    assert r["n_real"] == 10 and np.isfinite(r["metrics"]["fid"]) and r["metrics"]["fid"] > 0
    capsys.readouterr()

    # offline eval with --inception-weights: the same reference (cached), the same numbers
    monkeypatch.delenv(inc.WEIGHTS_ENV)
    assert main(["eval", "f", "-n", "10", "--inception-weights", str(standin_weights), "--json",
                 *common]) == 0
    again = json.loads(capsys.readouterr().out)[0]
    assert again["metrics"]["fid"] == pytest.approx(r["metrics"]["fid"], rel=1e-6)
    assert again["reference"]["images_sha256"] == r["reference"]["images_sha256"]
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)  # the flag set it for this process

    # 'classes' named on the command line: one line
    assert main(["eval", "f", "-n", "10", "--metrics", "fid,classes", *common]) == 2
    assert capsys.readouterr().err == ("error: --metrics classes does not apply to image folder "
                                       "runs (their extractor has no class probabilities): "
                                       "leave it out\n")
    # no weights anywhere and offline: one line naming the file and where it goes
    assert main(["eval", "f", "-n", "10", *common]) == 2
    err = capsys.readouterr().err
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    assert err.count("\n") == 1 and err.startswith(
        f"error: Inception weights {inc.WEIGHTS_FILE_NAME} are not in {hub} and could not be "
        "downloaded (")

    out = tmp_path / "g.png"
    assert main(["generate", "f", "-n", "4", "--seed", "1", "--out", str(out), *common]) == 0
    assert Image.open(out).size[0] > 28


def test_rgb_folder_of_two_sizes_trains_dcgan32(tmp_path):
    d = tmp_path / "rgb"
    for i in range(6):
        rgb_jpeg(d / f"a{i}.jpg", (48, 40), (200, 20 * i, 30))
        rgb_jpeg(d / f"b{i}.jpg", (70, 90), (20, 20 * i, 200))
    cfg = cfg_for(d, "data.image_size=32", "model.name=dcgan32").validate()
    ds = load_dataset(cfg.data)
    assert ds.images.shape == (12, 3, 32, 32) and ds.labels is None
    assert ds.source["class_names"] == [] and ds.source["channels"] == 3
    runs = tmp_path / "runs"
    assert main(["train", "e6-faces", "--name", "rgb", "--data-dir", str(d), "--set",
                 "data.name=folder", "--set", "data.image_size=32", "--set", "model.name=dcgan32",
                 "--set", "train.epochs=1", "--set", "train.batch_size=4", "--no-plot",
                 "--no-progress", "--runs-dir", str(runs)]) == 0
    assert (runs / "rgb" / "samples" / "epoch-0001.png").is_file()


def test_eval_images_against_a_folder_in_inception(tmp_path, capsys, standin_weights, offline):
    """``ganscope eval --images A --against B``: two image sets in Inception features, like
    ``python -m pytorch_fid A B``; the same set against itself has FID ~0."""
    real = class_folder(tmp_path / "real", n_per_class=3, size=(16, 16))  # 6 images: Inception
    fake = tmp_path / "fake.npy"                                          # is slow on a CPU
    np.save(fake, np.stack([np.full((16, 16), 20 + i, np.uint8) for i in range(3)]
                           + [np.full((16, 16), 200 + i, np.uint8) for i in range(3)]))
    common = ["--inception-weights", str(standin_weights), "--json", "--no-progress"]
    assert main(["eval", "--images", str(fake), "--against", str(real), *common]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert rec["extractor"]["name"] == "inception-v3-fid" and rec["n_real"] == 6
    assert set(rec["metrics"]) == {"fid", "kid", "kid_std", "precision", "recall", "density",
                                   "coverage"}
    assert abs(rec["metrics"]["fid"]) < 1e-2  # the same pixels as the folder's images
    wide = tmp_path / "wide"
    grey_png(wide / "x.png", (20, 10))
    assert main(["eval", "--images", str(wide), "--against", str(real), *common]) == 2
    assert capsys.readouterr().err == (f"error: {(wide / 'x.png').resolve()} holds 20x10 "
                                       "images, not square: choose the size to cut them to "
                                       "with --image-size S\n")
    assert main(["eval", "some-run", "--against", str(real), "--no-progress"]) == 2
    assert "--against and --image-size go with --images" in capsys.readouterr().err
