"""The exceptions the CLI turns into one line and exit code 2.

Library code raises these for every *expected* failure (missing data, bad config, unknown run,
corrupt file). The message is the whole user-facing line: it says what is wrong and how to fix
it. Anything else that escapes is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An expected failure whose message is one complete, actionable line."""


class DataError(UserError):
    """Missing, corrupt or unverifiable data files."""


class ConfigError(UserError):
    """A preset, YAML file, --set override or config value that cannot be used."""


class RunError(UserError):
    """An unknown run, or a run directory / checkpoint that cannot be read."""


class TrainingInterrupted(Exception):
    """Training stopped on Ctrl-C after saving a checkpoint; carries the run directory."""

    def __init__(self, run_dir: str) -> None:
        super().__init__(run_dir)
        self.run_dir = run_dir
