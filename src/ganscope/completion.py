"""``ganscope completion bash|zsh``: a shell completion script for the whole CLI.

The script is made by shtab (the ``[dev]`` extra; not needed by the core install, so it is
imported only when the command runs) from the parser itself: subcommands, options and choices
follow every change to the parser. Positionals that take a preset name or a YAML config are
marked with :func:`complete_preset`; the script completes them with the shipped presets' names
(read when the script is made) and with ``*.yaml``/``*.yml`` files.

Install: ``ganscope completion bash > ~/.local/share/bash-completion/completions/ganscope``
(or ``source <(ganscope completion bash)`` in ~/.bashrc); for zsh, write
``ganscope completion zsh`` to a file named ``_ganscope`` in a folder on ``$fpath``.
"""

from __future__ import annotations

import argparse

from ganscope.config import preset_names
from ganscope.errors import UserError

SHELLS = ("bash", "zsh")
_PRESET = "ganscope-preset"  # marker on an action, replaced by shtab's completer when generating


def complete_preset(action: argparse.Action) -> argparse.Action:
    """Mark ``action`` (a preset name or a YAML path) for completion with the presets."""
    action.complete = _PRESET  # type: ignore[attr-defined]
    return action


def _preset_completer(names: list[str]) -> dict:
    words = " ".join(names)
    return {
        # '_file' in the name makes shtab's script add '/' to completed folders
        "bash": "_ganscope_compgen_preset_or_file",
        "zsh": "_ganscope_preset_or_file",
        "preamble": {
            "bash": (
                "# preset names, then YAML configs and folders\n"
                "_ganscope_compgen_preset_or_file() {\n"
                f'  compgen -W "{words}" -- "$1"\n'
                "  compgen -f -X '!*.yaml' -- \"$1\"\n"
                "  compgen -f -X '!*.yml' -- \"$1\"\n"
                '  compgen -d -- "$1"\n'
                "}\n"),
            "zsh": (
                "# preset names, then YAML configs\n"
                "_ganscope_preset_or_file() {\n"
                f"  _alternative 'presets:preset:({words})' "
                "'files:YAML config:_files -g \"*.(yaml|yml)\"'\n"
                "}\n"),
        },
    }


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share a parser
                yield from _actions(sub)


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The ``shell`` completion script of ``parser``; one line if shtab is missing."""
    if shell not in SHELLS:
        raise UserError(f"no completion for shell '{shell}': choose {' or '.join(SHELLS)}")
    try:  # optional (the [dev] extra): only this command needs it
        import shtab
    except ImportError:
        raise UserError("ganscope completion needs shtab: pip install shtab") from None

    completer = _preset_completer(preset_names())
    for action in _actions(parser):
        if getattr(action, "complete", None) == _PRESET:
            action.complete = completer  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell)
