"""Fashion-MNIST: 1x28x28 grey images in ten classes, scored in the shipped Fashion-MNIST
classifier's features (FID, KID, precision/recall/density/coverage, classes covered), during
training and offline.

The package holds everything ganscope knows about this data set beside its loader
(:mod:`ganscope.data.fashion_mnist`): the domain, the shipped classifier
(:mod:`.extractor`, weights in ``weights/``) and how it was trained (:mod:`.train_extractor`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganscope.data import Dataset
from ganscope.data.fashion_mnist import CLASSES, load_fashion_mnist
from ganscope.domains.base import Domain, Scorer
from ganscope.domains.fashion_mnist.extractor import Extractor, load_extractor
from ganscope.metrics.evaluate import Reference, evaluate_generator, reference_from_images

if TYPE_CHECKING:
    from ganscope.config import DataConfig, RunConfig

NAME = "fashion-mnist"


def reference_features(split: str = "test", n: int = 10000, data_dir: str | None = None, *,
                       extractor: Extractor | None = None, progress: bool = False) -> Reference:
    """Features of ``min(n, split size)`` real Fashion-MNIST images, from the cache when it has
    them (see :func:`ganscope.metrics.evaluate.reference_from_images`)."""
    ds = load_fashion_mnist(split, data_dir)
    return reference_from_images(ds.images, dataset=NAME, split=split, n=n,
                                 extractor=extractor or load_extractor(), source=ds.source,
                                 progress=progress, labels=ds.labels)


class FashionMNIST(Domain):
    name = NAME
    title = "Fashion-MNIST"
    class_names = CLASSES
    class_aliases = {"tshirt": 0, "top": 0, "tee": 0, "boot": 9, "boots": 9}
    offline_eval = True
    trains_with_eval = True

    def sample_shape(self, data: DataConfig) -> str:
        return "1x28x28"

    seeded_data = False  # the same images whatever the run's seed

    def load(self, data: DataConfig, seed: int) -> Dataset:
        ds = load_fashion_mnist(data.split, data.dir, limit=data.limit)
        return Dataset(ds.images.unsqueeze(1), ds.labels, ds.source)

    def extractor(self, device: str = "cpu") -> Extractor:
        return load_extractor(device)

    def reference(self, split: str, n: int, data_dir: str | None, *,
                  extractor: Extractor | None = None, progress: bool = False) -> Reference:
        return reference_features(split, n, data_dir, extractor=extractor, progress=progress)

    def scorer(self, cfg: RunConfig, data: Dataset) -> Scorer:
        ec, cache = cfg.eval, {}

        def score(G):
            if "ref" not in cache:  # the real features once per run, on first use
                cache["ref"] = reference_features(ec.reference, ec.n, cfg.data.dir)
            return evaluate_generator(G, cfg.model.z_dim, ec, cache["ref"])

        return score
