"""The user's own images (``data.name: folder``, ``data.dir``: a folder of PNG/JPEG files or a
``.npy`` / ``.npz`` array), scored in Inception-v3 pool features.

Loading, the channels rule and the cache are :mod:`ganscope.data.folder`; the features are
pytorch-fid's FID Inception (:mod:`ganscope.metrics.inception`), so FID, KID and
precision/recall/density/coverage compare with numbers computed by the standard FID code on the
same images. Inception has no classifier for a user's classes, so ``classes`` is not computed
(dropped from the default metric list; asking for it is a config error). A folder has no
held-out split: the reference is the folder's own images (those the run trains on), whatever
``eval.reference`` says, and records say ``split: all``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ganscope.data import Dataset
from ganscope.data.folder import GET_IT, folder_channels, load_folder
from ganscope.domains.base import Domain, Scorer
from ganscope.metrics.evaluate import Reference, evaluate_generator, reference_from_images
from ganscope.metrics.inception import InceptionExtractor, load_inception

if TYPE_CHECKING:
    from ganscope.config import DataConfig, EvalConfig, RunConfig

NAME = "folder"
REFERENCE_SPLIT = "all"  # the folder's images: there is no held-out part
MIN_SIZE, MAX_SIZE = 8, 512


class Folder(Domain):
    name = NAME
    title = "image folder"
    splits = ("train", "all")  # both mean every image of the folder
    offline_eval = True
    trains_with_eval = True
    no_metrics = ("classes",)
    image_sizes = ()  # any size in MIN_SIZE..MAX_SIZE (checked below)
    folder_hint = "PNG/JPEG images (sub-folders = classes) or a .npy/.npz array"

    def _split_note(self) -> str:
        return " for an image folder (both mean every image)"

    def sample_shape(self, data: DataConfig) -> str:
        s = data.image_size
        return f"{folder_channels(data.dir, data.channels)}x{s}x{s}"

    def config_checks(self, cfg: RunConfig) -> list[tuple[bool, str]]:
        d = cfg.data
        return super().config_checks(cfg) + [
            (bool(d.dir), f"data.name folder needs data.dir: {GET_IT}"),
            (MIN_SIZE <= d.image_size <= MAX_SIZE,
             f"data.image_size must lie in {MIN_SIZE}..{MAX_SIZE} for an image folder"),
            (d.channels in (0, 1, 3), "data.channels must be 1 (grey), 3 (RGB) or 0 (auto)"),
        ]

    seeded_data = False  # the same images whatever the run's seed

    def load(self, data: DataConfig, seed: int) -> Dataset:
        """uint8 (N, C, S, S); labels are the class indices (N,) when the folder has classes."""
        f = load_folder(data.dir, data.image_size, data.channels, limit=data.limit,
                        memory=data.memory)
        return Dataset(f.images, f.labels, {**f.source, "class_names": list(f.class_names)},
                       mapped=f.mapped)

    def extractor(self, device: str = "cpu") -> InceptionExtractor:
        """A fresh Inception extractor; its ``accepts`` is set to the data's shape by
        :meth:`run_reference` (the shape depends on the run's image size and channels)."""
        return load_inception(device=device).for_shape((3, 299, 299))

    def reference(self, split: str, n: int, data_dir: str | None, *,
                  extractor: InceptionExtractor | None = None, progress: bool = False
                  ) -> Reference:
        """The folder's images at the default size (64) and channels (auto); a run's own
        settings: :meth:`run_reference`."""
        f = load_folder(data_dir, progress=progress or None)
        return self._reference_of(f.images, f.source, n, extractor, progress)

    def run_reference(self, cfg: RunConfig, ec: EvalConfig, data_dir: str | None = None, *,
                      progress: bool = False) -> tuple[InceptionExtractor, Reference]:
        data = dataclasses.replace(cfg.data, dir=data_dir or cfg.data.dir)
        ref = self._reference(data, ec.n, None, progress)
        return ref.extractor, ref

    def _reference(self, data: DataConfig, n: int, extractor: InceptionExtractor | None,
                   progress: bool) -> Reference:
        f = load_folder(data.dir, data.image_size, data.channels, limit=data.limit,
                        progress=progress or None)
        return self._reference_of(f.images, f.source, n, extractor, progress)

    def _reference_of(self, images, source: dict, n: int,
                      extractor: InceptionExtractor | None, progress: bool) -> Reference:
        ex = extractor or self.extractor()
        ex.accepts = tuple(int(x) for x in images.shape[1:])  # what G makes for this data
        return reference_from_images(images, dataset=NAME, split=REFERENCE_SPLIT, n=n,
                                     extractor=ex, source=source, progress=progress)

    def scorer(self, cfg: RunConfig, data: Dataset) -> Scorer:
        ec = dataclasses.replace(cfg.eval, metrics=",".join(self.eval_metrics(cfg.eval)))
        ex = self.extractor()  # resolved (or downloaded) now, not after the first epoch
        cache: dict[str, Reference] = {}

        def score(G):
            if "ref" not in cache:  # the real features once per run, on first use
                cache["ref"] = self._reference_of(data.images, data.source, ec.n, ex, False)
            return evaluate_generator(G, cfg.model.z_dim, ec, cache["ref"], extractor=ex)

        return score
