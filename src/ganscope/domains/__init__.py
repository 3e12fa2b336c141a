"""The domain registry: every kind of data ganscope trains on, and the one way to load it.

``domain_for(data_name)`` is how every layer above the data learns what a run's data is (see
``base.Domain``); ``load_dataset(cfg)`` loads it. Adding a domain: one module with a ``Domain``
subclass, and one ``DOMAINS.register`` line below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganscope.data import Dataset
from ganscope.data.points import POINT_SETS
from ganscope.domains.base import Domain
from ganscope.domains.faces import CelebA
from ganscope.domains.fashion_mnist import FashionMNIST
from ganscope.domains.folder import Folder
from ganscope.domains.points import Points, is_point_spec
from ganscope.errors import ConfigError
from ganscope.registry import Registry

if TYPE_CHECKING:  # annotations only: the config module asks domains for its checks
    from ganscope.config import DataConfig

DOMAINS: Registry[Domain] = Registry("domain")
DOMAINS.register("fashion-mnist")(FashionMNIST())
DOMAINS.register("celeba")(CelebA())
DOMAINS.register("points")(Points())
DOMAINS.register("folder")(Folder())

__all__ = ["DOMAINS", "Domain", "class_domain", "domain_for", "domain_of_kind", "is_point_spec",
           "load_dataset", "user_folder_domains"]


def domain_for(data_name: str) -> Domain:
    """The domain of ``data.name``: a registered name, else the domain that claims the spec
    (``ring8:radius=2`` and ``points:FILE`` are point sets)."""
    if data_name in DOMAINS:
        return DOMAINS.get(data_name)
    for name in DOMAINS.names():
        d = DOMAINS.get(name)
        if d.claims(data_name):
            return d
    named = [n for n in DOMAINS.names() if DOMAINS.get(n).named_by_name]
    raise ConfigError(
        f"unknown dataset {data_name!r}: choose one of {', '.join(named)}, a point set "
        f"({', '.join(POINT_SETS.names())}) or points:FILE"
    )


def domain_of_kind(kind: str) -> Domain:
    """The first registered domain whose generators produce ``kind`` (images or points): for
    a caller's own data set whose kind differs from what its config's data name says."""
    for name in DOMAINS.names():
        if DOMAINS.get(name).kind == kind:
            return DOMAINS.get(name)
    raise ConfigError(f"no domain produces {kind}")


def load_dataset(cfg: DataConfig, seed: int = 0) -> Dataset:
    """The data set of a config; point sets are drawn with ``seed`` (the run's seed)."""
    return domain_for(cfg.name).load(cfg, seed)


def user_folder_domains() -> list[Domain]:
    """The domains whose data the user must give as a folder (``folder_env``): each gets a
    ``--<name>-dir`` option where a command needs every data set (the lab)."""
    return [DOMAINS.get(n) for n in DOMAINS.names() if DOMAINS.get(n).folder_env]


def class_domain() -> Domain:
    """The registered domain whose shipped classifier labels images by class: what the latent
    tools measure (class probabilities, class directions, the seeds' claims about classes).

    The latent tools' class measures are defined once per process from it; the first domain
    that is scored offline and names its classes is the one.
    """
    for name in DOMAINS.names():
        d = DOMAINS.get(name)
        if d.offline_eval and d.class_names:
            return d
    raise ConfigError("no domain has a shipped class classifier")
