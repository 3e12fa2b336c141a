"""The figures a finished run gets, written by one function for every way a run is trained:
`ganscope train`, sweep and lab workers, and the browser's live lab."""

from __future__ import annotations

from pathlib import Path

from ganscope.domains import domain_for
from ganscope.training.run import Run
from ganscope.viz.curves import plot_run


def write_run_figures(run: Run) -> list[Path]:
    """Loss and D-output curves, plus the domain's own (a 2-D run's training.gif)."""
    return plot_run(run) + domain_for(run.config().data.name).extra_figures(run)
