"""Typed run configuration: dataclasses, YAML presets, ``--set key=value`` overrides, validation.

A run is fully described by one :class:`RunConfig`. Presets in ``configs/`` are YAML files of the
same shape; CLI overrides address fields by dotted path (``optim.d.lr=4e-4``). The resolved
config is saved in every run directory, so a run can always be re-created from it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from ganscope.data import DEFAULT_DATA
from ganscope.errors import ConfigError
from ganscope.losses import LOSSES
from ganscope.metrics.registry import METRICS
from ganscope.models import MODELS, check_sizes
from ganscope.models.conditional import AUX_HEADS, CONDITIONAL, HEADED
from ganscope.models.user import D_OUTPUTS, check_user_model, is_user_model
from ganscope.optim import OPTIMIZERS
from ganscope.sinks import check_sink_names
from ganscope.techniques.augment import parse_policy
from ganscope.techniques.spectral import SN_TARGETS

MIN_EVAL_N = 10  # PRDC's k=5 nearest neighbours need a few more samples than k
# Upper bounds that turn absurd sizes into a config error instead of an overflow or an
# out-of-memory crash halfway into a run (seeds: what torch and NumPy both accept, as `serve`).
MAX_SEED = 2**31 - 1
MAX_WIDTH = 10_000  # model.z_dim and every hidden width
MAX_N_SAMPLES = 10_000
MAX_N_POINTS = 10_000_000
MAX_EVAL_N = 1_000_000
MAX_THREADS = 1024
DEVICES = ("cpu", "cuda", "mps", "auto")  # train.device and --device
# train.precision and --precision; auto: bf16 where the device has bf16 matrix units, else fp32
PRECISIONS = ("fp32", "bf16", "fp16", "auto")


@dataclass
class DataConfig:
    name: str = DEFAULT_DATA
    split: str = "train"  # train | test
    dir: str | None = None  # overrides the search order (also --data-dir)
    limit: int | None = None  # use only the first N images (quick runs, tests)
    n_points: int = 20000  # point sets (ring8, grid25, ...): how many points to draw
    image_size: int = 64  # face images (32 or 64) and image folders (8..512): the square's side
    crop: float = 0.8  # face images: side of the centre square cut, as a fraction of the width
    channels: int = 0  # image folders: 1 grey, 3 RGB, 0 = auto (from the files: RGB if any is)
    # image folders: ram (decoded into memory), mmap (a memory-mapped uint8 cache file, for sets
    # larger than memory) or auto (mmap when the decoded set is large: ganscope.data.folder)
    memory: str = "auto"


@dataclass
class ModelConfig:
    name: str = "mlp"
    z_dim: int = 100
    init: str = "default"  # default (PyTorch's, as the seeds) | dcgan (N(0, 0.02))
    # G's and D's hidden widths for the models that take them, () = the model's own: mlp2d
    # (512, 256) / (256, 256), dcgan (256, 128) / (128, 256), dcgan32 and dcgan64 one per
    # block, sngan-resnet* one width each; the other models' sizes are fixed
    g_hidden: tuple[int, ...] = ()
    d_hidden: tuple[int, ...] = ()
    # your own nets (name: path/to/nets.py:build): what D outputs, auto | probability | logit
    d_output: str = "auto"
    # none | projection (a conditional G and a projection D) | acgan (a conditional G and D's
    # class head) | infogan (a categorical and n_cont continuous codes, D's head predicts them).
    # The codes are z's first numbers (ganscope.models.conditional): z0 the class, then n_cont.
    conditional: str = "none"
    n_classes: int = 0  # projection/acgan: the data's classes; infogan: the categorical code's
    n_cont: int = 0  # infogan: continuous codes, each uniform on (-1, 1)
    # acgan/infogan: D's head on its features, linear (one layer) | mlp (the InfoGAN paper's Q:
    # FC 128, BatchNorm, LeakyReLU 0.1, FC; Chen et al. 2016, appendix C.1)
    aux_head: str = "linear"


@dataclass
class LossConfig:
    name: str = "bce"
    clip: float = 0.01  # wgan: weight clipping range [-clip, clip]
    gp_lambda: float = 10.0  # wgan-gp: gradient-penalty weight
    aux_weight: float = 1.0  # acgan's class loss, infogan's mutual-information term


@dataclass
class OptimOverride:
    """Per-network settings; ``None`` means 'use the shared value in OptimConfig'."""

    name: str | None = None
    lr: float | None = None
    betas: tuple[float, float] | None = None
    momentum: float | None = None
    alpha: float | None = None
    eps: float | None = None
    weight_decay: float | None = None


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | rmsprop | sgd
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)  # adam (PyTorch's default, as the seeds)
    momentum: float = 0.0  # sgd, rmsprop
    alpha: float = 0.99  # rmsprop smoothing
    eps: float = 1e-8
    weight_decay: float = 0.0
    g: OptimOverride = field(default_factory=OptimOverride)
    d: OptimOverride = field(default_factory=OptimOverride)

    def resolved(self, net: str) -> dict[str, Any]:
        """The effective settings for network ``net`` ('g' or 'd')."""
        over = getattr(self, net)
        out = {}
        for f in dataclasses.fields(OptimOverride):
            v = getattr(over, f.name)
            out[f.name] = getattr(self, f.name) if v is None else v
        return out


@dataclass
class TrainConfig:
    epochs: int = 10
    # a wall-clock budget for the training steps, in minutes (0 = none): the run ends when it is
    # spent, with its samples, generator and evaluation written as at an epoch's end;
    # train.epochs stays the cap. Compares techniques at equal cost, as a laptop user would.
    minutes: float = 0.0
    batch_size: int = 64
    n_critic: int = 1  # D steps per G step
    shuffle: bool = True
    drop_last: bool = False  # the seeds' DataLoader kept the short last batch
    device: str = "cpu"  # cpu | cuda | mps | auto (CUDA, then MPS, then the CPU)
    # fp32 | bf16 | fp16: autocast for the forward passes; auto: bf16 on a GPU or CPU with bf16
    # matrix units (AMX), fp32 elsewhere (meta.json records what ran)
    precision: str = "fp32"
    compile: bool = False  # torch.compile G and D (GPU speed; slow first steps)
    channels_last: bool = True  # NHWC for conv nets: oneDNN/cuDNN's fast kernels (same math)
    threads: int = 0  # torch intra-op threads on CPU; 0 = one per core the process may use
    # subnormal floats (< 1.2e-38) read and written as zero on the CPU: x86 computes them ~10x
    # slower, and small nets' optimiser state drifts there (training/denormals.py)
    flush_denormals: bool = True
    sample_every: int = 1  # epochs between sample grids (the last epoch always gets one)
    n_samples: int = 64  # images in each sample grid (fixed z)
    save_generators: bool = True  # keep G's weights for every epoch (latent tools, UI scrubber)


@dataclass
class EvalConfig:
    """Quality metrics during training (``--eval-every``); ``ganscope eval`` uses the same fields."""

    every: int = 0  # epochs between evaluations while training; 0 = off (the last epoch counts)
    n: int = 10000  # generated images per evaluation; the reference uses min(n, split size)
    reference: str = "test"  # the real split compared against: test (held out) | train
    seed: int = 0  # latents: torch.manual_seed(seed); randn(n, z_dim) — same z at every epoch
    metrics: str = "fid,kid,prdc,classes"  # comma-separated names from `ganscope metrics`
    # Early stopping on a plateau: training ends (status completed, meta `stopped_early`) once
    # `patience` evaluations in a row improved none of the watched metrics by more than
    # `min_delta` x |its best so far|; train.epochs is then the cap. 0 = off.
    patience: int = 0
    plateau: str = ""  # watched metrics, comma-separated; "" = every one with a better direction
    min_delta: float = 0.0  # relative: 0.02 = an improvement must beat the best by 2 %

    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.metrics.split(",") if m.strip())

    def plateau_names(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.plateau.split(",") if m.strip())


@dataclass
class TechConfig:
    """Techniques of the one loop (``ganscope.techniques``), each one option, all off by default
    so the seeds' set-ups train exactly as before. They act on modules and tensors, so they work
    with every image model, registered or your own."""

    spectral_norm: str = "none"  # none | d | gd: spectral normalisation of D (and G)
    ema: float = 0.0  # decay of an exponential moving average of G (e.g. 0.999); 0 = off
    ema_start: int = 0  # generator steps during which the EMA is a plain copy of G (warm-up)
    r1: float = 0.0  # R1 gradient penalty weight gamma on real samples; 0 = off
    r2: float = 0.0  # R2: the same on generated samples
    reg_every: int = 1  # lazy R1/R2: on every k-th discriminator step, weighted by k
    augment: str = ""  # DiffAugment of D's inputs: any of color,translation,cutout
    augment_p: float = 1.0  # probability per op and image (with ADA: its starting value)
    augment_same: bool = False  # real and generated batches get the very same transforms
    ada_target: float = 0.0  # > 0: ADA adapts augment_p so E[sign D(real)] -> target (0.6)
    ada_interval: int = 4  # discriminator steps between ADA's adjustments
    ada_speed: int = 500_000  # images it takes ADA to move p by 1 (the paper's 500k)


@dataclass
class LogConfig:
    """Where training's numbers go besides events.jsonl and metrics.jsonl (the record): live
    dashboards, written at the loop's flush points. How a run is watched, not what it trains, so
    it may change on ``--resume``."""

    sinks: list[str] = field(default_factory=list)  # tensorboard | wandb (``--log a,b``)


@dataclass
class RunConfig:
    preset: str = "custom"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tech: TechConfig = field(default_factory=TechConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def validate(self) -> RunConfig:
        """Check values that types alone cannot; raise ConfigError with the fix."""
        check_sink_names(self.log.sinks)
        user = is_user_model(self.model.name)  # a user's nets (ganscope.models.user)
        if not user:
            MODELS.get(self.model.name)
        check_sizes(self.model.name, {k: v for k, v in (("g_hidden", self.model.g_hidden),
                                                        ("d_hidden", self.model.d_hidden)) if v})
        for m in self.eval.metric_names():
            METRICS.get(m)
        LOSSES.get(self.loss.name)
        for net in ("g", "d"):
            OPTIMIZERS.get(self.optim.resolved(net)["name"])
        checks = [
            (0 <= self.seed <= MAX_SEED, f"seed must lie in 0..{MAX_SEED}"),
            (0 <= self.eval.seed <= MAX_SEED, f"eval.seed must lie in 0..{MAX_SEED}"),
            (self.train.epochs >= 1, "train.epochs must be at least 1"),
            (self.train.minutes >= 0 and math.isfinite(self.train.minutes),
             "train.minutes must be >= 0 (0 = no time budget)"),
            (self.train.batch_size >= 1, "train.batch_size must be at least 1"),
            (self.train.n_critic >= 1, "train.n_critic must be at least 1"),
            (self.train.sample_every >= 1, "train.sample_every must be at least 1"),
            (self.train.n_samples >= 1, "train.n_samples must be at least 1"),
            (self.train.n_samples <= MAX_N_SAMPLES,
             f"train.n_samples must be at most {MAX_N_SAMPLES}"),
            (self.model.z_dim >= 1, "model.z_dim must be at least 1"),
            (self.model.z_dim <= MAX_WIDTH, f"model.z_dim must be at most {MAX_WIDTH}"),
            (all(w >= 1 for w in self.model.g_hidden + self.model.d_hidden),
             "model.g_hidden and model.d_hidden widths must be at least 1"),
            (all(w <= MAX_WIDTH for w in self.model.g_hidden + self.model.d_hidden),
             f"model.g_hidden and model.d_hidden widths must be at most {MAX_WIDTH}"),
            (self.model.init in ("default", "dcgan"), "model.init must be 'default' or 'dcgan'"),
            (self.model.d_output in D_OUTPUTS if user else self.model.d_output == "auto",
             f"model.d_output must be {', '.join(D_OUTPUTS)} (it applies to your own nets)"),
            *self._domain().config_checks(self),  # its splits and settings
            (0 < self.data.crop <= 1, "data.crop must lie in (0, 1] (a fraction of the width)"),
            (self.data.limit is None or self.data.limit >= 1, "data.limit must be at least 1"),
            (self.data.n_points >= 1, "data.n_points must be at least 1"),
            (self.data.memory in ("auto", "ram", "mmap"),
             "data.memory must be auto, ram or mmap"),
            (self.data.n_points <= MAX_N_POINTS, f"data.n_points must be at most {MAX_N_POINTS}"),
            (self.train.device in DEVICES, "train.device must be cpu, cuda, mps or auto"),
            (self.train.precision in PRECISIONS,
             "train.precision must be fp32, bf16, fp16 or auto"),
            (self.train.threads >= 0, "train.threads must be >= 0 (0 = one per core)"),
            (self.train.threads <= MAX_THREADS, f"train.threads must be at most {MAX_THREADS}"),
            (self.loss.clip > 0, "loss.clip must be positive"),
            (self.loss.gp_lambda >= 0, "loss.gp_lambda must be >= 0"),
            (self.eval.every >= 0, "eval.every must be >= 0 (0 turns evaluation off)"),
            (self.eval.n >= MIN_EVAL_N, f"eval.n must be at least {MIN_EVAL_N}"),
            (self.eval.n <= MAX_EVAL_N, f"eval.n must be at most {MAX_EVAL_N}"),
            (self.eval.reference in ("train", "test"), "eval.reference must be 'train' or 'test'"),
            (bool(self.eval.metric_names()), "eval.metrics must name at least one metric"),
            (self.eval.patience >= 0, "eval.patience must be >= 0 (0 turns early stopping off)"),
            (self.eval.patience == 0 or self.eval.every > 0,
             "eval.patience needs evaluations: set eval.every (--eval-every) too"),
            (self.eval.min_delta >= 0, "eval.min_delta must be >= 0"),
        ]
        checks += self._tech_checks() + self._conditional_checks(user)
        for net in ("g", "d"):
            r = self.optim.resolved(net)
            checks += [
                (r["lr"] > 0, f"optim lr for {net.upper()} must be positive"),
                (all(0 <= b < 1 for b in r["betas"]), "optim betas must lie in [0, 1)"),
                (r["momentum"] >= 0, "optim momentum must be >= 0"),
                (0 <= r["alpha"] < 1, "optim alpha must lie in [0, 1)"),
                (r["eps"] > 0, "optim eps must be positive"),
                (r["weight_decay"] >= 0, "optim weight_decay must be >= 0"),
            ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"bad config: {msg}")
        self.check_model_fits_data(kinds_only=True)
        return self

    def _conditional_checks(self, user: bool) -> list[tuple[bool, str]]:
        m = self.model
        if m.conditional == "none":
            return [(m.n_cont == 0, "model.n_cont applies to model.conditional=infogan"),
                    (m.aux_head == "linear",
                     "model.aux_head applies to model.conditional=acgan or infogan")]
        return [
            (m.conditional in CONDITIONAL,
             f"model.conditional must be {', '.join(CONDITIONAL)}"),
            (not user, "model.conditional wraps the registered models; your own nets take "
                       "their labels themselves"),
            (m.n_classes >= 2, f"model.conditional={m.conditional} needs model.n_classes >= 2 "
                               "(the data's classes, or infogan's categorical code size)"),
            (m.n_cont >= 0, "model.n_cont must be >= 0"),
            (m.n_cont == 0 or m.conditional == "infogan",
             "model.n_cont applies to model.conditional=infogan"),
            (m.z_dim >= m.n_cont + 2, f"model.z_dim must exceed 1 + model.n_cont: z's first "
                                      f"{1 + m.n_cont} numbers are codes, noise needs one more"),
            (self.loss.aux_weight >= 0, "loss.aux_weight must be >= 0"),
            (m.aux_head in AUX_HEADS, f"model.aux_head must be {', '.join(AUX_HEADS)}"),
            (m.aux_head == "linear" or m.conditional in HEADED,
             "model.aux_head applies to model.conditional=acgan or infogan (a projection D "
             "has no head)"),
        ]

    def _tech_checks(self) -> list[tuple[bool, str]]:
        t = self.tech
        policy = parse_policy(t.augment)  # ConfigError naming the unknown augmentation
        images = self._domain().kind == "images"
        return [
            (t.spectral_norm in SN_TARGETS,
             f"tech.spectral_norm must be {', '.join(SN_TARGETS)} (which nets get it)"),
            (t.ema == 0 or 0 < t.ema < 1, "tech.ema must lie in (0, 1), e.g. 0.999 (0 = off)"),
            (t.ema_start >= 0, "tech.ema_start must be >= 0 generator steps"),
            (t.r1 >= 0 and t.r2 >= 0, "tech.r1 and tech.r2 must be >= 0 (0 = off)"),
            (t.reg_every >= 1, "tech.reg_every must be at least 1"),
            (0 <= t.augment_p <= 1, "tech.augment_p must lie in [0, 1]"),
            (0 <= t.ada_target < 1, "tech.ada_target must lie in [0, 1), e.g. 0.6 (0 = off)"),
            (t.ada_interval >= 1, "tech.ada_interval must be at least 1"),
            (t.ada_speed >= 1, "tech.ada_speed must be at least 1 image"),
            (not t.ada_target or bool(policy),
             "tech.ada_target adapts the augmentation: give tech.augment too, e.g. "
             "color,translation,cutout"),
            (not policy or images, f"tech.augment transforms images; {self.data.name} holds "
             "points: drop tech.augment"),
        ]

    def _domain(self):
        """The data's domain (``ganscope.domains``), asked at validation time."""
        # local: the domains pull in the data sets, metrics and render (PIL), ~40 ms that a
        # reader of configs alone (presets, YAML round trips) need not pay
        from ganscope.domains import domain_for

        return domain_for(self.data.name)

    def check_model_fits_data(self, kinds_only: bool = False) -> None:
        """ConfigError if the model cannot train on ``data.name``'s data set (else it fails only
        inside the first step, once the run directory exists).

        ``kinds_only`` checks only points against images, which is all ``validate()`` checks:
        library callers may hand ``train()`` other images than ``data.name`` names (tests
        train the face models on synthetic RGB data under the default data set).
        """
        name = self.data.name
        gives = self._domain().sample_shape(self.data)
        if is_user_model(self.model.name):  # built and run once on a few latents
            if not kinds_only:
                check_user_model(self.model, gives, LOSSES.get(self.loss.name).sigmoid,
                                 self.loss.name, name)
            return
        takes = MODELS.get(self.model.name).takes
        if takes == gives or (kinds_only and (takes == "points") == (gives == "points")):
            return
        fits = [m for m in MODELS.names() if MODELS.get(m).takes == gives]
        what = {"points": "2-D points"}
        raise ConfigError(
            f"bad config: model {self.model.name} takes {what.get(takes, takes + ' images')} "
            f"but data {name} gives {what.get(gives, gives + ' images')}: set model.name to "
            f"{_or_list(fits) if fits else 'a model for that data'}"
        )


