"""Measure what every latent dimension does, against random directions (issue 6).

The seeds (lab-spec E4) shifted five dims each, looked at 8 samples and guessed ("dim 20 turns
trousers into heels"); their guesses disagree. ``probe`` replaces the eye with numbers: for each
dim d it shifts z[:, d] by each of ``values`` on ``n_base`` base vectors, generates everything in
large batches and measures the effects in :data:`EFFECTS` (class probabilities from the shipped
classifier, brightness, region intensities, silhouette area, pixel change). Each effect's
per-unit slope is a least-squares fit of the mean effect over the shift, and it is called real
only when it stands out from the same sweep along random unit directions *and* is at least its
measure's practical floor (0.02 class probability or 1 % of full scale per unit, issue 22).

One concept per module (each imports only those before it in this list):

- :mod:`.effects`: what is measured on an image (``EFFECTS``, regions, class names);
- :mod:`.stats`: slopes, the null from random directions, the family-wise threshold, the
  floors and the one rule for "real";
- :mod:`.sentences`: one sentence per dim, ranked by effect size, naming only its real effects;
- :mod:`.figure`: the heatmap of effects x dims;
- :mod:`.result`: ``ProbeResult`` (derived numbers, probe.json / csv / heatmap / ranked.txt);
- :mod:`.measure`: the sweep itself, ``probe(G, z_dim)``, and its cost;
- :mod:`.runs`: probing a training run into RUN/figures/latent-probe/.

This package re-exports the names callers use, so ``from ganscope.latent.probe import X`` keeps
working for the CLI, the lab, the server, the report and the claims check.
"""

from ganscope.latent.probe.effects import (
    AREA_THRESHOLD,
    CLASS_EFFECTS,
    CLASS_NAME,
    EFFECT_NAMES,
    EFFECTS,
    FRAME,
    IMAGE_EFFECTS,
    REGIONS,
    class_effect_name,
    region_masks,
)
from ganscope.latent.probe.figure import DPI, heatmap_figure
from ganscope.latent.probe.measure import (
    DEFAULT_BATCH,
    DEFAULT_N_BASE,
    DEFAULT_N_NULL,
    DEFAULT_VALUES,
    ExtractorLike,
    check_probe_args,
    null_directions,
    probe,
)
from ganscope.latent.probe.result import INFO_KEYS, ProbeResult, load_probe
from ganscope.latent.probe.runs import PROBE_DIR, default_probe_dir, run_probe
from ganscope.latent.probe.stats import (
    CLASS_FLOOR,
    DEFAULT_ALPHA,
    IMAGE_FLOOR,
    fit_slopes,
    floors,
    is_real,
    null_threshold,
    unit_coordinate_quantile,
)

__all__ = [
    "AREA_THRESHOLD", "CLASS_EFFECTS", "CLASS_FLOOR", "CLASS_NAME", "DEFAULT_ALPHA",
    "DEFAULT_BATCH", "IMAGE_FLOOR", "floors", "is_real",
    "DEFAULT_N_BASE", "DEFAULT_N_NULL", "DEFAULT_VALUES", "DPI", "EFFECTS", "EFFECT_NAMES",
    "FRAME", "IMAGE_EFFECTS", "INFO_KEYS", "PROBE_DIR", "REGIONS", "ExtractorLike",
    "ProbeResult", "check_probe_args", "class_effect_name", "default_probe_dir", "fit_slopes",
    "heatmap_figure", "load_probe", "null_directions", "null_threshold", "probe",
    "region_masks", "run_probe", "unit_coordinate_quantile",
]
