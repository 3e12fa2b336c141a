"""The value lists of the latent and directions commands and the seed lab: ``--shift -10,0,10``,
``--dims 0-9,20``, ``--steps -3:3:7``. A bad value is one UserError line naming the option."""

from __future__ import annotations

import re

import numpy as np

from ganscope.errors import UserError


def parse_numbers(text: str, flag: str) -> list[float]:
    """'-10,0,10' -> [-10.0, 0.0, 10.0]; anything else is one UserError line."""
    try:
        out = [float(p) for p in text.split(",")]
    except ValueError:
        raise UserError(f"{flag} must be numbers separated by commas, got '{text}'") from None
    return out


def parse_ints(text: str, flag: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",")]
    except ValueError:
        raise UserError(f"{flag} must be integers separated by commas, got '{text}'") from None


def parse_steps(text: str) -> list[float]:
    """'START:STOP:COUNT' (evenly spaced, ends included) or 'S,S,...'."""
    bad = (f"--steps must be START:STOP:COUNT (e.g. -3:3:7) or numbers separated by commas, "
           f"got '{text}'")
    if ":" in text:
        parts = text.split(":")
        try:
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        except (ValueError, IndexError):
            raise UserError(bad) from None
        if len(parts) != 3 or count < 1:
            raise UserError(bad)
        return [round(float(v), 10) for v in np.linspace(start, stop, count)]
    try:
        return parse_numbers(text, "--steps")
    except UserError:
        raise UserError(bad) from None


def parse_dims(text: str) -> list[int]:
    """'0-99', '5,20,40' or a mix ('0-9,20'): dims in the order given, ranges inclusive."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise UserError(f"--dims must be dims or ranges like 0-99 or 5,20,40, got '{text}'")
        a, b = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if b < a:
            raise UserError(f"--dims range {a}-{b} is empty: write the smaller dim first")
        out.extend(range(a, b + 1))
    return out
