"""CelebA faces: 3xSxS RGB images (S = data.image_size), with 40 attributes as labels; the
shipped attribute classifier scores generated faces (directions and walks).

The package holds everything ganscope knows about faces beside the loader
(:mod:`ganscope.data.celeba`): the domain, the shipped attribute classifier
(:mod:`.attributes`, weights in ``weights/``), how it was trained (:mod:`.train_attributes`)
and the pixel-based head-yaw proxy (:mod:`.yaw`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganscope.data import Dataset
from ganscope.data.celeba import ATTR_FILE, ENV_VAR, IMAGE_DIR, load_celeba
from ganscope.domains.base import Domain
from ganscope.domains.faces.attributes import AttributeClassifier, load_attribute_classifier

if TYPE_CHECKING:
    from ganscope.config import DataConfig, RunConfig

FACE_MODELS = ("dcgan32", "dcgan64")  # the face nets, each for one image size


class CelebA(Domain):
    name = "celeba"
    title = "CelebA"
    folder_env = ENV_VAR
    folder_hint = f"a folder with {IMAGE_DIR}/ and {ATTR_FILE}"
    splits = ("train", "valid", "test", "all")
    has_attributes = True

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

    def load(self, data: DataConfig, seed: int) -> Dataset:
        """uint8 (N, 3, S, S); labels are the 40 attributes as 0/1 (N, 40)."""
        ds = load_celeba(data.dir, data.split, data.image_size, data.crop, limit=data.limit)
        return Dataset(ds.images, ds.attributes,
                       {**ds.source, "attributes": list(ds.attribute_names)})
