"""``ganscope report RUN``: one HTML file with everything the run directory holds.

Config (the saved YAML), provenance (meta.json), environment, the loss and D-output curves
(drawn in memory from events.jsonl), sample grids over epochs, the metrics per epoch (figure and
table, from metrics.jsonl), the diagnostics flags, the latent probe and the seeds' claims when a
probe was saved, the face directions when any were found, and any other figure in ``figures/``.
Only reads the run; writes the one report file.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import ganscope
from ganscope.diagnostics import comparable_series, diagnose
from ganscope.directions.store import list_directions
from ganscope.environment import now_iso
from ganscope.errors import RunError, UserError
from ganscope.experiments.compare import SKIP
from ganscope.metrics.labels import METRIC_LABELS, metric_label, metric_spec
from ganscope.metrics.table import present_columns
from ganscope.report import html as H
from ganscope.training.run import Run

MAX_EMBED_BYTES = 4 << 20  # larger figure files are listed, not embedded
SHOWN_FIGURES = {"losses.png", "d_outputs.png", "metrics.png"}


def sample_epochs(run: Run, k: int = 6) -> list[tuple[int, Path]]:
    """Up to ``k`` sample grids spread over the run: the first, the last and evenly between."""
    eps = run.sample_epochs()
    if len(eps) > k:
        idx = sorted({round(i * (len(eps) - 1) / (k - 1)) for i in range(k)})
        eps = [eps[i] for i in idx]
    return [(e, run.sample_grid(e)) for e in eps]


def metric_columns(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(key, title, format) of the metrics present: the CLI's columns for images, the 2-D
    lab's for points, then any other scalar."""
    cols = [(k, t, f) for k, t, f, _ in present_columns(records)]
    have = {c[0] for c in cols}
    keys: set[str] = set()
    for r in records:
        keys |= {k for k, v in r.get("metrics", {}).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for k in [k for k in METRIC_LABELS if k in keys] + sorted(keys - set(METRIC_LABELS)):
        if k not in have and k not in SKIP:
            cols.append((k, metric_label(k), metric_spec(k)))
            have.add(k)
    return cols


def metrics_table(records: list[dict[str, Any]]) -> H.Raw:
    cols = metric_columns(records)
    rows = []
    for r in records:
        m = r.get("metrics", {})
        rows.append([H.cell(r.get("epoch"), "d", "epoch"),
                     *[H.cell(m.get(k), spec, k) for k, _, spec in cols],
                     r.get("n_fake", "-"), r.get("source", "-")])
    return H.table(["epoch", *[t for _, t, _ in cols], "n generated", "by"], rows,
                   cls="metrics")


def record_provenance(rec: dict[str, Any]) -> str | None:
    """What the numbers were measured with: extractor, reference, sample sizes, seed."""
    ref = rec.get("reference") or {}
    if not ref:
        return None
    ex = rec.get("extractor")
    what = (f"extractor {ex.get('name')} (sha256 {str(ex.get('sha256', ''))[:12]}), "
            if isinstance(ex, dict) else "")
    return (f"{what}reference {ref.get('dataset')} {ref.get('split')} ({rec.get('n_real')}), "
            f"{rec.get('n_fake')} generated, seed {rec.get('seed')}")


def _fmt(v: Any, spec: str = ".4f") -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return format(v, spec)
    return "-" if v is None else str(v)


def summary_items(run: Run, meta: dict[str, Any], flags: list[Any]) -> list[tuple[str, Any]]:
    cfg = run.config()
    last = meta.get("last") or {}
    best = meta.get("best")
    return [
        ("run", run.name), ("status", run.status()), ("preset", cfg.preset),
        ("seed", cfg.seed),
        ("epochs", f"{meta.get('epochs_done', 0)} of {meta.get('epochs_planned', cfg.train.epochs)}"),
        ("generator steps", meta.get("step", "-")),
        ("model / loss / optimiser", f"{cfg.model.name} / {cfg.loss.name} / {cfg.optim.name}"),
        ("last loss D / G", f"{_fmt(last.get('loss_d'))} / {_fmt(last.get('loss_g'))}"),
        ("best FID", f"{best['fid']:.2f} at epoch {best['epoch']}" if best else "-"),
        ("flags", ", ".join(f.code for f in flags) or "none"),
    ]


def provenance_items(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    env = meta.get("environment") or {}
    git = env.get("git") or {}
    commit = (f"{git.get('commit', '?')[:12]}{' (uncommitted changes)' if git.get('dirty') else ''}"
              if git else "not a git checkout")
    return [
        ("seed", meta.get("seed", "-")), ("status", meta.get("status", "-")),
        ("started", meta.get("start_time", "-")), ("ended", meta.get("end_time", "-")),
        ("resumed at", meta.get("resumed_at") or "-"),
        ("device", meta.get("device", "-")), ("steps per epoch", meta.get("steps_per_epoch", "-")),
        ("D output", meta.get("d_output", "-")),
        ("ganscope", env.get("ganscope", "-")), ("torch", env.get("torch", "-")),
        ("python", env.get("python", "-")), ("git commit", commit),
        ("process", f"pid {meta.get('pid', '-')} on {meta.get('host', '-')}"),
    ]


def environment_items(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    env = meta.get("environment") or {}
    ex = meta.get("execution") or {}
    items = [(k, env.get(k, "-")) for k in ("platform", "cpu_threads")]
    items += [(f"execution: {k}", v) for k, v in ex.items()]
    return items


def _curves(run: Run, dpi: int) -> list[H.Raw]:
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from ganscope.viz.curves import load_curves, make_d_outputs_figure, make_losses_figure

    try:
        c = load_curves(run)
    except RunError as e:
        return [H.p(str(e), "note")]
    return [H.img_figure(make_losses_figure(run, c), "loss curves",
                         f"D and G loss per generator step ({len(c)} steps; raw faint, "
                         "smoothed on top), from events.jsonl", dpi),
            H.img_figure(make_d_outputs_figure(run, c), "D outputs",
                         "mean D(x) and D(G(z)) per generator step", dpi)]


def _probe_section(run: Run, sid: str, level: int) -> H.Raw | None:
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from ganscope.latent.claims import check
    from ganscope.latent.probe import load_probe

    d = run.probe_dir
    if not (d / "probe.json").is_file():
        return None
    try:
        res = load_probe(d)
        verdicts = check(res)
    except UserError as e:
        return H.section(sid, "Latent probe", H.p(str(e), "note"), level=level)
    n_real = int(res.real.any(axis=1).sum())
    info = res.info
    body = [H.p(f"{len(res.dims)} dims probed (epoch {info.get('epoch', '?')}, "
                f"{info.get('n_base', '?')} base vectors, {info.get('n_null', '?')} random "
                f"directions as the null): {n_real} with a real effect: beyond the null at a "
                "family-wise 5 % and at least its measure's floor (0.02 p or 1 % per unit).")]
    if (d / "heatmap.png").is_file():
        body.append(H.img_file(d / "heatmap.png", "probe heatmap",
                               "per dim and effect: |slope| / floor; dots: real "
                               "effects, rings: beyond the null but under the floor"))
    body.append(H.tag(f"h{level + 1}", "Strongest dimensions"))
    body.append(H.Raw("<ol>" + "".join(f"<li>{H.esc(res.sentence(dim))}</li>"
                                       for dim in res.ranked()[:10]) + "</ol>"))
    counts = {v: sum(r["verdict"] == v for r in verdicts) for v in ("holds", "fails",
                                                                     "untestable")}
    body.append(H.tag(f"h{level + 1}", "The seeds' claims against the probe"))
    body.append(H.p(", ".join(f"{n} {v}" for v, n in counts.items())))
    body.append(H.table(["claim", "seed", "verdict", "evidence"],
                        [[r["claim"], r["seed"], r["verdict"], r["evidence"]]
                         for r in verdicts], cls="claims"))
    return H.section(sid, "Latent probe and the seeds' claims", *body, level=level)


def _directions_section(run: Run, sid: str, level: int) -> H.Raw | None:
    dirs = list_directions(run)
    if not dirs:
        return None
    body: list[Any] = [H.table(["name", "method", "attribute", "created"],
                               [[d.name, d.method, d.attribute or "-", d.created]
                                for d in dirs])]
    root = run.direction_figures_dir
    for d in dirs:
        f = root / d.name / "walk.png"
        if f.is_file():
            body.append(H.img_file(f, f"walk along {d.name}", f"walk along '{d.name}'"))
    if (root / "side_effects.png").is_file():
        body.append(H.img_file(root / "side_effects.png", "side effects",
                               "change of every attribute from the first to the last step"))
    return H.section(sid, "Latent directions", *body, level=level)


def _other_figures(run: Run) -> list[H.Raw]:
    out = []
    for f in sorted(run.figures.glob("*")):
        if f.name in SHOWN_FIGURES or f.suffix.lower() not in (".png", ".gif") or not f.is_file():
            continue
        if f.stat().st_size > MAX_EMBED_BYTES:
            out.append(H.p(f"{f.name}: {f.stat().st_size >> 20} MiB, not embedded", "muted"))
            continue
        out.append(H.img_file(f, f.name, f"figures/{f.name}"))
    return out


def run_body(run: Run, *, prefix: str = "", level: int = 2, compact: bool = False,
             dpi: int = 80) -> H.Raw:
    """The report's sections for one run; ``prefix`` keeps anchors unique when several runs
    share a page, ``compact`` keeps the essentials (summary, curves, samples, metrics, flags)."""
    meta = run.meta()
    flags = diagnose(run)
    records = run.read_metrics()
    parts: list[Any] = [H.section(f"{prefix}summary", "Summary",
                                  H.kv_table(summary_items(run, meta, flags)), level=level)]
    if not compact:
        cfg_text = run.config_path.read_text()
        parts.append(H.section(f"{prefix}config", "Config", H.pre(cfg_text, "cols"),
                               H.p("config.yaml: re-create the run with `ganscope train "
                                   "config.yaml`", "muted"), level=level))
        data = meta.get("data")
        parts.append(H.section(f"{prefix}provenance", "Provenance",
                               H.kv_table(provenance_items(meta)),
                               H.tag(f"h{level + 1}", "Data"),
                               H.pre(json.dumps(data, indent=1) if data else "-"),
                               level=level))
        parts.append(H.section(f"{prefix}environment", "Environment",
                               H.kv_table(environment_items(meta)), level=level))
    parts.append(H.section(f"{prefix}curves", "Curves", *_curves(run, dpi), level=level))
    grids = sample_epochs(run, 3 if compact else 6)
    if grids:
        parts.append(H.section(f"{prefix}samples", "Samples over epochs",
                               H.strip([(g, f"epoch {e}") for e, g in grids]),
                               H.p("the same fixed latents at every epoch (fixed_z.npy)",
                                   "muted"), level=level))
    series = comparable_series(records)
    if records:
        body: list[Any] = []
        if not compact:
            # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
            from ganscope.viz.metrics import make_metrics_figure

            with contextlib.suppress(UserError, KeyError, ValueError):  # a table still follows
                body.append(H.img_figure(make_metrics_figure(run, series), "metrics per epoch",
                                         "metrics per evaluated epoch", dpi))
        body.append(metrics_table(records))
        line = record_provenance(records[-1])
        if line:
            body.append(H.p(line, "muted"))
        parts.append(H.section(f"{prefix}metrics", "Metrics", *body, level=level))
    parts.append(H.section(
        f"{prefix}diagnostics", "Diagnostics",
        H.Raw("<ul>" + "".join(f'<li><span class="flag">{H.esc(f.code)}</span>: '
                               f"{H.esc(f.message)}</li>" for f in flags) + "</ul>")
        if flags else H.p("no flags: D did not win outright, no loss diverged, no collapse or "
                          "early best found", "ok"), level=level))
    if not compact:
        for extra in (_probe_section(run, f"{prefix}probe", level),
                      _directions_section(run, f"{prefix}directions", level)):
            if extra is not None:
                parts.append(extra)
        others = _other_figures(run)
        if others:
            parts.append(H.section(f"{prefix}figures", "Other figures", *others, level=level))
    return H.join(parts)


def footer() -> str:
    return f"written by ganscope {ganscope.__version__} at {now_iso()}; self-contained, no network"


def write_run_report(run: Run, out: str | Path | None = None) -> Path:
    """RUN/report.html (or ``out``): the whole run on one page."""
    body = run_body(run)
    nav = [(t, f"#{i}") for t, i in (("summary", "summary"), ("config", "config"),
                                       ("provenance", "provenance"), ("curves", "curves"),
                                       ("samples", "samples"), ("metrics", "metrics"),
                                       ("diagnostics", "diagnostics"))]
    doc = H.page(f"ganscope run {run.name}", body, subtitle=str(run.path), nav=nav,
                 footer=footer())
    return H.write(Path(out) if out else run.path / "report.html", doc)
