"""2-D point data for the 2-D lab: built-in toy distributions and the user's own point files.

Built-ins (``POINT_SETS``) are drawn i.i.d. from ``np.random.default_rng(seed)``, so the same
``(spec, n, seed)`` always gives the same points. Mixtures (``ring8``, ``grid25``) also carry
their mode centres and per-axis std, which ``ganscope.domains.points.metrics.mode_stats``
needs; the other shapes (``swissroll``, ``spiral``, ``moons``, ``circles``) have
``modes=None`` and are measured with the sample distances only. Everything is scaled to roughly [-2, 2] except
``grid25``, whose modes sit at {-4, -2, 0, 2, 4}^2 as in PacGAN / VEEGAN.

``load_points`` takes the spec strings of configs and the CLI::

    ring8                       the built-in with its defaults
    ring8:radius=1.5,std=0.05   the built-in with some parameters overridden
    points:FILE                 every point of a .csv, .txt, .dat or .npy file

Every expected failure is one actionable line: ``DataError`` for a file, ``ConfigError`` for a
spec or parameter.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganscope.errors import ConfigError, DataError
from ganscope.registry import Registry

MIN_POINTS = 16
TEXT_SUFFIXES = (".csv", ".txt", ".dat")
SUFFIXES = (*TEXT_SUFFIXES, ".npy")
_SUFFIX_LIST = ".csv, .txt, .dat or .npy"
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class PointSet:
    """A 2-D point cloud plus what it is and where it came from.

    ``params`` holds every shape parameter of a built-in (defaults filled in) or ``{"path": ...}``
    for a file; ``n`` and ``seed`` live in ``source``. ``modes`` (K, 2) and ``std`` (per-axis std
    of every isotropic component) are set for the built-in Gaussian mixtures. For a file the
    points domain sets ``modes`` from a fitted mixture instead (``modes_found``), with each
    component's ``covs`` (K, 2, 2) and ``weights`` (K,) and no single ``std``
    (``ganscope.domains.points.modes``).
    """

    points: np.ndarray  # float32 (N, 2)
    name: str
    params: dict = field(default_factory=dict)
    modes: np.ndarray | None = None
    std: float | None = None
    source: dict = field(default_factory=dict)
    covs: np.ndarray | None = None
    weights: np.ndarray | None = None
    modes_found: bool = False

    def __len__(self) -> int:
        return int(self.points.shape[0])


# --------------------------------------------------------------------------------------------
# User files


def _fail(path: Path, what: str) -> DataError:
    return DataError(f"points file {path}: {what}")


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def _columns_error(path: Path, where: str, k: int) -> DataError:
    fix = "keep only the x and y columns" if k > 2 else "give one x, y pair per point"
    return _fail(path, f"{where} has {_plural(k, 'column')}, expected 2 (x, y); {fix}")


def _value_text(v: float) -> str:
    return repr(float(v))  # 'nan', 'inf', '-inf', '1e+39'


def _parse_text(path: Path, raw: bytes) -> tuple[np.ndarray, list[str] | None]:
    """Rows as float64 (N, 2) and the header if there was one; errors name 1-based lines.

    The separator is taken from the first content line: ``;`` if it holds one, else ``,`` if it
    holds one, else whitespace -- whatever the suffix says. Blank lines and lines starting with
    ``#`` are skipped. The first content line is a header when none of its fields is a number.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _fail(path, f"not a UTF-8 text file (byte {e.start} cannot be decoded); "
                          "save it as plain text, or as .npy with np.save") from None
    sep: str | None = None
    header: list[str] | None = None
    rows: list[tuple[float, float]] = []
    first = True
    for no, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if first:
            sep = ";" if ";" in s else ("," if "," in s else None)
        fields = [f.strip().strip('"').strip() for f in s.split(sep)]
        if first:
            first = False
            if not any(_is_number(f) for f in fields):
                header = fields
                continue
        if len(fields) != 2:
            raise _columns_error(path, f"line {no}", len(fields))
        vals = []
        for f in fields:
            try:
                vals.append(float(f))
            except ValueError:
                hint = " (use a dot as the decimal separator)" if "," in f else ""
                raise _fail(path, f"line {no}: cannot read {f!r} as a number{hint}; "
                                  "fix or delete that line") from None
        for v in vals:
            if not math.isfinite(v):
                raise _fail(path, f"line {no} holds {_value_text(v)}; fix or delete that point")
            if abs(v) > _F32_MAX:
                raise _fail(path, f"line {no} holds {_value_text(v)}, beyond float32 range; "
                                  "rescale the points")
        rows.append((vals[0], vals[1]))
    if not rows:
        raise _fail(path, "holds no points; write one x, y pair per line")
    return np.asarray(rows, dtype=np.float64), header


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _parse_npy(path: Path, raw: bytes) -> np.ndarray:
    if not raw.startswith(b"\x93NUMPY"):
        raise _fail(path, "not a .npy file (no NUMPY header); save the points with np.save, "
                          "or as text with a .csv, .txt or .dat suffix")
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise _fail(path, "the array holds Python objects; save a plain float array "
                              "with np.save") from None
        raise _fail(path, f"not a readable .npy file ({str(e).splitlines()[0]}); "
                          "re-save it with np.save") from None
    except (OSError, EOFError) as e:
        raise _fail(path, f"not a readable .npy file ({e}); re-save it with np.save") from None
    if not isinstance(arr, np.ndarray):  # pragma: no cover - np.load of .npy bytes
        raise _fail(path, "not a single .npy array; save one (N, 2) array with np.save")
    if arr.dtype.kind not in "iuf":
        raise _fail(path, f"the array has dtype {arr.dtype}, expected numbers; "
                          "save a float array of shape (N, 2)")
    if arr.ndim == 2 and arr.shape[1] != 2:
        raise _columns_error(path, "the array", int(arr.shape[1]))
    if arr.ndim != 2:
        raise _fail(path, f"the array has shape {tuple(arr.shape)}, expected (N, 2) with one "
                          "x, y row per point; save np.column_stack([x, y])")
    if arr.shape[0] == 0:
        raise _fail(path, "holds no points; save an (N, 2) array")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | (np.abs(arr) > _F32_MAX)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        extra = "" if not math.isfinite(arr[i, j]) else ", beyond float32 range"
        raise _fail(path, f"points[{i}] holds {_value_text(arr[i, j])}{extra}; "
                          "fix or delete that point")
    return arr


