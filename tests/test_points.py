"""2-D point data: the user-file readers and their one-line errors, the built-in generators,
and the ``load_points`` spec strings."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from ganscope.data.points import (
    MIN_POINTS,
    POINT_SETS,
    PointSet,
    load_points,
    point_set_params,
    read_points,
)
from ganscope.errors import ConfigError, DataError

# 20 distinct points, exactly representable in float32 and in decimal
XY = np.array([[i * 0.5 - 4.0, 3.0 - i * 0.25] for i in range(20)], dtype=np.float32)


def rows(sep: str = ",", pts: np.ndarray = XY) -> list[str]:
    return [f"{x}{sep}{y}" for x, y in pts.tolist()]


def write(tmp_path, name: str, lines: list[str]) -> object:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


# --------------------------------------------------------------------------------------------
# Readers: good files


@pytest.mark.parametrize(
    "name, lines, header",
    [
        ("with_header.csv", ["x,y", *rows(",")], ["x", "y"]),
        ("no_header.csv", rows(","), None),
        ("semicolons.csv", ["x;y", *rows(";")], ["x", "y"]),
        ("spaced.csv", [r.replace(",", " , ") for r in rows(",")], None),
        ("quoted.csv", ['"x","y"', *[f'"{x}","{y}"' for x, y in XY.tolist()]], ["x", "y"]),
        ("whitespace.txt", [r.replace(" ", "\t  ") for r in rows(" ")], None),
        ("whitespace.dat", ["# x y", "", *rows("   ")], None),
    ],
)
def test_read_text_formats(tmp_path, name, lines, header):
    p = write(tmp_path, name, lines)
    ps = read_points(p)
    assert isinstance(ps, PointSet)
    assert ps.points.dtype == np.float32 and ps.points.shape == (20, 2)
    np.testing.assert_array_equal(ps.points, XY)
    assert ps.name == "points" and ps.params == {"path": str(p)}
    assert ps.modes is None and ps.std is None and len(ps) == 20
    assert ps.source["kind"] == "file" and ps.source["format"] == "text"
    assert ps.source["path"] == str(p.resolve()) and ps.source["header"] == header
    assert ps.source["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert ps.source["n"] == 20


def test_read_npy(tmp_path):
    p = tmp_path / "pts.npy"
    np.save(p, XY.astype(np.float64))
    ps = read_points(p)
    np.testing.assert_array_equal(ps.points, XY)
    assert ps.points.dtype == np.float32
    assert ps.source["format"] == "npy"
    assert ps.source["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    np.save(p, (XY * 4).astype(np.int32))  # integers are numbers too
    np.testing.assert_array_equal(read_points(p).points, (XY * 4).astype(np.int32))


def test_read_points_min_points_exactly(tmp_path):
    p = write(tmp_path, "min.csv", rows(",", XY[:MIN_POINTS]))
    assert len(read_points(p)) == MIN_POINTS == 16


def test_sha256_changes_with_content(tmp_path):
    a = read_points(write(tmp_path, "a.csv", rows(",")))
    b = read_points(write(tmp_path, "b.csv", rows(",", XY[::-1])))
    assert a.source["sha256"] != b.source["sha256"]


# --------------------------------------------------------------------------------------------
# Readers: every bad case is one exact line


def _msg(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    p = tmp_path / "nope.csv"
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p} not found: check the path "
                       "(points:FILE reads .csv, .txt, .dat or .npy files)")


def test_name_too_long(tmp_path):  # found by tests/test_fuzz_inputs.py
    p = tmp_path / ("x" * 300 + ".csv")
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == f"points file {p}: cannot open it (File name too long); check the path"


def test_folder(tmp_path):
    with pytest.raises(DataError) as e:
        read_points(tmp_path)
    assert _msg(e) == (f"points file {tmp_path}: is a folder, not a file; "
                       "give a .csv, .txt, .dat or .npy file")


@pytest.mark.parametrize("name, what", [("pts.json", "unknown suffix '.json'"),
                                        ("pts", "no suffix")])
def test_unknown_suffix(tmp_path, name, what):
    p = write(tmp_path, name, rows(","))
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == f"points file {p}: {what}; save the points as .csv, .txt, .dat or .npy"


def test_bad_value_names_the_line(tmp_path):
    lines = ["x,y", *rows(",")]
    lines[4] = "1.0,abc"  # file line 5
    p = write(tmp_path, "bad.csv", lines)
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: line 5: cannot read 'abc' as a number; "
                       "fix or delete that line")


def test_decimal_comma_hint(tmp_path):
    p = write(tmp_path, "euro.csv", ["x;y", "1,5;2,0", *rows(";")])
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: line 2: cannot read '1,5' as a number (use a dot as "
                       "the decimal separator); fix or delete that line")


def test_three_columns(tmp_path):
    p = write(tmp_path, "xyz.csv", ["x,y,label", *[r + ",1" for r in rows(",")]])
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: line 2 has 3 columns, expected 2 (x, y); "
                       "keep only the x and y columns")


def test_one_column(tmp_path):
    p = write(tmp_path, "x.txt", [str(v) for v in XY[:, 0].tolist()])
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: line 1 has 1 column, expected 2 (x, y); "
                       "give one x, y pair per point")


@pytest.mark.parametrize("token, shown", [("nan", "nan"), ("NaN", "nan"), ("-inf", "-inf")])
def test_non_finite_names_the_line(tmp_path, token, shown):
    lines = rows(",")
    lines[16] = f"0.5,{token}"  # file line 17
    p = write(tmp_path, "nan.csv", lines)
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == f"points file {p}: line 17 holds {shown}; fix or delete that point"


def test_beyond_float32(tmp_path):
    lines = rows(",")
    lines[2] = "1e39,0"
    p = write(tmp_path, "big.csv", lines)
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: line 3 holds 1e+39, beyond float32 range; "
                       "rescale the points")


def test_too_few_points(tmp_path):
    p = write(tmp_path, "few.csv", ["x,y", *rows(",", XY[:5])])
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: holds only 5 points, at least 16 are needed; "
                       "add more points")


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file(tmp_path, content):
    p = tmp_path / "empty.csv"
    p.write_text(content)
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == f"points file {p}: the file is empty; write one x, y pair per line"


def test_header_only(tmp_path):
    p = write(tmp_path, "hdr.csv", ["# my points", "x,y"])
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == f"points file {p}: holds no points; write one x, y pair per line"


def test_not_utf8(tmp_path):
    p = tmp_path / "bin.txt"
    p.write_bytes(b"1 2\n\xff\xfe 3\n")
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: not a UTF-8 text file (byte 4 cannot be decoded); "
                       "save it as plain text, or as .npy with np.save")


def test_npy_one_dimensional(tmp_path):
    p = tmp_path / "flat.npy"
    np.save(p, XY[:, 0])
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: the array has shape (20,), expected (N, 2) with one "
                       "x, y row per point; save np.column_stack([x, y])")


def test_npy_three_columns(tmp_path):
    p = tmp_path / "xyz.npy"
    np.save(p, np.zeros((20, 3)))
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: the array has 3 columns, expected 2 (x, y); "
                       "keep only the x and y columns")


def test_npy_nan(tmp_path):
    p = tmp_path / "nan.npy"
    a = XY.copy()
    a[3, 1] = np.nan
    np.save(p, a)
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == f"points file {p}: points[3] holds nan; fix or delete that point"


def test_npy_too_few(tmp_path):
    p = tmp_path / "few.npy"
    np.save(p, XY[:3])
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: holds only 3 points, at least 16 are needed; "
                       "add more points")


def test_npy_objects_and_strings(tmp_path):
    p = tmp_path / "obj.npy"
    np.save(p, np.array([[1, "a"]] * 20, dtype=object), allow_pickle=True)
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: the array holds Python objects; save a plain float "
                       "array with np.save")
    np.save(p, np.array([["1", "2"]] * 20))
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: the array has dtype <U1, expected numbers; "
                       "save a float array of shape (N, 2)")


def test_npy_corrupt(tmp_path):
    p = tmp_path / "bad.npy"
    p.write_bytes(b"1.0,2.0\n" * 20)
    with pytest.raises(DataError) as e:
        read_points(p)
    assert _msg(e) == (f"points file {p}: not a .npy file (no NUMPY header); save the points "
                       "with np.save, or as text with a .csv, .txt or .dat suffix")
    p.write_bytes(np.lib.format.magic(1, 0) + b"\x10\x00{'descr'")  # truncated header
    with pytest.raises(DataError) as e:
        read_points(p)
    msg = _msg(e)
    assert msg.startswith(f"points file {p}: not a readable .npy file (")
    assert msg.endswith("); re-save it with np.save")


# --------------------------------------------------------------------------------------------
# Generators

ALL = ["circles", "grid25", "moons", "ring8", "spiral", "swissroll"]


def test_registry_names():
    assert POINT_SETS.names() == ALL


def test_parameters_beyond_float32_are_one_line():  # found by tests/test_fuzz_inputs.py
    with pytest.raises(ConfigError) as e:
        load_points("ring8:std=1e300", 8, 0)
    assert _msg(e) == ("point set ring8: radius=2.0, std=1e+300 put points beyond float32 "
                       "range (about 3.4e38); use smaller values")


def test_defaults():
    assert point_set_params("ring8") == {"radius": 2.0, "std": 0.02}
    assert point_set_params("grid25") == {"spacing": 2.0, "std": 0.05}
    assert point_set_params("swissroll") == {"noise": 0.25 / 7.5}
    assert point_set_params("spiral") == {"arms": 2, "turns": 1.5, "noise": 0.05}
    assert point_set_params("moons") == {"noise": 0.05}
    assert point_set_params("circles") == {"factor": 0.5, "noise": 0.05}


@pytest.mark.parametrize("name", ALL)
def test_generator_deterministic_and_shaped(name):
    a = load_points(name, 500, seed=3)
    b = load_points(name, 500, seed=3)
    c = load_points(name, 500, seed=4)
    assert a.points.shape == (500, 2) and a.points.dtype == np.float32
    assert np.isfinite(a.points).all()
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)
    assert a.name == name and a.params == point_set_params(name)
    assert a.source == {"kind": "generator", "generator": name, "params": a.params, "seed": 3,
                        "n": 500, "spec": a.source["spec"]}
    assert a.source["spec"].startswith(name + ":")
    # the canonical spec reproduces the set
    np.testing.assert_array_equal(load_points(a.source["spec"], 500, 3).points, a.points)
    bound = 4.5 if name == "grid25" else 2.5
    assert np.abs(a.points).max() < bound
    if name in ("ring8", "grid25"):
        assert a.modes is not None and a.std is not None
    else:
        assert a.modes is None and a.std is None


def test_ring8_has_8_distinct_modes_at_radius_2():
    ps = load_points("ring8", 10, 0)
    assert ps.modes.shape == (8, 2) and ps.std == 0.02
    np.testing.assert_allclose(np.linalg.norm(ps.modes, axis=1), 2.0)
    assert len(np.unique(np.round(ps.modes, 9), axis=0)) == 8
    d = np.linalg.norm(ps.modes[:, None] - ps.modes[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(d.min(), 2 * 2.0 * math.sin(math.pi / 8))  # neighbours 45° apart
    np.testing.assert_allclose(ps.modes[0], [2.0, 0.0])
    # the angles are exactly 2*pi*k/8, k = 0..7 (not linspace(0, 2*pi, 8), which repeats angle
    # 0 as 2*pi and gives 7 modes)
    angles = np.sort(np.mod(np.arctan2(ps.modes[:, 1], ps.modes[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(8) / 8, atol=1e-12)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_samples_concentrate_at_modes(name):
    ps = load_points(name, 4000, seed=1)
    d = np.linalg.norm(ps.points[:, None, :] - ps.modes[None], axis=-1)
    near = d.min(axis=1)
    assert (near <= 4 * ps.std).mean() > 0.995  # 1 - exp(-8) = 0.99966 in 2-D
    counts = np.bincount(d.argmin(axis=1), minlength=len(ps.modes))
    expect = 4000 / len(ps.modes)
    assert (np.abs(counts - expect) < 5 * math.sqrt(expect)).all()  # equal weights
    # per-axis spread matches std
    resid = ps.points - ps.modes[d.argmin(axis=1)]
    np.testing.assert_allclose(resid.std(axis=0), ps.std, rtol=0.06)


def test_grid25_modes_are_the_grid():
    ps = load_points("grid25", 10, 0)
    grid = {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(m) for m in ps.modes.tolist()} == grid and len(ps.modes) == 25
    assert ps.std == 0.05


def test_shapes_look_right():
    c = load_points("circles:noise=0", 400, 0).points
    r = np.linalg.norm(c, axis=1)
    assert np.allclose(np.minimum(abs(r - 2.0), abs(r - 1.0)), 0, atol=1e-5)
    s = load_points("spiral:noise=0", 400, 0).points
    assert np.linalg.norm(s, axis=1).max() <= 2.0 + 1e-6
    sw = load_points("swissroll:noise=0", 400, 0).points
    r = np.linalg.norm(sw, axis=1) * 7.5
    assert r.min() >= 1.5 * np.pi - 1e-4 and r.max() <= 4.5 * np.pi + 1e-4
    m = load_points("moons:noise=0", 400, 0).points
    assert m[:, 0].min() >= -2 - 1e-6 and m[:, 0].max() <= 2 + 1e-6
    assert m[:, 1].min() >= -1 - 1e-6 and m[:, 1].max() <= 1 + 1e-6


# --------------------------------------------------------------------------------------------
# Specs


def test_params_override():
    ps = load_points("ring8:radius=1.5,std=0.05", 1000, 0)
    assert ps.params == {"radius": 1.5, "std": 0.05} and ps.std == 0.05
    np.testing.assert_allclose(np.linalg.norm(ps.modes, axis=1), 1.5)
    assert ps.source["spec"] == "ring8:radius=1.5,std=0.05"
    partial = load_points(" ring8 : std = 0.1 ", 10, 0)
    assert partial.params == {"radius": 2.0, "std": 0.1}
    assert load_points("ring8:", 10, 0).params == {"radius": 2.0, "std": 0.02}
    spiral = load_points("spiral:arms=3", 10, 0)
    assert spiral.params["arms"] == 3 and isinstance(spiral.params["arms"], int)


def test_points_spec_reads_the_whole_file(tmp_path):
    p = write(tmp_path, "mine.csv", rows(","))
    ps = load_points(f"points:{p}", n=5, seed=9)
    assert len(ps) == 20 and ps.source["path"] == str(p.resolve())
    with pytest.raises(DataError):
        load_points(f"points:{tmp_path / 'missing.csv'}", 5, 0)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ring9", "unknown point set 'ring9': choose one of circles, grid25, moons, ring8, "
                  "spiral, swissroll, or points:FILE for your own .csv, .txt, .dat or .npy file"),
        ("ring8:radius=1.5,sigma=0.1",
         "point set ring8 has no parameter 'sigma': valid ones are radius, std "
         "(e.g. ring8:radius=2.0,std=0.02)"),
        ("ring8:radius=big",
         "point set ring8: radius=big is not a number (e.g. ring8:radius=2.0,std=0.02)"),
        ("ring8:radius", "point set ring8: cannot read 'radius', expected key=value "
                         "(e.g. ring8:radius=2.0,std=0.02)"),
        ("ring8:std=0.1,std=0.2", "point set ring8: std given twice; give it once"),
        ("ring8:std=nan", "point set ring8: std=nan is not finite; give a number"),
        ("ring8:std=-1", "point set ring8: std must be >= 0, got -1.0"),
        ("ring8:radius=0", "point set ring8: radius must be > 0, got 0.0"),
        ("spiral:arms=2.5", "point set spiral: arms=2.5 is not a whole number "
                            "(e.g. spiral:arms=2,turns=1.5,noise=0.05)"),
        ("circles:factor=1", "point set circles: factor must be in (0, 1), got 1.0"),
        ("points:", "points: needs a file after the colon, e.g. points:my_points.csv"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ConfigError) as e:
        load_points(spec, 100, 0)
    assert str(e.value) == message


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_n(n):
    with pytest.raises(ConfigError) as e:
        load_points("ring8", n, 0)
    assert str(e.value) == ("point set ring8: number of points must be a whole number >= 1, "
                            f"got {n!r}")
