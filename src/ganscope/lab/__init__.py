"""``ganscope lab``: the whole seed lab (E1-E6) over seeds, and a lab report the tool writes.

The five seed reports each ran part of one lab by hand, from single runs, and answered by eye.
This runs every experiment as they ran it, over seeds, with the library's own functions
(training, evaluation, generation, the latent probe and claims check, the 2-D matrix, the face
directions), and writes ``LAB/index.html`` plus one page per experiment with the measured
answers. ``--quick`` shortens every experiment to finish in under 10 minutes on 2 cores, and
each page says exactly what was shortened next to its numbers.

```
LAB/
  index.html  e1.html ... e6.html   the report (self-contained pages, linked to each other)
  lab.json                          settings, timings, answers (for scripts)
  runs/<name>/                      E1, E2 and E6 runs (ordinary run directories)
  e3/ e4/ e5/ e6/                   generated grids, probe, 2-D matrix, face walks
```
A lab started again keeps finished runs (the same planner as sweeps).

One module per experiment (``e1`` ... ``e6``: its settings, runs, measurement, answer and
page), so an experiment can be read or changed on its own; ``driver`` plans and runs them and
writes the index; ``pages`` holds the HTML they share; ``settings`` gathers their settings.
"""

from ganscope.lab.base import EXPERIMENTS
from ganscope.lab.driver import LabOptions, run_lab
from ganscope.lab.settings import Settings, shortened

__all__ = ["EXPERIMENTS", "LabOptions", "Settings", "run_lab", "shortened"]
