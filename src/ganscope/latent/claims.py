"""Hold the seeds' claims about latent dims (claims.yaml) against a probe's measurements.

A claim about one dim holds only when the probe calls the claimed effect *real* with the claimed
sign, by the probe's one rule (:func:`ganscope.latent.probe.stats.is_real`): beyond random
directions *and* at least the measure's practical floor (0.02 class probability or 1 % of full
scale per unit). A dim that moves trousers to sandals no more than an arbitrary direction does
is not "the trousers-heels dim", and neither is one that moves p(Trouser) by 0.004 per unit
because the generator never makes trousers (issue 22). General
claims ("large values darken the image") have their own tests, each defined in its docstring.
Verdicts: ``holds``, ``fails`` or ``untestable`` (the dim was not probed, the probe was of
another kind of model, or the needed shift values are missing), always with the numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ganscope.config import load_yaml
from ganscope.errors import UserError
from ganscope.latent.interpolate import resolve_class
from ganscope.latent.probe.effects import CLASS_EFFECTS, CLASS_NAME, CLASSES, class_effect_name
from ganscope.latent.probe.result import ProbeResult
from ganscope.latent.probe.stats import floors, is_real, null_threshold, range_label

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
VERDICTS = ("holds", "fails", "untestable")
DIRECTIONS = ("+", "-", "any", "none")


def load_claims(path: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The claims list from a YAML file (default: the seeds' claims shipped with ganscope)."""
    p = Path(path) if path is not None else CLAIMS_FILE
    try:
        data = load_yaml(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read claims file {p} ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise UserError(f"claims file {p} is not valid YAML ({str(e).splitlines()[0]})") from None
    claims = data.get("claims") if isinstance(data, dict) else None
    if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
        raise UserError(f"claims file {p} must hold `claims:` with a list of mappings")
    return claims


# --- helpers ----------------------------------------------------------------------------------


def _class_columns(names: Sequence[str]) -> list[str]:
    return [class_effect_name(CLASSES[resolve_class(n)]) for n in names]


def _combo(res: ProbeResult, cols: Sequence[str], d: int
           ) -> tuple[float, float, float, float, float]:
    """(slope, null median |slope|, threshold, floor, span) of the sum of effects ``cols`` at
    dim d: the null of a sum is the sum along each random direction, thresholded by the probe's
    rule; its floor is the largest of the parts' (a summed class probability has the class
    floor); its span the sum of the parts' measured change over the sweep."""
    j = [res.effects.index(c) for c in cols]
    i = res.dims.index(d)
    slope = float(res.slopes[i, j].sum())
    null = res.null_slopes[:, j].sum(axis=1)
    med = float(np.median(np.abs(null)))
    thr = float(null_threshold(null[:, None], len(res.dims), res.alpha, res.z_dim)[0])
    floor = float(floors(cols).max())
    return slope, med, thr, floor, float(res.span[i, j].sum())


def _label(cols: Sequence[str]) -> str:
    if all(c in CLASS_NAME for c in cols):
        return "p(" + "+".join(CLASS_NAME[c] for c in cols) + ")"
    return "+".join(cols)


def _fmt(label: str, slope: float, span: float, rl: str, ratio: float, thr_ratio: float,
         floor: float) -> str:
    return (f"{label} {slope:+.4f}/unit, {span:+.3f} over {rl} ({ratio:.1f}x the null; real "
            f"above {thr_ratio:.1f}x and {floor:g}/unit)")


def _part(res: ProbeResult, cols: list[str], d: int, sign: int) -> tuple[bool, str]:
    """Whether the summed effect moves with ``sign`` and is real by the probe's rule (beyond
    the null and at least the floor), and the evidence."""
    slope, med, thr, floor, span = _combo(res, cols, d)
    ratio = abs(slope) / med if med > 0 else (float("inf") if slope else 0.0)
    ok = sign * slope > 0 and bool(is_real(slope, thr, floor))
    return ok, _fmt(_label(cols), slope, span, range_label(res.values), ratio,
                    thr / med if med > 0 else float("inf"), floor)


def _ends(res: ProbeResult) -> tuple[int, int, int] | None:
    """Indices of the most negative, zero and most positive shift, if the sweep has all three."""
    v = np.asarray(res.values)
    if 0.0 not in res.values or v.min() >= 0 or v.max() <= 0:
        return None
    return int(v.argmin()), res.values.index(0.0), int(v.argmax())


# --- general tests ----------------------------------------------------------------------------


def large_values_darken(res: ProbeResult, claim: dict[str, Any]) -> tuple[str, str]:
    """Holds when, in more than ``min_fraction`` (default 0.5) of the probed dims, the mean
    brightness at both ends of the sweep (e.g. shifts -3 and +3) is below that at shift 0.
    The same fraction along random directions is given for comparison."""
    ends = _ends(res)
    if ends is None:
        return "untestable", "needs shifts below 0, at 0 and above 0 (e.g. -3..3)"
    lo, zero, hi = ends
    b = res.effects.index("brightness")

    def darker(c: np.ndarray) -> np.ndarray:
        return (c[:, lo, b] < c[:, zero, b]) & (c[:, hi, b] < c[:, zero, b])

    frac = float(darker(res.curves).mean())
    nfrac = float(darker(res.null_curves).mean())
    change = 50 * (res.curves[:, lo, b] + res.curves[:, hi, b] - 2 * res.curves[:, zero, b])
    need = float(claim.get("min_fraction", 0.5))
    ev = (f"both ends ({res.values[lo]:g}, {res.values[hi]:+g}) darker than 0 in "
          f"{int(darker(res.curves).sum())}/{len(res.dims)} dims ({100 * frac:.0f} %, random "
          f"directions {100 * nfrac:.0f} %, needs > {100 * need:.0f} %); median brightness "
          f"change at the ends {np.median(change):+.2f} % of full scale")
    return ("holds" if frac > need else "fails"), ev


def one_dim_changes_little(res: ProbeResult, claim: dict[str, Any]) -> tuple[str, str]:
    """Holds when the median over dims of the per-unit pixel change (mean |x - x0| for a shift
    of 1, i.e. one prior standard deviation) is below ``max_fraction`` (default 0.10) of the
    mean pixel distance between two unrelated samples."""
    j = res.effects.index("pixel_change")
    per_unit = float(np.median(res.slopes[:, j]))
    base = res.baseline_pixel_distance
    need = float(claim.get("max_fraction", 0.10))
    if base <= 0:
        return "untestable", "all base samples are identical: no scale to compare with"
    share = per_unit / base
    ev = (f"a 1-unit shift of one dim changes pixels by {100 * per_unit:.2f} % of full scale "
          f"(median over {len(res.dims)} dims) vs {100 * base:.1f} % between unrelated samples: "
          f"{share:.3f} of it (little: < {need:g})")
    return ("holds" if share < need else "fails"), ev


def mostly_brightness(res: ProbeResult, claim: dict[str, Any]) -> tuple[str, str]:
    """Holds when the change of mean brightness at the ends of the sweep is more than
    ``min_share`` (default 0.5) of the mean |pixel change| there, summed over all probed dims
    (so dims that change nothing do not count): a pure brightness change has share 1 (every
    pixel moves the same way), a change of shape at constant brightness has share 0."""
    ends = _ends(res)
    if ends is None:
        return "untestable", "needs shifts below 0, at 0 and above 0 (e.g. -3..3)"
    lo, zero, hi = ends
    b, pc = res.effects.index("brightness"), res.effects.index("pixel_change")
    c = res.curves
    num = float((np.abs(c[:, lo, b] - c[:, zero, b]) + np.abs(c[:, hi, b] - c[:, zero, b])).sum())
    den = float((c[:, lo, pc] + c[:, hi, pc]).sum())
    if den <= 0:
        return "untestable", "no probed dim changes any pixel"
    share = num / den
    need = float(claim.get("min_share", 0.5))
    ev = (f"brightness accounts for {100 * share:.0f} % of the pixel change at shifts "
          f"{res.values[lo]:g}/{res.values[hi]:+g} (all {len(res.dims)} dims together; "
          f"needs > {100 * need:.0f} %)")
    return ("holds" if share > need else "fails"), ev


GENERAL_TESTS: dict[str, Callable[[ProbeResult, dict[str, Any]], tuple[str, str]]] = {
    "large_values_darken": large_values_darken,
    "one_dim_changes_little": one_dim_changes_little,
    "mostly_brightness": mostly_brightness,
}


# --- one claim --------------------------------------------------------------------------------


def _check_dim(res: ProbeResult, c: dict[str, Any]) -> tuple[str, str]:
    d = c.get("dim")
    if not isinstance(d, int) or isinstance(d, bool):
        raise UserError(f"claim {c.get('id', '?')}: dim must be an integer, got {d!r}")
    direction = str(c.get("direction", "+"))
    if direction not in DIRECTIONS:
        raise UserError(f"claim {c.get('id', '?')}: direction must be one of "
                        f"{', '.join(DIRECTIONS)}, got {direction!r}")
    if d not in res.dims:
        why = (f"z has only {res.z_dim} dims" if d >= res.z_dim
               else "the probe did not sweep it (see --dims)")
        return "untestable", f"dim {d} not probed: {why}"
    sign = -1 if direction == "-" else 1
    if "gain" in c or "lose" in c:
        if direction in ("any", "none"):
            raise UserError(f"claim {c.get('id', '?')}: gain/lose claims need direction + or -")
        parts = []
        oks = []
        for key, s in (("gain", sign), ("lose", -sign)):
            if c.get(key):
                try:
                    cols = _class_columns(c[key])
                except UserError as e:
                    raise UserError(f"claim {c.get('id', '?')}: {e}") from None
                if not all(col in res.effects for col in cols):
                    return "untestable", "the probe has no class probabilities"
                ok, ev = _part(res, cols, d, s)
                oks.append(ok)
                parts.append(ev)
        if not oks:
            raise UserError(f"claim {c.get('id', '?')}: give gain and/or lose classes")
        return ("holds" if all(oks) else "fails"), "; ".join(parts)
    effect = c.get("effect")
    if effect == "classes":
        cols = [e for e in CLASS_EFFECTS if e in res.effects]
        if not cols:
            return "untestable", "the probe has no class probabilities"
        i = res.dims.index(d)
        j = [res.effects.index(e) for e in cols]
        k = j[int(np.argmax(res.size[i, j]))]
        real = [res.effects[x] for x in j if res.real[i, x]]
        weak = [res.effects[x] for x in j if res.beyond_null[i, x] and not res.real[i, x]]
        ev = (f"real class effects: {', '.join(real) if real else 'none'}; largest "
              f"{res.effects[k]} {res.slopes[i, k]:+.4f}/unit, {res.span[i, k]:+.3f} over "
              f"{range_label(res.values)} ({res.ratio[i, k]:.1f}x the null)")
        if weak:
            ev += f"; beyond the null but under the {res.floor[j[0]]:g}/unit floor: "
            ev += ", ".join(weak)
        if direction == "none":
            return ("holds" if not real else "fails"), ev
        return ("holds" if real else "fails"), ev
    if effect not in res.effects:
        if not isinstance(effect, str):
            raise UserError(f"claim {c.get('id', '?')}: give effect, or gain/lose classes")
        return "untestable", f"the probe does not measure '{effect}'"
    if direction == "none":
        ok, ev = _part(res, [effect], d, 1)
        ok2, _ = _part(res, [effect], d, -1)
        return ("holds" if not (ok or ok2) else "fails"), ev
    if direction == "any":
        ok, ev = _part(res, [effect], d, 1)
        ok2, _ = _part(res, [effect], d, -1)
        return ("holds" if ok or ok2 else "fails"), ev
    ok, ev = _part(res, [effect], d, sign)
    return ("holds" if ok else "fails"), ev


def check(res: ProbeResult, claims: Sequence[dict[str, Any]] | None = None
          ) -> list[dict[str, Any]]:
    """One verdict per claim: {id, claim, seed, verdict (holds|fails|untestable), evidence}.

    ``claims`` default to the seeds' (claims.yaml). A claim with ``model`` is untestable on a
    probe of another model (the probe's info['model']; unknown models are tested).
    """
    claims = load_claims() if claims is None else claims
    model = res.info.get("model")
    out = []
    for c in claims:
        if not isinstance(c, dict):
            raise UserError(f"a claim must be a mapping, got {c!r}")
        want = c.get("model")
        if want and model and want != model:
            verdict, ev = "untestable", f"claim is about the {want} model, the probe is of {model}"
        elif "test" in c:
            fn = GENERAL_TESTS.get(str(c["test"]))
            if fn is None:
                raise UserError(f"claim {c.get('id', '?')}: unknown test '{c['test']}' (known: "
                                f"{', '.join(GENERAL_TESTS)})")
            verdict, ev = fn(res, c)
        else:
            verdict, ev = _check_dim(res, c)
        out.append({"id": c.get("id", ""), "claim": c.get("claim", c.get("id", "")),
                    "seed": str(c.get("seed", "")), "verdict": verdict, "evidence": ev})
    return out
