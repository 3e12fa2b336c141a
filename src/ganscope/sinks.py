"""Logging sinks: live dashboards fed by the training loop (``--log tensorboard,wandb``).

The run directory stays the record (events.jsonl, metrics.jsonl, samples/); a sink gets a copy
of the same numbers at the loop's existing flush points, so watching a run costs no extra host
sync per step. Everything is logged against the generator step: the per-step losses and D
outputs under ``train/<key>`` (the keys of events.jsonl), each evaluation's metrics under
``eval/<metric>`` at the step that ends its epoch, and each epoch's sample grid as ``samples``.

A new sink is one :class:`Sink` subclass and one line in :data:`SINKS`. Sinks are optional
extras: their packages are imported only when a run asks for them, and a missing one is one
error line naming the extra to install, before any run directory exists.
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ganscope.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from ganscope.config import RunConfig
    from ganscope.training.run import Run


class Sink:
    """One destination. ``start_step`` is the last step already logged (a resumed run's
    checkpoint step; 0 for a fresh run): everything logged from here on has larger steps."""

    name: ClassVar[str] = ""
    package: ClassVar[str] = ""  # the pip package, for the missing-extra message
    extra: ClassVar[str] = ""  # ganscope's extra that installs it
    modules: ClassVar[tuple[str, ...]] = ()  # what must import

    def __init__(self, run: Run, cfg: RunConfig, start_step: int) -> None:
        self.run = run

    def scalars(self, step: int, values: dict[str, float]) -> None:
        raise NotImplementedError

    def image(self, step: int, tag: str, image: np.ndarray, caption: str = "") -> None:
        """``image``: uint8, (H, W) grey or (H, W, 3) RGB."""
        raise NotImplementedError

    def flush(self) -> None:
        """End of a flush point: make what was logged visible to a watching dashboard."""

    def close(self, failed: bool = False) -> None:
        pass


class TensorBoardSink(Sink):
    """Event files in ``RUN/tb/`` (``tensorboard --logdir runs`` shows every run). A resumed
    run appends a new event file to the same folder with ``purge_step`` just past the
    checkpoint: steps a crashed run logged after its checkpoint are hidden, never doubled."""

    name, package, extra = "tensorboard", "tensorboard", "tensorboard"
    modules = ("tensorboard", "torch.utils.tensorboard")

    def __init__(self, run: Run, cfg: RunConfig, start_step: int) -> None:
        super().__init__(run, cfg, start_step)
        from torch.utils.tensorboard import SummaryWriter

        logdir = run.path / "tb"
        earlier = logdir.is_dir() and any(logdir.iterdir())
        self.writer = SummaryWriter(log_dir=str(logdir),
                                    purge_step=start_step + 1 if earlier else None)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, v in values.items():
            self.writer.add_scalar(tag, v, step)

    def image(self, step: int, tag: str, image: np.ndarray, caption: str = "") -> None:
        self.writer.add_image(tag, image, step, dataformats="HW" if image.ndim == 2 else "HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self, failed: bool = False) -> None:
        self.writer.close()


def _wandb_logged_in() -> bool:
    """An API key in the environment or in ~/.netrc for the W&B host: then runs go online."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        return bool(host and netrc.netrc(os.environ.get("NETRC")).authenticators(host))
    except (OSError, netrc.NetrcParseError):
        return False


def _new_id() -> str:
    """A W&B run id: 8 random lowercase letters and digits, as W&B's own."""
    import secrets
    import string

    chars = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(chars) for _ in range(8))