def _or_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


# ----------------------------------------------------------------------------------------------
# Plain dict <-> dataclass conversion with type checking


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


@functools.cache
def _hints(cls: type) -> Mapping[str, Any]:
    """A config class's field types, read-only. Cached: the module's ``from __future__ import
    annotations`` makes ``get_type_hints`` evaluate every field's string on each call (0.4 ms a
    class), and building one config from a dict asks for each section's hints."""
    return types.MappingProxyType(typing.get_type_hints(cls))


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) if a is not type(None) else "null" for a in typing.get_args(tp))
    if origin is tuple and typing.get_args(tp)[-1] is Ellipsis:
        return "a list of integers"
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0]).split(' ', 1)[-1]}s"
    if origin is tuple:
        return f"a list of {len(typing.get_args(tp))} numbers"
    return str(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to the field type ``tp`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                continue
        raise ConfigError(f"bad value for {key}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:  # list[str]: a YAML list, or one comma-separated string ("a,b")
        item = typing.get_args(tp)[0]
        if isinstance(value, str) and item is str:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"bad value for {key}: expected {_type_name(tp)}, got {value!r}")
        return [_coerce(v, item, key) for v in value]
    if origin is tuple and typing.get_args(tp)[-1] is Ellipsis:  # tuple[int, ...]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"bad value for {key}: expected {_type_name(tp)}, got {value!r}")
        return tuple(_coerce(v, typing.get_args(tp)[0], key) for v in value)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"bad value for {key}: expected {_type_name(tp)}, got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"bad value for {key}: expected a mapping, got {value!r}")
        return _from_dict(tp, value, key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value):
            value = float(value)  # YAML 1.1 reads "1e-4" as a string
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            raise ConfigError(f"bad value for {key}: expected a finite number, got {value!r}")
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"bad value for {key}: expected {_type_name(tp)}, got {value!r}")


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = _hints(cls)
    unknown = [k for k in data if k not in hints]
    if unknown:
        where = f"under '{prefix[:-1]}'" if prefix else "at the top level"
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}': valid keys {where} are {', '.join(hints)}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> RunConfig:
    return _from_dict(RunConfig, data)


# ----------------------------------------------------------------------------------------------
# Presets, YAML files and overrides


# What PyYAML's safe loader raises besides YAMLError when a tagged or implicit value cannot be
# built: `2001-02-30` (ValueError), `!!int x`, `!!bool maybe` (KeyError), `!!timestamp x`, ...
_YAML_VALUE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError,
                      RecursionError)


def presets_dir() -> Path:
    """Where the shipped presets live: inside the wheel, or the repo's configs/ in a checkout."""
    env = os.environ.get("GANSCOPE_CONFIGS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for cand in (here / "configs", here.parent.parent / "configs"):
        if cand.is_dir():
            return cand
    return here / "configs"


def preset_names() -> list[str]:
    d = presets_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


# libyaml's parser (in PyYAML's wheels) with the safe constructor and the same resolver: the
# same values as yaml.safe_load, 7x faster on a run's config.yaml (1.4 ms against 10 ms), which
# the run lists, the lab and every resume read again. The pure-Python one where it is missing.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load``, by libyaml when PyYAML has it."""
    return yaml.load(text, Loader=_SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    try:
        data = load_yaml(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path} is not valid YAML{where}: fix the file") from None
    except _YAML_VALUE_ERRORS as e:  # e.g. a date that does not exist, `!!int x`
        raise ConfigError(f"config {path} holds a value YAML cannot read ({type(e).__name__}: "
                          f"{str(e)[:80]}): fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a YAML mapping of sections (data, model, ...)")
    return data


def load_config(name_or_path: str) -> RunConfig:
    """Load a preset by name (``e1-mlp``) or a YAML file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not p.is_file():
            raise ConfigError(f"config file {name_or_path} not found: check the path")
        data = _read_yaml(p)
        data.setdefault("preset", p.stem)
    else:
        f = presets_dir() / f"{name_or_path}.yaml"
        if not f.is_file():
            raise ConfigError(
                f"unknown preset '{name_or_path}': choose one of {', '.join(preset_names())}, "
                "or give a path to a YAML config"
            )
        data = _read_yaml(f)
        data["preset"] = name_or_path
    return from_dict(data)


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``section.key=value`` strings; values are parsed as YAML (``1e-4``, ``[0.5, 0.9]``)."""
    data = cfg.to_dict()
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"bad --set {ov!r}: write it as key=value, e.g. train.epochs=20")
        key, raw = ov.split("=", 1)
        key = key.strip()
        try:
            value = load_yaml(raw) if raw.strip() else None
        except (yaml.YAMLError, *_YAML_VALUE_ERRORS):
            value = raw
        parts = key.split(".")
        node: Any = data
        cls: Any = RunConfig
        for i, part in enumerate(parts):
            hints = _hints(cls)
            if part not in hints:
                where = ".".join(parts[:i])
                where_s = f"under '{where}'" if where else "at the top level"
                raise ConfigError(
                    f"unknown config key '{key}' in --set {ov}: valid keys {where_s} are "
                    f"{', '.join(hints)}"
                )
            tp = hints[part]
            if i == len(parts) - 1:
                if dataclasses.is_dataclass(tp):
                    raise ConfigError(
                        f"--set {ov}: '{key}' is a section; set one of its keys "
                        f"({', '.join(_hints(tp))})"
                    )
                try:
                    _coerce(value, tp, key)
                except ConfigError as e:
                    raise ConfigError(f"{e} (in --set {ov})") from None
                node[part] = value
            else:
                if not dataclasses.is_dataclass(tp):
                    raise ConfigError(f"unknown config key '{key}' in --set {ov}: '{part}' is not a section")
                node = node[part]
                cls = tp
    return from_dict(data)


def save_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