def read_points(path: str | Path) -> PointSet:
    """Read a user's point file: CSV (``,`` or ``;``, header optional), whitespace TXT/.dat, .npy.

    The result must be N >= ``MIN_POINTS`` finite (x, y) rows; extra columns are an error, never
    silently dropped. The file's SHA-256 goes into ``source`` so runs record exactly what they saw.
    """
    p = Path(path)
    try:
        p.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"points file {p} not found: check the path "
                        f"(points:FILE reads {_SUFFIX_LIST} files)") from None
    except (OSError, ValueError) as e:  # a name too long, a loop of links, a NUL byte, ...
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise _fail(p, f"cannot open it ({why}); check the path") from None
    if p.is_dir():
        raise _fail(p, f"is a folder, not a file; give a {_SUFFIX_LIST} file")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        what = f"unknown suffix {p.suffix!r}" if p.suffix else "no suffix"
        raise _fail(p, f"{what}; save the points as {_SUFFIX_LIST}")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise _fail(p, f"cannot read it ({e.strerror or e}); check its permissions") from None
    if not raw.strip():
        raise _fail(p, "the file is empty; write one x, y pair per line")
    header: list[str] | None = None
    if suffix == ".npy":
        arr = _parse_npy(p, raw)
        fmt = "npy"
    else:
        arr, header = _parse_text(p, raw)
        fmt = "text"
    n = int(arr.shape[0])
    if n < MIN_POINTS:
        raise _fail(p, f"holds only {_plural(n, 'point')}, at least {MIN_POINTS} are needed; "
                       "add more points")
    source = {
        "kind": "file",
        "path": str(p.resolve()),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "format": fmt,
        "header": header,
        "n": n,
    }
    return PointSet(points=arr.astype(np.float32), name="points", params={"path": str(p)},
                    source=source)


# --------------------------------------------------------------------------------------------
# Built-in generators

PointSetFn = Callable[..., PointSet]
POINT_SETS: Registry[PointSetFn] = Registry("point set")


def _need(ok: bool, name: str, what: str) -> None:
    if not ok:
        raise ConfigError(f"point set {name}: {what}")


