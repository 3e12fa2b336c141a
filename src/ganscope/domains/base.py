"""What a kind of data is to the rest of ganscope: one ``Domain`` object per data set family.

The loop, eval, generate, the latent tools, directions, serve, report and the lab ask the run's
domain (``domain_for(cfg.data.name)``) instead of naming a data set: how to load it, what shape
a generator must produce for it, which splits and settings it accepts, how G's output becomes
its samples and its sample figure, whether and how it is scored, and which extra figures a
finished run gets. A new kind of data is one module with a ``Domain`` subclass and one
registry line in ``ganscope/domains/__init__.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganscope.data import Dataset
from ganscope.render import save_grid
from ganscope.sampling import sample, to_images

if TYPE_CHECKING:  # annotations only: the config module asks domains for its checks
    from ganscope.config import DataConfig, EvalConfig, RunConfig
    from ganscope.metrics.evaluate import Extractor, Reference
    from ganscope.training.run import Run

# What scoring a generator returns: {"metrics": {...}, "seconds": ..., and provenance}
Scorer = Callable[[nn.Module], dict[str, Any]]


class Domain:
    """A data set family. Subclasses set the class attributes and override what differs."""

    name: str = ""
    #: how people write the data set's name (in messages, help and the lab's pages)
    title: str = ""
    kind: str = "images"  # images | points: what G produces
    #: the names of its class labels, in label order; empty when it has no classes
    class_names: tuple[str, ...] = ()
    #: other names people use for a class (normalised: lower case, letters and digits only)
    class_aliases: dict[str, int] = {}  # read-only; subclasses replace it
    splits: tuple[str, ...] = ("train", "test")
    #: `ganscope eval` (and the FID-based tools) can score its runs offline
    offline_eval: bool = False
    #: `--eval-every` can score it during training
    trains_with_eval: bool = False
    #: a shipped attribute classifier scores its samples (face directions and walks)
    has_attributes: bool = False
    #: the environment variable naming the user's folder of this data, for data that ganscope
    #: cannot download (None: it finds or downloads the data itself); ``folder_hint`` says
    #: what such a folder holds
    folder_env: str | None = None
    folder_hint: str = ""
    #: ``data.name`` is the domain's name (a point set is named by its spec instead)
    named_by_name: bool = True
    #: registered metrics its extractor cannot give (``classes`` needs a softmax classifier):
    #: dropped from the default list, a config error when asked for by name
    no_metrics: tuple[str, ...] = ()
    #: the ``data.image_size`` values it takes (empty: the domain checks the size itself)
    image_sizes: tuple[int, ...] = (32, 64)
    # whether ``load`` draws the data with the run's seed (the 2-D point sets do): runs of one
    # data config and different seeds then train on different data. Stacked training loads
    # the data once for all seeds when this is False.
    seeded_data: bool = True

    def claims(self, data_name: str) -> bool:
        """Whether ``data.name`` means this domain (a point set spec is not a plain name)."""
        return data_name == self.name

    def sample_shape(self, data: DataConfig) -> str:
        """What a generator must produce: ``CxHxW`` images or ``points``."""
        raise NotImplementedError

    def config_checks(self, cfg: RunConfig) -> list[tuple[bool, str]]:
        """Checks of this domain's settings, as (ok, message) pairs for ``RunConfig.validate``."""
        checks = [(cfg.data.split in self.splits,
                   f"data.split must be {_or(self.splits)}" + self._split_note())]
        if self.image_sizes:
            sizes = _or(tuple(map(str, self.image_sizes)), quote=False)
            checks.append((cfg.data.image_size in self.image_sizes,
                           f"data.image_size must be {sizes}"))
        asked = self.no_metrics_asked(cfg.eval)
        if asked:
            checks.append((False, f"eval.metrics: {asked[0]} does not apply to "
                                  f"{self.title or self.name} (its extractor has no class "
                                  "probabilities)"))
        return checks

    def no_metrics_asked(self, ec: EvalConfig) -> list[str]:
        """Metrics in ``no_metrics`` that ``ec`` names explicitly (not as the default list)."""
        from ganscope.metrics.registry import DEFAULT_METRICS

        if ec.metric_names() == DEFAULT_METRICS:
            return []
        return [m for m in ec.metric_names() if m in self.no_metrics]

    def _split_note(self) -> str:
        return ""

    def load(self, data: DataConfig, seed: int) -> Dataset:
        raise NotImplementedError

    def to_samples(self, x: torch.Tensor) -> torch.Tensor:
        """G's output as this domain's samples (uint8 images; points as they are), on the CPU."""
        return to_images(x)

    def extractor(self, device: str = "cpu") -> Extractor:
        """The shipped network whose features score this domain's images (``offline_eval``)."""
        raise NotImplementedError(f"{self.name} has no shipped feature extractor")

    def attribute_scorer(self, device: str = "cpu") -> Any:
        """The shipped classifier that scores its samples' attributes (``has_attributes``):
        images in [-1, 1] -> per-attribute probabilities, in its ``columns`` order."""
        raise NotImplementedError(f"{self.name} has no shipped attribute classifier")

    def reference(self, split: str, n: int, data_dir: str | None, *,
                  extractor: Extractor | None = None, progress: bool = False) -> Reference:
        """The real side of its metrics: ``n`` images of ``split`` in :meth:`extractor`'s
        features, cached (``offline_eval``)."""
        raise NotImplementedError(f"{self.name} runs are not scored offline")

    def eval_metrics(self, ec: EvalConfig) -> tuple[str, ...]:
        """The metrics to compute of ``ec.metrics``: the default list less ``no_metrics``
        (an explicit list is checked by :meth:`config_checks` and ``ganscope eval``)."""
        return tuple(m for m in ec.metric_names() if m not in self.no_metrics)

    def run_reference(self, cfg: RunConfig, ec: EvalConfig, data_dir: str | None = None, *,
                      progress: bool = False) -> tuple[Extractor, Reference]:
        """The extractor and the real side that score a run of this domain (``ganscope eval``).
        Domains whose images depend on the run's data settings (size, channels) override it;
        this default knows only the folder."""
        ex = self.extractor()
        return ex, self.reference(ec.reference, ec.n, data_dir or cfg.data.dir, extractor=ex,
                                  progress=progress)

    def scorer(self, cfg: RunConfig, data: Dataset) -> Scorer:
        """The function that scores G during training (``trains_with_eval``)."""
        raise NotImplementedError(f"{self.name} runs are not scored during training")

    def save_samples(self, path: Path, G: nn.Module, fixed_z: torch.Tensor, *, D: nn.Module,
                     data: Dataset, probability: bool, title: str) -> None:
        """The per-epoch sample figure from the fixed latents: a grid of images."""
        images = sample(G, fixed_z, to_samples=self, batch_size=None)
        save_grid(images, path, nrow=int(math.ceil(math.sqrt(len(fixed_z)))))

    def extra_figures(self, run: Run) -> list[Path]:
        """Figures a finished run gets besides its loss curves."""
        return []


def _or(items: tuple[str, ...], quote: bool = True) -> str:
    quoted = [f"'{s}'" for s in items] if len(items) <= 2 and quote else list(items)
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
