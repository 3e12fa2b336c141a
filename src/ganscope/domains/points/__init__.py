"""2-D point sets (the E5 lab): a shipped set (``ring8``, ``grid25:std=0.05``, ...) or a
user's ``points:FILE``; G produces points, scored by mode coverage and distances to the target,
drawn over D's surface (:mod:`.metrics` and :mod:`.evaluate` score them, :mod:`.plots` draws
them; the plots, and matplotlib with them, load only when a figure is drawn)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ganscope.data import Dataset
from ganscope.data.points import POINT_SETS, PointSet, load_points
from ganscope.domains.base import Domain, Scorer
from ganscope.domains.points.evaluate import evaluate_points
from ganscope.domains.points.modes import ModeFit, find_modes
from ganscope.io import atomic_write_bytes
from ganscope.render import figure_png
from ganscope.sampling import sample, to_floats

if TYPE_CHECKING:
    from ganscope.config import DataConfig, RunConfig
    from ganscope.training.run import Run


_FOUND: dict[str, ModeFit] = {}  # file SHA-256 -> its modes, once per process


def with_modes(ps: PointSet) -> PointSet:
    """Set ``ps``'s modes from the mixture found in its points (same file, same modes)."""
    key = ps.source.get("sha256") or hashlib.sha256(ps.points.tobytes()).hexdigest()
    if key not in _FOUND:
        _FOUND[key] = find_modes(ps.points)
    fit = _FOUND[key]
    ps.modes, ps.covs, ps.weights, ps.modes_found = fit.means, fit.covs, fit.weights, True
    return ps


def is_point_spec(name: str) -> bool:
    head = name.partition(":")[0].strip()
    return head == "points" or head in POINT_SETS


class Points(Domain):
    name = "points"
    title = "2-D points"
    kind = "points"
    trains_with_eval = True
    named_by_name = False

    def claims(self, data_name: str) -> bool:
        return is_point_spec(data_name)

    def sample_shape(self, data: DataConfig) -> str:
        return "points"

    def load(self, data: DataConfig, seed: int) -> Dataset:
        """Point sets are drawn with ``seed`` (the run's seed). A file's modes are found here
        (a Gaussian mixture, components by BIC: :mod:`.modes`), so its runs report mode
        coverage, % high quality and reverse KL as the built-in mixtures do."""
        ps = load_points(data.name, data.n_points, seed)
        if ps.modes is None and ps.source.get("kind") == "file":
            with_modes(ps)
        pts = torch.from_numpy(ps.points.astype("float32"))
        if data.limit is not None:
            pts = pts[:data.limit]
        return Dataset(pts, None, {**ps.source, "n": int(pts.shape[0])}, kind="points",
                       point_set=ps)

    def to_samples(self, x: torch.Tensor) -> torch.Tensor:
        return to_floats(x)

    def scorer(self, cfg: RunConfig, data: Dataset) -> Scorer:
        target, ec = data.images.numpy(), cfg.eval
        return lambda G: evaluate_points(G, cfg.model.z_dim, data.point_set, target, ec.n,
                                         ec.seed)

    def save_samples(self, path: Path, G: nn.Module, fixed_z: torch.Tensor, *, D: nn.Module,
                     data: Dataset, probability: bool, title: str) -> None:
        """The generated points over the target, on D's surface."""
        # local: plots loads matplotlib (~1 s); `import ganscope.domains` must not
        from ganscope.domains.points.plots import snapshot_figure

        fake = sample(G, fixed_z, to_samples=self, batch_size=None).numpy()
        ps = data.point_set
        found = ps is not None and ps.modes_found
        fig = snapshot_figure(data.images.numpy(), fake, D, probability, title,
                              modes=ps.modes if found else None,
                              covs=ps.covs if found else None)
        atomic_write_bytes(path, figure_png(fig, dpi=100))

    def extra_figures(self, run: Run) -> list[Path]:
        """The animation of the per-epoch snapshots (training.gif)."""
        # local: plots loads matplotlib (~1 s); `import ganscope.domains` must not
        from ganscope.domains.points.plots import run_gif

        gif = run_gif(run)
        return [gif] if gif else []