class WandbSink(Sink):
    """A W&B run named after the run, config = the resolved config. Offline (files in
    ``RUN/wandb/``, upload later with ``wandb sync``) unless an API key or a ``wandb login`` is
    there, or ``$WANDB_MODE`` says otherwise. Its id is kept in meta.json, so a resumed run
    logs to the same W&B run (offline: a second folder with that id, synced as one run)."""

    name, package, extra = "wandb", "wandb", "wandb"
    modules = ("wandb",)

    def __init__(self, run: Run, cfg: RunConfig, start_step: int) -> None:
        super().__init__(run, cfg, start_step)
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        known = run.meta().get("wandb") or {}
        run_id = known.get("id") or _new_id()
        mode = os.environ.get("WANDB_MODE") or ("online" if _wandb_logged_in() else "offline")
        project = os.environ.get("WANDB_PROJECT") or "ganscope"
        self._wandb = wandb
        self.wb = wandb.init(
            project=project, name=run.name, id=run_id, resume="allow", dir=str(run.path),
            config=cfg.to_dict(), mode=mode,
            settings=wandb.Settings(silent=True, console="off"))
        run.update_meta(wandb={"id": run_id, "project": project, "mode": mode})

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.wb.log(values, step=step)

    def image(self, step: int, tag: str, image: np.ndarray, caption: str = "") -> None:
        self.wb.log({tag: self._wandb.Image(image, caption=caption or None)}, step=step)

    def close(self, failed: bool = False) -> None:
        self.wb.finish(exit_code=1 if failed else 0)


# name -> sink class: the one place a new sink is registered
SINKS: dict[str, type[Sink]] = {s.name: s for s in (TensorBoardSink, WandbSink)}


def check_sink_names(names: list[str] | tuple[str, ...]) -> None:
    """ConfigError for a name that is not a sink (config validation; imports nothing)."""
    for n in names:
        if n not in SINKS:
            raise ConfigError(f"bad config: unknown log sink '{n}' in log.sinks: choose from "
                              f"{', '.join(SINKS)} (comma-separated), or none")


def check_sinks_available(names: list[str] | tuple[str, ...]) -> None:
    """ConfigError naming the extra to install when a sink's package does not import."""
    check_sink_names(names)
    for n in dict.fromkeys(names):
        cls = SINKS[n]
        for mod in cls.modules:
            try:
                importlib.import_module(mod)
            except ImportError:
                raise ConfigError(
                    f"--log {n} needs the {cls.package} package: "
                    f"pip install 'ganscope[{cls.extra}]'") from None


def build_sinks(names: list[str] | tuple[str, ...], run: Run, cfg: RunConfig,
                start_step: int = 0) -> list[Sink]:
    """The sinks ``names`` asks for (duplicates once), started; none started if one fails."""
    check_sinks_available(names)
    out: list[Sink] = []
    try:
        for n in dict.fromkeys(names):
            out.append(SINKS[n](run, cfg, start_step))
    except Exception as e:
        for s in out:
            s.close(failed=True)
        raise ConfigError(f"cannot start --log {n}: {type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
                          ) from e
    return out


class SinkGroup:
    """What the loop calls: fans each call out to the sinks. A sink that raises is reported
    once on stderr and dropped for the rest of the run; the run's own files are unaffected."""

    def __init__(self, sinks: list[Sink] | None = None) -> None:
        self.sinks = list(sinks or ())

    def __bool__(self) -> bool:
        return bool(self.sinks)

    def _each(self, method: str, *args: Any) -> None:
        for s in list(self.sinks):
            try:
                getattr(s, method)(*args)
            except Exception as e:
                self.sinks.remove(s)
                print(f"warning: log sink {s.name} failed ({type(e).__name__}: {e}); it is off "
                      "for the rest of this run (events.jsonl keeps every step)", file=sys.stderr)
                if method != "close":
                    with suppress(Exception):
                        s.close(failed=True)

    def events(self, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> None:
        """events.jsonl rows just written: ``train/<key>`` at each row's step, then flush."""
        if not self.sinks:
            return
        for r in rows:
            self._each("scalars", r["step"], {f"train/{k}": r[k] for k in keys})
        self._each("flush")

    def metrics(self, step: int, metrics: dict[str, Any]) -> None:
        """One evaluation's numeric metrics as ``eval/<name>``."""
        vals = {f"eval/{k}": float(v) for k, v in metrics.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.sinks and vals:
            self._each("scalars", step, vals)
            self._each("flush")

    def image_file(self, step: int, tag: str, path: Path, caption: str = "") -> None:
        """A PNG the run just wrote (the epoch's sample grid), read back only when logging."""
        if not self.sinks:
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            arr = np.asarray(im if im.mode in ("L", "RGB") else im.convert("RGB"))
        self._each("image", step, tag, arr, caption)
        self._each("flush")

    def close(self, failed: bool = False) -> None:
        self._each("close", failed)
        self.sinks = []
