"""CelebA faces: 3xSxS RGB images (S = data.image_size), with 40 attributes as labels; the
shipped attribute classifier scores generated faces (directions and walks) and gives the
feature space of their FID, KID and precision/recall/density/coverage (its 128-d penultimate
layer), during training and offline. Its outputs are 40 independent attribute probabilities,
not a softmax over classes, so the ``classes`` metric does not apply to faces.

The package holds everything ganscope knows about faces beside the loader
(:mod:`ganscope.data.celeba`): the domain, the shipped attribute classifier
(:mod:`.attributes`, weights in ``weights/``), how it was trained (:mod:`.train_attributes`)
and the pixel-based head-yaw proxy (:mod:`.yaw`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from ganscope.data import Dataset
from ganscope.data.celeba import ATTR_FILE, ENV_VAR, IMAGE_DIR, PARTITION_FILE, load_celeba, locate
from ganscope.domains.base import Domain, Scorer
from ganscope.domains.faces.attributes import (
    FEATURE_DIM,
    FORWARD_CHUNK,
    AttributeClassifier,
    load_attribute_classifier,
)
from ganscope.errors import DataError
from ganscope.metrics.evaluate import Reference, evaluate_generator, reference_from_images

if TYPE_CHECKING:
    from pathlib import Path

    from ganscope.config import DataConfig, EvalConfig, RunConfig

FACE_MODELS = ("dcgan32", "dcgan64")  # the face nets, each for one image size
NAME = "celeba"
#: a CelebA split as the reference of ``eval.reference`` (train | test); CelebA's own "test"
#: needs the partition file, which a plain image folder lacks (the loader says so)
REFERENCE_SPLITS = {"train": "train", "test": "test"}


class FaceFeatures:
    """The shipped attribute classifier as a metrics extractor: uint8 (N, 3, S, S) faces ->
    its 128-d features and no class probabilities ((N, 0): attributes are not classes).

    ``accepts`` is the run's face size (the classifier resizes any square face to 32)."""

    label = "the CelebA attribute classifier"

    def __init__(self, classifier: AttributeClassifier, image_size: int = 64) -> None:
        self.classifier = classifier
        self.name, self.sha256 = classifier.name, classifier.sha256
        self.accepts = (3, image_size, image_size)

    def extract(self, images: torch.Tensor, batch_size: int = 1000, progress: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
        t = torch.as_tensor(images)
        if t.dtype != torch.uint8:
            raise ValueError(f"the attribute classifier takes uint8 faces, got {t.dtype}")
        n = int(t.shape[0])
        feats = np.empty((n, FEATURE_DIM), dtype=np.float32)
        step = max(batch_size, FORWARD_CHUNK)
        for i in tqdm(range(0, n, step), desc=f"{self.name} features", unit="batch",
                      leave=False, disable=not progress):
            feats[i:i + step] = self.classifier.features(t[i:i + step]).numpy()
        return feats, np.zeros((n, 0), dtype=np.float32)


class CelebA(Domain):
    name = NAME
    title = "CelebA"
    folder_env = ENV_VAR
    folder_hint = f"a folder with {IMAGE_DIR}/ and {ATTR_FILE}"
    splits = ("train", "valid", "test", "all")
    has_attributes = True
    offline_eval = True
    trains_with_eval = True
    no_metrics = ("classes",)

    def _split_note(self) -> str:
        return " for celeba"

    def sample_shape(self, data: DataConfig) -> str:
        return f"3x{data.image_size}x{data.image_size}"

    def config_checks(self, cfg: RunConfig) -> list[tuple[bool, str]]:
        m, size = cfg.model.name, cfg.data.image_size
        return super().config_checks(cfg) + [
            (m not in FACE_MODELS or m == f"dcgan{size}",
             f"model {m} needs data.image_size={m[5:]}, not {size}"),
        ]

    def attribute_scorer(self, device: str = "cpu") -> AttributeClassifier:
        return load_attribute_classifier(device)

    seeded_data = False  # the same images whatever the run's seed

    def load(self, data: DataConfig, seed: int) -> Dataset:
        """uint8 (N, 3, S, S); labels are the 40 attributes as 0/1 (N, 40)."""
        ds = load_celeba(data.dir, data.split, data.image_size, data.crop, limit=data.limit)
        return Dataset(ds.images, ds.attributes,
                       {**ds.source, "attributes": list(ds.attribute_names)})

    def extractor(self, device: str = "cpu") -> FaceFeatures:
        return FaceFeatures(load_attribute_classifier(device))

    def reference(self, split: str, n: int, data_dir: str | None, *,
                  extractor: FaceFeatures | None = None, progress: bool = False) -> Reference:
        """``n`` faces of ``split`` at 64x64, crop 0.8 (a run's own size and crop:
        :meth:`run_reference`)."""
        return self._reference(split, n, data_dir, 64, 0.8, extractor, progress)

    def run_reference(self, cfg: RunConfig, ec: EvalConfig, data_dir: str | None = None, *,
                      progress: bool = False) -> tuple[FaceFeatures, Reference]:
        d = cfg.data
        ref = self._reference(ec.reference, ec.n, data_dir or d.dir, d.image_size, d.crop, None,
                              progress)
        return ref.extractor, ref

    def _reference(self, split: str, n: int, data_dir: str | None, image_size: int,
                   crop: float, extractor: FaceFeatures | None, progress: bool) -> Reference:
        """The real faces the run's size and crop give, in the classifier's features. Only
        the first ``n`` of the split are decoded (``limit``): decoding all 200k CelebA images
        for a 10k reference would take minutes, and the first n are as random as any."""
        d = self._reference_dir(split, data_dir)
        ds = load_celeba(d, REFERENCE_SPLITS.get(split, split), image_size, crop,
                         limit=n, progress=progress or None)
        ex = extractor or self.extractor()
        ex.accepts = (3, image_size, image_size)
        return reference_from_images(ds.images, dataset=NAME, split=split, n=n, extractor=ex,
                                     source=ds.source, progress=progress)

    @staticmethod
    def _reference_dir(split: str, data_dir: str | None) -> Path:
        d, _ = locate(data_dir)
        if split == "test" and not (d / PARTITION_FILE).is_file():
            raise DataError(f"CelebA in {d} has no held-out test split (no {PARTITION_FILE}): "
                            "score against the training faces with --reference train "
                            "(eval.reference=train), or add the CelebA download's partition file")
        return d

    def scorer(self, cfg: RunConfig, data: Dataset) -> Scorer:
        ec = dataclasses.replace(cfg.eval, metrics=",".join(self.eval_metrics(cfg.eval)))
        # Now, before the first step: the reference is only read at the first evaluation, and
        # a run that evaluates only at its end (eval.every past its epochs) used to train for
        # its whole budget (25 minutes, measured) and then fail on a missing partition file.
        self._reference_dir(ec.reference, cfg.data.dir)
        cache: dict[str, Reference] = {}

        def score(G):
            if "ref" not in cache:  # the real features once per run, on first use
                cache["ref"] = self.run_reference(cfg, ec)[1]
            return evaluate_generator(G, cfg.model.z_dim, ec, cache["ref"],
                                      extractor=cache["ref"].extractor)

        return score
