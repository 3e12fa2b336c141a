"""`eval --images` inputs: .npy arrays in several value ranges, PNG folders, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganscope.errors import UserError
from ganscope.metrics.image_files import load_image_set


@pytest.fixture
def u8():
    return np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)


def test_uint8_npy_loads_unchanged(tmp_path, u8):
    np.save(tmp_path / "a.npy", u8)
    np.testing.assert_array_equal(load_image_set(tmp_path / "a.npy").numpy(), u8)
    np.save(tmp_path / "b.npy", u8[:, None])  # (N, 1, 28, 28)
    np.testing.assert_array_equal(load_image_set(tmp_path / "b.npy").numpy(), u8)
    np.save(tmp_path / "c.npy", u8.astype(np.int64))
    np.testing.assert_array_equal(load_image_set(tmp_path / "c.npy").numpy(), u8)


def test_float_ranges_map_to_the_same_uint8(tmp_path, u8):
    np.save(tmp_path / "unit.npy", u8.astype(np.float32) / 255.0)
    np.save(tmp_path / "tanh.npy", u8.astype(np.float64) / 127.5 - 1.0)
    np.testing.assert_array_equal(load_image_set(tmp_path / "unit.npy").numpy(), u8)
    np.testing.assert_array_equal(load_image_set(tmp_path / "tanh.npy").numpy(), u8)


def test_png_folder_in_name_order(tmp_path, u8):
    d = tmp_path / "pngs"
    d.mkdir()
    for i, im in enumerate(u8):
        Image.fromarray(im).save(d / f"img{i:02d}.png")
    Image.fromarray(np.stack([u8[0]] * 3, -1)).convert("RGB").save(d / "img99.png")  # RGB -> L
    (d / "notes.txt").write_text("ignored")
    got = load_image_set(d).numpy()
    assert got.shape == (7, 28, 28)
    np.testing.assert_array_equal(got[:6], u8)
    np.testing.assert_array_equal(got[6], u8[0])


def one_line(path, fn=load_image_set):
    with pytest.raises(UserError) as e:
        fn(path)
    return str(e.value)


def test_errors_are_one_clear_line(tmp_path):
    p = tmp_path
    assert one_line(p / "missing.npy") == (
        f"image set {p / 'missing.npy'} not found: give a .npy file or a folder of PNG images")
    (p / "x.csv").write_text("1,2")
    assert one_line(p / "x.csv") == (f"unknown image set type .csv for {p / 'x.csv'}: use a .npy "
                                     "array (N, 28, 28) or a folder of PNG images")
    (p / "bad.npy").write_bytes(b"not numpy")
    assert one_line(p / "bad.npy").startswith(f"cannot read {p / 'bad.npy'} as a .npy array (")
    np.save(p / "flat.npy", np.zeros((5, 784), np.uint8))
    assert one_line(p / "flat.npy") == (f"{p / 'flat.npy'} holds an array of shape (5, 784): "
                                        "expected images (N, 28, 28)")
    np.save(p / "nan.npy", np.full((2, 28, 28), np.nan))
    assert one_line(p / "nan.npy") == (f"{p / 'nan.npy'} holds non-finite values (nan or inf): "
                                       "fix the images first")
    np.save(p / "big.npy", np.full((2, 28, 28), 3.0))
    assert one_line(p / "big.npy") == (f"{p / 'big.npy'} holds floats in [3, 3]: float images "
                                       "must lie in [0, 1] (or [-1, 1] for tanh output)")
    np.save(p / "wide.npy", np.full((2, 28, 28), 300, np.int32))
    assert one_line(p / "wide.npy") == (f"{p / 'wide.npy'} holds integers outside 0..255: scale "
                                        "them to uint8 images")
    empty = p / "empty"
    empty.mkdir()
    assert one_line(empty) == f"folder {empty} holds no .png images: put one image per file in it"
    mixed = p / "mixed"
    mixed.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(mixed / "a.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mixed / "b.png")
    assert one_line(mixed) == (f"image {mixed / 'b.png'} is 32x32 but a.png is 28x28: all images "
                               "must be one size")
    broken = p / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"\x89PNG garbage")
    assert one_line(broken) == f"cannot read image {broken / 'a.png'}: it is damaged or not a PNG"


def test_npz_and_empty_arrays_are_one_line(tmp_path):  # found by tests/test_fuzz_inputs.py
    p = tmp_path / "z.npy"
    with open(p, "wb") as f:
        np.savez(f, np.zeros((2, 28, 28), np.uint8))
    assert one_line(p) == (f"{p} is an .npz archive, not one .npy array: save the images with "
                           "numpy.save")
    np.save(tmp_path / "e.npy", np.zeros((3, 28, 0), np.float32))
    assert one_line(tmp_path / "e.npy") == (f"{tmp_path / 'e.npy'} holds an array of shape "
                                            "(3, 28, 0): expected images (N, 28, 28)")
    np.save(tmp_path / "t.npy", np.zeros((3, 28, 28), "m8[s]"))
    assert one_line(tmp_path / "t.npy") == (f"{tmp_path / 't.npy'} holds timedelta64[s] "
                                            "values: expected uint8 or float images")
