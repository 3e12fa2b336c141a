"""Parsers for subcommands whose option values may start with a minus: ``--steps -3:3:7``,
``--shift -10,0,10``.

argparse's own matcher knows only plain negative numbers ('-3', '-.5'), so ``--steps -3:3:7``
said "expected one argument". A parser with ``NEGATIVE_VALUE`` as its matcher (and no option
that looks like a number) reads such words as values; ``--steps=-3:3:7`` still works. One
class for every subcommand group that takes them (latent, directions).
"""

from __future__ import annotations

import argparse
import re

from ganscope.errors import UserError

NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d*\.?\d+(?:[:,]-?\d*\.?\d+)+$")
_MISSING = re.compile(r"argument (--[\w-]+): expected one argument")


def values_parser_class(base: type[argparse.ArgumentParser], examples: dict[str, str]
                        ) -> type[argparse.ArgumentParser]:
    """``base`` (the main CLI's one-line parser) that reads negative-looking values as values
    and, for a flag in ``examples`` given without its value, says which value it needs."""

    class ValuesParser(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._negative_number_matcher = NEGATIVE_VALUE

        def error(self, message: str):  # type: ignore[override]
            m = _MISSING.match(message)
            if m and m.group(1) in examples:
                flag, example = m.group(1), examples[m.group(1)]
                raise UserError(f"{flag} needs a value, e.g. {flag} {example} or "
                                f"{flag}={example}")
            return super().error(message)

    return ValuesParser