def _mixture(name: str, modes: np.ndarray, std: float, n: int, seed: int,
             params: dict) -> PointSet:
    """Equal-weight isotropic Gaussians: pick a mode uniformly per point, add N(0, std^2 I)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(modes), size=n)
    pts = modes[idx] + std * rng.standard_normal((n, 2))
    return _built(name, pts, n, seed, params, modes=modes, std=std)


def _built(name: str, pts: np.ndarray, n: int, seed: int, params: dict,
           modes: np.ndarray | None = None, std: float | None = None) -> PointSet:
    with np.errstate(over="ignore", invalid="ignore"):
        pts32 = np.ascontiguousarray(pts, dtype=np.float32)
    _need(bool(np.isfinite(pts32).all()), name,
          f"{', '.join(f'{k}={v!r}' for k, v in sorted(params.items()))} put points beyond "
          "float32 range (about 3.4e38); use smaller values")
    return PointSet(
        points=pts32,
        name=name,
        params=dict(params),
        modes=None if modes is None else np.asarray(modes, dtype=np.float64),
        std=None if std is None else float(std),
        source={"kind": "generator", "generator": name, "params": dict(params),
                "seed": int(seed), "n": int(n), "spec": format_spec(name, params)},
    )


@POINT_SETS.register("ring8")
def ring8(n: int, seed: int, *, radius: float = 2.0, std: float = 0.02) -> PointSet:
    """8 Gaussians evenly spaced on a circle (Unrolled GAN, Metz et al. 2017: radius 2, std 0.02).

    Mode k sits at angle 2*pi*k/8, k = 0..7. Not ``np.linspace(0, 2*pi, 8)``: that includes both
    0 and 2*pi, the same point, so it gives only 7 distinct modes (one of them twice as heavy).
    PacGAN's 2D-ring is the same shape at radius 1, std 0.01 (``ring8:radius=1,std=0.01``).
    """
    _need(radius > 0, "ring8", f"radius must be > 0, got {radius}")
    _need(std >= 0, "ring8", f"std must be >= 0, got {std}")
    angles = 2 * np.pi * np.arange(8) / 8
    modes = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _mixture("ring8", modes, std, n, seed, {"radius": radius, "std": std})


@POINT_SETS.register("grid25")
def grid25(n: int, seed: int, *, spacing: float = 2.0, std: float = 0.05) -> PointSet:
    """25 Gaussians on a 5x5 grid, modes at spacing*{-2..2}^2 = {-4,-2,0,2,4}^2 (PacGAN/VEEGAN).

    std 0.05 is PacGAN's 2D-grid setting (variance 0.0025).
    """
    _need(spacing > 0, "grid25", f"spacing must be > 0, got {spacing}")
    _need(std >= 0, "grid25", f"std must be >= 0, got {std}")
    axis = spacing * np.arange(-2, 3, dtype=np.float64)
    modes = np.array([(x, y) for x in axis for y in axis])
    return _mixture("grid25", modes, std, n, seed, {"spacing": spacing, "std": std})


@POINT_SETS.register("swissroll")
def swissroll(n: int, seed: int, *, noise: float = 0.25 / 7.5) -> PointSet:
    """The 2-D Swiss roll of the WGAN-GP toy code (gan_toy.py), in its units.

    t ~ U(1.5*pi, 4.5*pi); (t cos t, t sin t) / 7.5, so the roll spans about [-1.7, 1.9].
    ``noise`` is the std of the added Gaussian in output units; the default equals gan_toy.py's
    ``make_swiss_roll(noise=0.25)`` before its division by 7.5.
    """
    _need(noise >= 0, "swissroll", f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 7.5
    pts += noise * rng.standard_normal((n, 2))
    return _built("swissroll", pts, n, seed, {"noise": noise})


@POINT_SETS.register("spiral")
def spiral(n: int, seed: int, *, arms: int = 2, turns: float = 1.5,
           noise: float = 0.05) -> PointSet:
    """``arms`` interleaved Archimedean spiral arms reaching radius 2 (the "2 spirals" toy).

    Along an arm u = sqrt(U(0, 1)) gives roughly uniform density per arc length; the point is at
    radius 2u and angle 2*pi*(turns*u + arm/arms), plus N(0, noise^2 I).
    """
    _need(arms >= 1, "spiral", f"arms must be >= 1, got {arms}")
    _need(turns > 0, "spiral", f"turns must be > 0, got {turns}")
    _need(noise >= 0, "spiral", f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, arms, size=n)
    u = np.sqrt(rng.random(n))
    theta = 2 * np.pi * (turns * u + arm / arms)
    pts = 2 * u[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    pts += noise * rng.standard_normal((n, 2))
    return _built("spiral", pts, n, seed, {"arms": arms, "turns": turns, "noise": noise})


@POINT_SETS.register("moons")
def moons(n: int, seed: int, *, noise: float = 0.05) -> PointSet:
    """Two interleaving half circles (sklearn's make_moons shape), scaled by 4/3 and centred.

    sklearn's moons span x in [-1, 2], y in [-0.5, 1]; here x in [-2, 2], y in [-1, 1]. Each point
    picks a moon and an angle at random (i.i.d., unlike sklearn's evenly spaced angles); ``noise``
    is the Gaussian std in output units.
    """
    _need(noise >= 0, "moons", f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    inner = rng.integers(0, 2, size=n).astype(bool)
    t = np.pi * rng.random(n)
    x = np.where(inner, 1 - np.cos(t), np.cos(t))
    y = np.where(inner, 0.5 - np.sin(t), np.sin(t))
    pts = (np.stack([x, y], axis=1) - (0.5, 0.25)) * (4 / 3)
    pts += noise * rng.standard_normal((n, 2))
    return _built("moons", pts, n, seed, {"noise": noise})


@POINT_SETS.register("circles")
def circles(n: int, seed: int, *, factor: float = 0.5, noise: float = 0.05) -> PointSet:
    """Two concentric circles (sklearn's make_circles shape): radius 2 and 2*factor.

    Each point picks a circle and an angle at random (i.i.d.); ``noise`` is the Gaussian std in
    output units.
    """
    _need(0 < factor < 1, "circles", f"factor must be in (0, 1), got {factor}")
    _need(noise >= 0, "circles", f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    r = np.where(rng.integers(0, 2, size=n).astype(bool), 2.0 * factor, 2.0)
    t = 2 * np.pi * rng.random(n)
    pts = r[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    pts += noise * rng.standard_normal((n, 2))
    return _built("circles", pts, n, seed, {"factor": factor, "noise": noise})


# --------------------------------------------------------------------------------------------
# Specs


def point_set_params(name: str) -> dict[str, int | float]:
    """The parameters of built-in ``name`` and their defaults (raises ConfigError if unknown)."""
    fn = _get(name)
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def format_spec(name: str, params: dict) -> str:
    """The canonical spec string, e.g. ``ring8:radius=2.0,std=0.02`` (sorted keys)."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={params[k]!r}" for k in sorted(params))


def _get(name: str) -> PointSetFn:
    if name not in POINT_SETS:
        raise ConfigError(
            f"unknown point set {name!r}: choose one of {', '.join(POINT_SETS.names())}, "
            "or points:FILE for your own .csv, .txt, .dat or .npy file"
        )
    return POINT_SETS.get(name)


def _parse_params(name: str, text: str) -> dict[str, int | float]:
    defaults = point_set_params(name)
    valid = ", ".join(defaults) or "none"
    example = f"{name}:" + ",".join(f"{k}={v!r}" for k, v in defaults.items())
    out: dict[str, int | float] = {}
    for item in text.split(","):
        item = item.strip()
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise ConfigError(f"point set {name}: cannot read {item!r}, expected key=value "
                              f"(e.g. {example})")
        if key not in defaults:
            raise ConfigError(f"point set {name} has no parameter {key!r}: valid ones are "
                              f"{valid} (e.g. {example})")
        if key in out:
            raise ConfigError(f"point set {name}: {key} given twice; give it once")
        kind = int if isinstance(defaults[key], int) else float
        try:
            num = kind(value)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ConfigError(f"point set {name}: {key}={value} is not {what} "
                              f"(e.g. {example})") from None
        if not math.isfinite(num):
            raise ConfigError(f"point set {name}: {key}={value} is not finite; give a number")
        out[key] = num
    return out


def load_points(spec: str, n: int, seed: int) -> PointSet:
    """Resolve a spec: ``NAME``, ``NAME:key=value,...`` (n points from ``seed``) or
    ``points:FILE`` (every point of the file; ``n`` and ``seed`` are ignored)."""
    spec = spec.strip()
    name, colon, rest = spec.partition(":")
    name = name.strip()
    if name == "points":
        if not rest.strip():
            raise ConfigError("points: needs a file after the colon, e.g. points:my_points.csv")
        return read_points(rest.strip())
    fn = _get(name)
    params = _parse_params(name, rest) if colon and rest.strip() else {}
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"point set {name}: number of points must be a whole number >= 1, "
                          f"got {n!r}")
    return fn(int(n), int(seed), **params)


__all__ = [
    "MIN_POINTS",
    "POINT_SETS",
    "PointSet",
    "circles",
    "format_spec",
    "grid25",
    "load_points",
    "moons",
    "point_set_params",
    "read_points",
    "ring8",
    "spiral",
    "swissroll",
]
