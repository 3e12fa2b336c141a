"""Probe a training run: load its generator, probe it with the CLI's defaults and write the
files where the report, the server and ``latent check`` look for them (RUN/figures/latent-probe/).

Kept apart from the sweep so that :func:`measure.probe` works on any generator module (the tests
use hand-built ones) without a run folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ganscope.config import ModelConfig
from ganscope.environment import now_iso
from ganscope.errors import UserError
from ganscope.latent.probe.measure import (
    DEFAULT_N_BASE,
    DEFAULT_N_NULL,
    DEFAULT_VALUES,
    check_probe_args,
    probe,
)
from ganscope.latent.probe.result import ProbeResult
from ganscope.training.run import PROBE_DIR, Run, load_generator

__all__ = ["PROBE_DIR", "default_probe_dir", "run_probe"]


def default_probe_dir(run: Run) -> Path:
    """``run.probe_dir`` (RUN/figures/latent-probe/)."""
    return run.probe_dir


def code_dims(m: ModelConfig) -> dict[str, str]:
    """What z's code dimensions of a conditional or InfoGAN run are, by dim (as text: JSON)."""
    first = ("InfoGAN categorical code" if m.conditional == "infogan" else "the class") + (
        f", {m.n_classes} values")
    return {"0": first, **{str(1 + j): f"InfoGAN continuous code {j + 1}"
                           for j in range(m.n_cont)}}


def run_probe(run: Run, *, epoch: int | None = None, n_base: int = DEFAULT_N_BASE,
              values: Sequence[float] = DEFAULT_VALUES, dims: Sequence[int] | None = None,
              n_null: int = DEFAULT_N_NULL, seed: int = 0, out_dir: str | Path | None = None,
              progress: bool = False) -> tuple[ProbeResult, list[Path]]:
    """Probe a run's generator and write the four files (default RUN/figures/latent-probe/)."""
    cfg = run.config()
    z_dim = cfg.model.z_dim
    check_probe_args(z_dim, dims, values, n_base, n_null)  # fail before loading anything
    out = Path(out_dir) if out_dir is not None else run.probe_dir
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} must be a folder: the probe writes probe.csv, probe.json, "
                        "heatmap.png and ranked.txt into it")
    G = load_generator(run, epoch)
    _, ck = run.checkpoint_for(epoch)
    res = probe(G, z_dim, n_base=n_base, values=values, seed=seed, n_null=n_null, dims=dims,
                progress=progress)
    res.info = {"run": run.name, "run_path": str(run.path), "model": cfg.model.name,
                "epoch": epoch if epoch is not None else run.meta().get("epochs_done"),
                "checkpoint": str(ck), **res.info, "created": now_iso(),
                **({"codes": code_dims(cfg.model)} if cfg.model.conditional != "none" else {})}
    return res, res.save(out)
