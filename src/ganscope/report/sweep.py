"""``ganscope report SWEEP``: the spec, the comparison over seeds with its intervals and note,
the band figures, and every run (a list with anchors, then each run's essentials)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ganscope.experiments import compare as C
from ganscope.metrics.labels import metric_spec
from ganscope.report import html as H
from ganscope.report.run import footer, run_body


def comparison_table(result: dict[str, Any]) -> H.Raw:
    """METRIC, CONFIG, SEEDS, MEAN, STD, CI LOW, CI HIGH, VALUES: the numbers as cells."""
    pct = f"{100 * result['level']:.0f} %"
    rows = []
    for k in result["metrics"]:
        spec = metric_spec(k)
        for g in result["groups"]:
            m = g["metrics"].get(k)
            if not m:
                continue
            vals = ", ".join(C.fmt(k, v) for v in m["values"])
            rows.append([C.metric_label(k), g["label"], H.cell(m["n"], "d"),
                         H.cell(m["mean"], spec, f"{g['label']}/{k}/mean"),
                         H.cell(m["std"], spec, f"{g['label']}/{k}/std"),
                         H.cell(m["lo"], spec, f"{g['label']}/{k}/lo"),
                         H.cell(m["hi"], spec, f"{g['label']}/{k}/hi"), vals])
    return H.table(["metric", "config", "seeds", "mean", "std", f"{pct} CI low",
                    f"{pct} CI high", "per seed"], rows, cls="comparison", tid="comparison-table")


def comparison_body(result: dict[str, Any], groups: list[C.Group], title: str = "",
                    level: int = 2, prefix: str = "") -> H.Raw:
    """The comparison's table, note and bands (shared by sweep reports and the lab's pages)."""
    notes = C.significance_notes(result)
    parts: list[Any] = [
        H.p(f"Per configuration: mean, sample std and the {100 * result['level']:.0f} % "
            "Student-t interval over seeds of each run's final evaluation (its last evaluated "
            "epoch), its best FID and its last epoch's mean losses."),
        comparison_table(result),
    ]
    if not result["comparable"]:
        parts.append(H.p("the runs were evaluated with different extractors, references or n: "
                         "their numbers are not comparable", "note"))
    if notes:
        parts.append(H.tag(f"h{level + 1}", "Significance note"))
        parts.append(H.p("Where two intervals overlap, the configurations are not "
                         "distinguishable at this number of seeds; where they are disjoint, "
                         "they are. Welch's t-test p is given as a second opinion."))
        parts.append(H.Raw("<ul class=\"notes\">" + "".join(f"<li>{H.esc(n)}</li>"
                                                           for n in notes) + "</ul>"))
    for name, fig in C.band_figures(groups, title).items():
        cap = ("mean ± std over seeds of each run's smoothed curves" if name == "bands_curves"
               else "metrics per epoch, mean ± std over seeds")
        parts.append(H.img_figure(fig, name, cap, dpi=80))
    return H.section(f"{prefix}comparison", "Comparison over seeds", *parts, level=level)


def write_sweep_report(sweep_dir: str | Path, out: str | Path | None = None) -> Path:
    sweep_dir = Path(sweep_dir)
    spec, groups = C.sweep_groups(sweep_dir)
    result = C.compare_groups(groups)
    n_runs = len(spec["cells"]) * len(spec["seeds"])
    status: dict[str, int] = {}
    for g in result["groups"]:
        for r in g["runs"]:
            status[r["status"]] = status.get(r["status"], 0) + 1
        if g["missing"]:
            status["not started"] = status.get("not started", 0) + len(g["missing"])
    spec_part = H.section(
        "spec", "Sweep",
        H.kv_table([("directory", str(sweep_dir)), ("config", spec.get("config", "-")),
                    *([("spec file", spec["file"])] if spec.get("file") else []),
                    ("--set", ", ".join(spec.get("set", [])) or "-"),
                    ("seeds", ", ".join(map(str, spec["seeds"]))),
                    ("cells", len(spec["cells"])), ("runs", n_runs),
                    ("status", ", ".join(f"{n} {s}" for s, n in sorted(status.items()))),
                    ("created", spec.get("created", "-"))]),
        *([H.p(spec["description"])] if spec.get("description") else []),
        *([H.tag("h3", "Variants"),
           H.table(["variant", "overrides"], [[v["name"], ", ".join(v["overrides"]) or "-"]
                                              for v in spec["variants"]])]
          if spec.get("variants") else []),
        H.tag("h3", "Grid"),
        H.table(["key", "values"], [[k, ", ".join(v)] for k, v in spec["grid"]])
        if spec["grid"] else H.p("no grid: " + ("the variants above, over seeds"
                                                if spec.get("variants")
                                                else "one configuration over seeds")))
    details = H.section(
        "cells", "Cells and base config",
        H.table(["cell", "overrides"], [[c["name"], ", ".join(c["overrides"]) or "-"]
                                        for c in spec["cells"]]),
        H.pre(yaml.safe_dump(spec["base"], sort_keys=False), "cols"),
        H.p("every run is this base config with its cell's overrides and its seed", "muted"))
    rows = []
    for g, og in zip(groups, result["groups"]):
        for r, info in zip(g.runs, og["runs"]):
            v = info["values"]
            rows.append([H.Raw(f"<td>{H.link(r.name, f'#run-{r.name}')}</td>"), g.label,
                         info["seed"], info["status"], info["epoch"],
                         H.cell(v.get("fid", v.get("sliced_wasserstein")), ".4g"),
                         ", ".join(info["flags"]) or "-"])
        for name in og["missing"]:
            rows.append([name, g.label, "-", "not started", "-", "-", "-"])
    runs_part = H.section("runs", "Runs",
                          H.table(["run", "config", "seed", "status", "last evaluated epoch",
                                   "final FID (or sliced W1)", "flags"], rows, cls="runs"))
    per_run = [H.section(f"run-{r.name}", f"Run {r.name}",
                         run_body(r, prefix=f"run-{r.name}-", level=3, compact=True),
                         level=2)
               for g in groups for r in g.runs]
    body = H.join([spec_part, comparison_body(result, groups, sweep_dir.name), runs_part,
                   details, *per_run])
    doc = H.page(f"ganscope sweep {sweep_dir.name}", body,
                 subtitle=f"{len(spec['cells'])} configurations x {len(spec['seeds'])} seeds",
                 nav=[("sweep", "#spec"), ("comparison", "#comparison"), ("runs", "#runs"),
                      ("cells", "#cells")],
                 footer=footer())
    return H.write(Path(out) if out else sweep_dir / "report.html", doc)
