"""Fashion-MNIST: 1x28x28 grey images, scored in the shipped Fashion-MNIST classifier's features
(FID, KID, precision/recall/density/coverage, classes covered), during training and offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganscope.data import Dataset
from ganscope.data.fashion_mnist import load_fashion_mnist
from ganscope.domains.base import Domain, Scorer
from ganscope.metrics.evaluate import evaluate_generator, reference_features

if TYPE_CHECKING:
    from ganscope.config import DataConfig, RunConfig


class FashionMNIST(Domain):
    name = "fashion-mnist"
    offline_eval = True
    trains_with_eval = True

    def sample_shape(self, data: DataConfig) -> str:
        return "1x28x28"

    def load(self, data: DataConfig, seed: int) -> Dataset:
        ds = load_fashion_mnist(data.split, data.dir, limit=data.limit)
        return Dataset(ds.images.unsqueeze(1), ds.labels, ds.source)

    def scorer(self, cfg: RunConfig, data: Dataset) -> Scorer:
        ec, cache = cfg.eval, {}

        def score(G):
            if "ref" not in cache:  # the real features once per run, on first use
                cache["ref"] = reference_features(ec.reference, ec.n, cfg.data.dir)
            return evaluate_generator(G, cfg.model.z_dim, ec, cache["ref"])

        return score
