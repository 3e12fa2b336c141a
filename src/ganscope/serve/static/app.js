// ganscope's browser view: plain JS, no build step, no network beyond this server.
// Pages (hash routes): #/ runs, #/run/NAME one run, #/latent/NAME the latent explorer,
// #/lab the live 2-D lab. Curves are drawn on canvas by the small Chart class below.
"use strict";

(() => {
  const TOKEN = new URLSearchParams(location.search).get("token");
  const gs = (window.ganscope = { latencies: [], lastLatency: null });

  // --- helpers ------------------------------------------------------------------------------

  function url(path, params = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== "") q.set(k, v);
    }
    if (TOKEN) q.set("token", TOKEN);
    const s = q.toString();
    return path + (s ? "?" + s : "");
  }

  async function asJSON(r) {
    let body;
    try { body = await r.json(); } catch (e) { body = { error: `${r.status} ${r.statusText}` }; }
    if (!r.ok) throw new Error(body.error || `request failed (${r.status})`);
    return body;
  }
  const getJSON = (path, params) => fetch(url(path, params)).then(asJSON);
  const postJSON = (path, data) => fetch(url(path), {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(data || {}),
  }).then(asJSON);

  function h(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of kids.flat()) {
      if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  const enc = encodeURIComponent;
  const pad4 = (n) => String(n).padStart(4, "0");

  function fmt(v, digits = 4) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return Number(v.toPrecision(digits)).toString();
  }

  const errorCard = (msg, title = "Error") =>
    h("div", { class: "card error-card", role: "alert" }, h("strong", { text: title + ": " }), msg);
  const note = (msg) => h("div", { class: "card note" }, msg);
  const badge = (status) => h("span", { class: `badge status-${status}`, text: status });

  // Things a page opened (streams, timers) that must end when the page is left.
  let cleanups = [];
  const onLeave = (fn) => cleanups.push(fn);

  // --- curves -------------------------------------------------------------------------------

  function niceTicks(lo, hi, n) {
    const span = hi - lo || 1;
    const step0 = span / n;
    const mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) out.push(t);
    return out;
  }

  function quantile(sorted, q) {
    if (!sorted.length) return NaN;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
    return sorted[i];
  }

  class Chart {
    // series: [{key, label, color}]; opts: {fixed: [lo, hi], ref: y, xLabel}
    constructor(title, series, opts = {}) {
      this.series = series;
      this.opts = opts;
      this.x = [];
      this.y = {};
      for (const s of series) this.y[s.key] = [];
      this.canvas = h("canvas", { class: "chart", width: 640, height: 220 });
      this.canvas.dataset.points = "0";
      const legend = series.map((s) =>
        h("span", { class: "legend-item" }, h("i", { class: "swatch", dataset: { color: s.color } }), s.label));
      this.titleEl = h("span", { class: "chart-title", text: title });
      this.el = h("figure", { class: "chart-box" }, h("figcaption", {}, this.titleEl, ...legend), this.canvas);
      for (const sw of this.el.querySelectorAll(".swatch")) sw.style.background = sw.dataset.color;
      this._queued = false;
      this._ro = new ResizeObserver(() => this.draw());
      this._ro.observe(this.canvas);
    }
    clear() { this.x = []; for (const s of this.series) this.y[s.key] = []; this.draw(); }
    set(cols) { this.clear(); this.append(cols); }
    append(cols) {
      if (!cols || !cols.step) return;
      for (let i = 0; i < cols.step.length; i++) {
        this.x.push(cols.step[i]);
        for (const s of this.series) this.y[s.key].push(cols[s.key][i]);
      }
      this.draw();
    }
    appendRows(rows, keys) {   // rows: [[step, v1, v2, ...]], keys: names of v1, v2, ...
      for (const r of rows) {
        this.x.push(r[0]);
        keys.forEach((k, j) => { if (this.y[k]) this.y[k].push(r[j + 1]); });
      }
      this.draw();
    }
    draw() {
      if (this._queued) return;
      this._queued = true;
      requestAnimationFrame(() => { this._queued = false; this._draw(); });
    }
    _draw() {
      const c = this.canvas;
      const dpr = window.devicePixelRatio || 1;
      const W = c.clientWidth || 640, H = c.clientHeight || 220;
      if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
        c.width = Math.round(W * dpr);
        c.height = Math.round(H * dpr);
      }
      const ctx = c.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
      ctx.font = "11px system-ui, sans-serif";
      const n = this.x.length;
      c.dataset.points = String(n);
      const pad = { l: 54, r: 12, t: 8, b: 24 };
      const pw = W - pad.l - pad.r, ph = H - pad.t - pad.b;
      if (!n) {
        ctx.fillStyle = "#888";
        ctx.fillText("no data yet", pad.l + 8, pad.t + 20);
        return;
      }
      const x0 = this.x[0], x1 = Math.max(this.x[n - 1], x0 + 1);
      let lo, hi;
      if (this.opts.fixed) [lo, hi] = this.opts.fixed;
      else {
        const vals = [];
        const stride = Math.max(1, Math.floor(n / 3000));
        for (const s of this.series) {
          const ys = this.y[s.key];
          for (let i = 0; i < ys.length; i += stride) if (Number.isFinite(ys[i])) vals.push(ys[i]);
        }
        vals.sort((a, b) => a - b);
        lo = quantile(vals, 0.005); hi = quantile(vals, 0.995);
        if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
        if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
        const m = 0.06 * (hi - lo); lo -= m; hi += m;
      }
      const X = (v) => pad.l + ((v - x0) / (x1 - x0)) * pw;
      const Y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * ph;
      // grid and axes
      ctx.strokeStyle = "#e4e4e4"; ctx.fillStyle = "#666"; ctx.lineWidth = 1;
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      for (const t of niceTicks(lo, hi, 5)) {
        ctx.beginPath(); ctx.moveTo(pad.l, Y(t)); ctx.lineTo(W - pad.r, Y(t)); ctx.stroke();
        ctx.fillText(fmt(t, 3), pad.l - 6, Y(t));
      }
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      for (const t of niceTicks(x0, x1, 6)) ctx.fillText(fmt(t, 4), X(t), H - pad.b + 6);
      ctx.strokeStyle = "#bbb";
      ctx.strokeRect(pad.l, pad.t, pw, ph);
      if (this.opts.ref !== undefined) {
        ctx.setLineDash([4, 4]); ctx.strokeStyle = "#999";
        ctx.beginPath(); ctx.moveTo(pad.l, Y(this.opts.ref)); ctx.lineTo(W - pad.r, Y(this.opts.ref)); ctx.stroke();
        ctx.setLineDash([]);
      }
      ctx.save();
      ctx.beginPath(); ctx.rect(pad.l, pad.t, pw, ph); ctx.clip();
      const stride = Math.max(1, Math.floor(n / (pw * 1.5)));
      const win = Math.max(1, Math.min(200, Math.round(n / 60)));
      for (const s of this.series) {
        const ys = this.y[s.key];
        const line = (vals, alpha, width) => {
          ctx.globalAlpha = alpha; ctx.strokeStyle = s.color; ctx.lineWidth = width;
          ctx.beginPath();
          let pen = false;
          for (let i = 0; i < n; i += stride) {
            const v = vals[i];
            if (!Number.isFinite(v)) { pen = false; continue; }
            if (pen) ctx.lineTo(X(this.x[i]), Y(v)); else { ctx.moveTo(X(this.x[i]), Y(v)); pen = true; }
          }
          const v = vals[n - 1];
          if (pen && Number.isFinite(v)) ctx.lineTo(X(this.x[n - 1]), Y(v));
          ctx.stroke();
        };
        if (win > 2) {
          line(ys, 0.22, 1);
          const sm = new Array(n);   // exponential moving average, the curves' trend
          const a = 2 / (win + 1);
          let acc = null;
          for (let i = 0; i < n; i++) {
            const v = ys[i];
            if (Number.isFinite(v)) acc = acc === null ? v : acc + a * (v - acc);
            sm[i] = acc;
          }
          line(sm, 1, 1.6);
        } else {
          line(ys, 1, 1.4);
        }
      }
      ctx.restore();
      ctx.globalAlpha = 1;
    }
  }

  const LOSS_SERIES = [{ key: "loss_d", label: "D loss", color: "#1f77b4" },
                       { key: "loss_g", label: "G loss", color: "#ff7f0e" }];
  const D_SERIES = [{ key: "d_x", label: "D(x)", color: "#2ca02c" },
                    { key: "d_g_z", label: "D(G(z))", color: "#d62728" }];

  function setDScale(chart, probability) {   // probabilities on [0, 1]; a critic's own range
    chart.titleEl.textContent = probability ? "Mean D output (probability; 0.5 = equilibrium)"
                                            : "Mean critic score (raw)";
    chart.opts = probability ? { fixed: [0, 1], ref: 0.5 } : {};
    chart.draw();
  }

  function curveCharts(probability) {
    const loss = new Chart("Losses per generator step", LOSS_SERIES);
    const d = new Chart("", D_SERIES);
    setDScale(d, probability);
    return { loss, d };
  }

  // --- metrics tables -----------------------------------------------------------------------

  // Labels and formats: the server's one metric table (ganscope.metrics.labels), asked once by
  // the pages that show metrics; the rows with a "web" header are the columns, in table order.
  let metricRows = [];
  let metricRowsAsked = null;
  function metricLabels() {
    metricRowsAsked = metricRowsAsked || getJSON("/api/metrics/labels").then((d) => {
      metricRows = d.metrics.filter((r) => r.web);
    }).catch((e) => { metricRowsAsked = null; throw e; });
    return metricRowsAsked;
  }

  function metricCell(row, v, m) {
    if (row.web_decimals !== null && typeof v === "number") return (row.scale * v).toFixed(row.web_decimals);
    if (row.web_of && m && m[row.web_of]) return `${v}/${m[row.web_of]}`;
    return fmt(v);
  }

  function metricsTable(records, bestEpoch, extra = [], empty = null) {
    if (!records.length) return note(empty || "No evaluations yet (ganscope eval RUN, or train with --eval-every 1).");
    const rows = metricRows.filter((c) => records.some((r) => r.metrics && c.key in r.metrics));
    const head = ["epoch", ...extra.map((e) => e[0]), ...rows.map((c) => c.web)];
    return h("table", { class: "metrics" },
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { text: t })))),
      h("tbody", {}, records.map((r) => h("tr", { class: r.epoch === bestEpoch ? "best" : null },
        h("td", { text: String(r.epoch ?? "–") }),
        extra.map((e) => h("td", { text: fmt(e[1](r)) })),
        rows.map((c) => h("td", { text: metricCell(c, r.metrics[c.key], r.metrics) }))))));
  }

  // --- page: runs ---------------------------------------------------------------------------

  function keyMetric(r) {
    if (r.best && r.best.fid !== undefined) return `FID ${fmt(r.best.fid)} @${r.best.epoch}`;
    const m = r.latest_metrics || {};
    if (m.modes_covered !== undefined) {
      return `${m.modes_covered}/${m.n_modes} modes, ${(100 * (m.hq_fraction || 0)).toFixed(0)}% HQ`;
    }
    if (m.sliced_wasserstein !== undefined) return `sliced W1 ${fmt(m.sliced_wasserstein)}`;
    return "–";
  }

  function runsPage(view) {
    const box = h("div", { id: "runs" });
    view.append(h("h1", { text: "Runs" }), box);
    let timer = null;
    onLeave(() => clearTimeout(timer));
    async function load() {
      let data;
      try { data = await getJSON("/api/runs"); } catch (e) { box.replaceChildren(errorCard(e.message)); return; }
      if (!data.runs.length) {
        box.replaceChildren(note(`No runs in ${data.runs_dir} yet: train one with \`ganscope train e1-mlp\`, or start the live 2-D lab.`));
        return;
      }
      const rows = [];
      for (const r of data.runs) {
        const link = h("a", { href: `#/run/${enc(r.name)}`, text: r.name, class: "run-link" });
        rows.push(h("tr", { class: r.error ? "damaged" : null, dataset: { run: r.name } },
          h("td", {}, link), h("td", {}, badge(r.status)), h("td", { text: r.preset || "–" }),
          h("td", { text: r.epochs_planned ? `${r.epochs_done}/${r.epochs_planned}` : "–" }),
          h("td", { class: "num", text: fmt((r.last || {}).loss_d) }),
          h("td", { class: "num", text: fmt((r.last || {}).loss_g) }),
          h("td", { text: keyMetric(r) }),
          h("td", {}, (r.flags || []).map((f) => h("span", { class: "flag", title: f.message, text: f.code })))));
        if (r.error) rows.push(h("tr", { class: "error-row" }, h("td", { colspan: 8 }, errorCard(r.error, "Cannot read this run"))));
      }
      box.replaceChildren(h("table", { class: "runs" },
        h("thead", {}, h("tr", {}, ["Run", "Status", "Preset", "Epochs", "D loss", "G loss", "Quality", "Flags"].map((t) => h("th", { text: t })))),
        h("tbody", {}, rows)));
      if (data.runs.some((r) => r.status === "running")) timer = setTimeout(load, 3000);
    }
    load();
  }

  // --- page: one run ------------------------------------------------------------------------

  async function runPage(view, name) {
    const head = h("div", { class: "run-head" });
    view.append(head);
    let d;
    try { [d] = await Promise.all([getJSON(`/api/runs/${enc(name)}`), metricLabels()]); } catch (e) {
      head.append(h("h1", { text: name }), errorCard(e.message), h("p", {}, h("a", { href: "#/", text: "← all runs" })));
      return;
    }
    const errs = h("div", { id: "run-errors" });
    const flags = h("div", { id: "run-flags" });
    const metricsBox = h("div", { id: "run-metrics" });
    const samplesBox = h("div", { id: "run-samples", class: "card" });
    const figuresBox = h("div", { id: "run-figures" });
    const probability = !d.meta || d.meta.d_output !== "raw critic score";
    const charts = curveCharts(probability);
    const curvesErr = h("div");
    let lastStep = 0;

    function renderHead() {
      const facts = [
        d.preset && `preset ${d.preset}`, d.model && `model ${d.model}`,
        d.epochs_planned && `epoch ${d.epochs_done}/${d.epochs_planned}`,
        d.step && `step ${d.step}`, d.meta && d.meta.seed !== undefined && `seed ${d.meta.seed}`,
        d.meta && d.meta.device && `device ${d.meta.device}`,
        d.start_time && `started ${d.start_time.replace("T", " ").slice(0, 19)}`,
      ].filter(Boolean).join(" · ");
      const actions = [];
      if (d.kind === "images" && (d.generators.length || d.has_last)) {
        actions.push(h("a", { class: "button", href: `#/latent/${enc(d.name)}`, text: "Explore the latent space →" }));
      }
      head.replaceChildren(
        h("p", { class: "crumbs" }, h("a", { href: "#/", text: "Runs" }), " / ", d.name),
        h("h1", {}, d.name, " ", badge(d.status)), h("p", { class: "muted", text: facts }), ...actions);
      errs.replaceChildren(...(d.errors || []).map((m) => errorCard(m, "Damaged")));
      if (d.meta && d.meta.error) errs.append(errorCard(d.meta.error, "Training failed"));
      flags.replaceChildren(h("h2", { text: "Diagnostics" }),
        (d.flags || []).length
          ? h("ul", { class: "flags" }, d.flags.map((f) => h("li", {}, h("span", { class: "flag", text: f.code }), " ", f.message)))
          : h("p", { class: "muted", text: "No flags: D does not win outright, no NaN loss, no collapse, no early best." }));
    }

    function renderMetrics() {
      const best = d.best ? d.best.epoch : null;
      metricsBox.replaceChildren(h("h2", { text: "Metrics" }),
        d.best ? h("p", { class: "muted", text: `best FID ${fmt(d.best.fid)} at epoch ${d.best.epoch} (${d.best.checkpoint})` }) : "",
        metricsTable(d.metrics || [], best));
    }

    let sampleIdx = -1;
    function renderSamples() {
      const eps = d.samples || [];
      if (!eps.length) { samplesBox.replaceChildren(h("h2", { text: "Samples" }), note("No sample grid yet: one is saved after each epoch.")); return; }
      const atEnd = sampleIdx < 0 || sampleIdx >= eps.length - 2;
      if (atEnd) sampleIdx = eps.length - 1;
      const img = h("img", { id: "sample-img", class: d.kind === "images" ? "sample-grid pixelated" : "sample-grid", alt: "sample grid" });
      const label = h("span", { id: "sample-label", class: "muted" });
      const scrub = h("input", { id: "sample-scrubber", type: "range", min: 0, max: eps.length - 1, step: 1, value: sampleIdx, "aria-label": "epoch" });
      const show = () => {
        sampleIdx = +scrub.value;
        const e = eps[sampleIdx];
        img.src = url(`/api/runs/${enc(d.name)}/samples/epoch-${pad4(e)}.png`);
        label.textContent = `epoch ${e} (${sampleIdx + 1} of ${eps.length} grids)`;
      };
      scrub.addEventListener("input", show);
      samplesBox.replaceChildren(h("h2", { text: d.kind === "points" ? "Snapshots per epoch" : "Samples per epoch (fixed z)" }),
        h("div", { class: "scrub-row" }, scrub, label), img);
      show();
    }

    function renderFigures() {
      const figs = d.figures || [];
      figuresBox.replaceChildren(h("h2", { text: "Figures" }), figs.length
        ? h("div", { class: "figures" }, figs.map((f) => {
          const u = url(`/api/runs/${enc(d.name)}/figures/${enc(f)}`);
          return h("a", { href: u, target: "_blank", rel: "noopener" }, h("img", { src: u, alt: f, loading: "lazy" }), h("span", { text: f }));
        }))
        : h("p", { class: "muted", text: "No figures yet (ganscope plot RUN writes them)." }));
    }

    renderHead(); renderMetrics(); renderSamples(); renderFigures();
    view.append(errs,
      h("section", { class: "grid2" }, h("div", { class: "card" }, h("h2", { text: "Curves" }), curvesErr, charts.loss.el, charts.d.el), samplesBox),
      h("section", { class: "grid2" }, h("div", { class: "card" }, metricsBox), h("div", { class: "card" }, flags)),
      h("section", { class: "card" }, figuresBox),
      h("section", { class: "card" }, h("details", {}, h("summary", { text: "Config and provenance" }),
        h("pre", { text: JSON.stringify({ config: d.config, meta: d.meta }, null, 1) }))));

    try {
      const cols = await getJSON(`/api/runs/${enc(name)}/events`);
      charts.loss.set(cols); charts.d.set(cols);
      lastStep = cols.last_step || 0;
    } catch (e) { curvesErr.replaceChildren(errorCard(e.message, "Curves")); }

    async function refresh() {
      try { d = await getJSON(`/api/runs/${enc(name)}`); } catch (e) { return; }
      renderHead(); renderMetrics(); renderSamples(); renderFigures();
    }

    let es = null, retry = null, alive = true;
    onLeave(() => { alive = false; if (es) es.close(); clearTimeout(retry); });
    function follow() {
      if (!alive) return;
      es = new EventSource(url(`/api/runs/${enc(name)}/stream`, { after: lastStep }));
      es.addEventListener("events", (ev) => {
        const cols = JSON.parse(ev.data);
        charts.loss.append(cols); charts.d.append(cols);
        if (cols.last_step) lastStep = cols.last_step;
      });
      es.addEventListener("status", () => refresh());
      es.addEventListener("end", (ev) => {
        es.close(); es = null;
        const info = JSON.parse(ev.data);
        if (info.reason === "lifetime") follow(); else refresh();
      });
      es.onerror = () => { if (es) es.close(); es = null; retry = setTimeout(follow, 2000); };
    }
    if (d.status === "running") follow();
  }

  // --- page: latent explorer ----------------------------------------------------------------

  const E4_DIMS = [20, 50, 60, 70, 90];   // seed 000's E4 choice, when there is no probe

  async function latentPage(view, name) {
    view.append(h("h1", { text: "Latent explorer" }));
    let runs;
    try { runs = (await getJSON("/api/runs")).runs; } catch (e) { view.append(errorCard(e.message)); return; }
    const imageRuns = runs.filter((r) => r.kind === "images" && !r.error);
    if (!imageRuns.length) { view.append(note("No image runs to explore yet: train one with `ganscope train e1-mlp`.")); return; }
    if (!name) name = imageRuns[0].name;
    const runSel = h("select", { id: "latent-run", "aria-label": "run" },
      imageRuns.map((r) => h("option", { value: r.name, text: r.name, selected: r.name === name })));
    runSel.addEventListener("change", () => { location.hash = `#/latent/${enc(runSel.value)}`; });
    const controls = h("div", { class: "controls card" }, h("label", {}, "Run ", runSel));
    view.append(controls);
    let info;
    try { info = await getJSON(`/api/runs/${enc(name)}/latent`); } catch (e) { view.append(errorCard(e.message)); return; }
    if (info.error) { view.append(errorCard(info.error)); return; }
    const L = info.limits;
    const epochSel = h("select", { id: "latent-epoch", "aria-label": "checkpoint" },
      info.has_last ? h("option", { value: "last", text: "last" }) : null,
      [...info.epochs].reverse().map((e) => h("option", { value: e, text: `epoch ${e}` })));
    const seedIn = h("input", { id: "latent-seed", type: "number", min: 0, max: L.max_seed, value: 23231, "aria-label": "seed" });
    const nSel = h("select", { id: "latent-n", "aria-label": "samples" }, [1, 4, 8].map((k) => h("option", { value: k, text: String(k), selected: k === 8 })));
    const randomBtn = h("button", { type: "button", text: "random seed" });
    controls.append(h("label", {}, "Checkpoint ", epochSel), h("label", {}, "Seed ", seedIn), randomBtn,
      h("label", {}, "Samples ", nSel));
    // Conditional and InfoGAN runs: the class (categorical code) G reads off z[0]; "any" keeps z's own.
    const classes = info.classes || [];
    const codes = info.codes || {};
    const classSel = info.conditional && classes.length
      ? h("select", { id: "latent-class", "aria-label": "class" },
        h("option", { value: "", text: "any (from z)" }),
        classes.map((c, i) => h("option", { value: i, text: c.endsWith(` ${i}`) ? c : `${i}: ${c}` })),
        h("option", { value: "all", text: "all (one row each)" }))
      : null;
    if (classSel) controls.append(h("label", { title: `${info.conditional}: sets z[0] to the class's value before the sliders move z` }, "Class ", classSel));

    const img = h("img", { id: "latent-img", class: "latent-img pixelated", alt: "generated images" });
    const latency = h("p", { id: "latency", class: "muted" });
    const imgErr = h("div", { id: "latent-error" });
    const shifts = new Map();   // dim -> shift
    const moves = new Map();    // direction name -> amount
    const sentences = (info.probe && info.probe.sentences) || {};

    // One request in flight at a time; a slider that moves meanwhile asks for its latest value.
    let inflight = false, wanted = null, wantedT = 0, currentT = 0, currentUrl = "";
    function imageUrl() {
      const sh = [...shifts].filter(([, v]) => v !== 0).map(([d, v]) => `${d}:${v}`).join(",");
      const dv = [...moves].filter(([, v]) => v !== 0).map(([k, v]) => `${k}:${v}`).join(",");
      return url(`/api/runs/${enc(name)}/latent/image`, { epoch: epochSel.value, seed: seedIn.value, n: nSel.value, shift: sh, dirs: dv,
        class: classSel ? classSel.value : "" });
    }
    function requestImage(t) {
      wanted = imageUrl(); wantedT = t || performance.now();
      if (!inflight) loadNext();
    }
    function loadNext() {
      if (!wanted) return;
      const u = wanted; wanted = null;
      if (u === currentUrl) return;
      inflight = true; currentT = wantedT; currentUrl = u;
      img.src = u;
    }
    img.addEventListener("load", () => {
      inflight = false;
      // one row per class: fit the grid's height instead of the strip's width
      img.classList.toggle("rows", new URL(img.src, location.href).searchParams.get("class") === "all");
      const ms = performance.now() - currentT;
      gs.latencies.push(ms); gs.lastLatency = ms;
      img.dataset.loads = String((+img.dataset.loads || 0) + 1);
      latency.textContent = `last update ${ms.toFixed(1)} ms (input to image)`;
      imgErr.replaceChildren();
      loadNext();
    });
    img.addEventListener("error", async () => {
      inflight = false;
      const u = currentUrl; currentUrl = "";
      try { await fetch(u).then(asJSON); } catch (e) { imgErr.replaceChildren(errorCard(e.message)); }
      loadNext();
    });

    const dimsBox = h("div", { id: "dim-sliders" });
    const addIn = h("input", { type: "number", min: 0, max: info.z_dim - 1, placeholder: `0..${info.z_dim - 1}`, "aria-label": "dimension to add", class: "dim-add" });
    const addBtn = h("button", { type: "button", text: "add slider" });

    function sliderRow(label, id, onValue, extraNodes, sentence) {
      const range = h("input", { type: "range", min: -L.max_shift, max: L.max_shift, step: 0.1, value: 0, class: "slider", id, "aria-label": label });
      const val = h("output", { class: "value", text: "0" });
      const reset = h("button", { type: "button", class: "small", text: "0", title: "back to the seed's value" });
      range.addEventListener("input", (ev) => { val.textContent = (+range.value).toFixed(1); onValue(+range.value, ev.timeStamp); });
      reset.addEventListener("click", () => { range.value = 0; val.textContent = "0"; onValue(0); });
      return h("div", { class: "slider-row" },
        h("div", { class: "slider-main" }, h("span", { class: "slider-label", text: label }), range, val, reset, extraNodes),
        h("div", { class: "sentence", text: sentence }));
    }

    function addDim(dim) {
      if (!(dim >= 0 && dim < info.z_dim) || shifts.has(dim)) return;
      if (shifts.size >= L.max_dims) { imgErr.replaceChildren(errorCard(`at most ${L.max_dims} sliders at once`)); return; }
      shifts.set(dim, 0);
      const remove = h("button", { type: "button", class: "small", text: "×", title: "remove" });
      let sentence = sentences[String(dim)] || (info.probe ? `dim ${dim}: not probed` : `dim ${dim}: no probe result (run \`ganscope latent probe ${name}\`)`);
      const code = codes[String(dim)];
      if (code) sentence = `dim ${dim} — ${code}` + (sentences[String(dim)] ? `; ${sentence}` : "");
      const row = sliderRow(`z[${dim}] +`, `dim-${dim}`, (v, t) => { shifts.set(dim, v); requestImage(t); }, remove, sentence);
      row.dataset.dim = String(dim);
      if (code) row.dataset.code = code;
      remove.addEventListener("click", () => { shifts.delete(dim); row.remove(); requestImage(); });
      dimsBox.append(row);
    }
    addBtn.addEventListener("click", () => { addDim(parseInt(addIn.value, 10)); addIn.value = ""; });

    const ranked = info.probe ? info.probe.ranked : [];
    const initial = (ranked.length ? ranked.slice(0, 5) : E4_DIMS.filter((d) => d < info.z_dim));
    // a conditional run's code dims first: what moves the class and InfoGAN's continuous codes
    Object.keys(codes).map(Number).filter((d) => d < info.z_dim).forEach(addDim);
    (initial.length ? initial : [0, 1, 2].filter((d) => d < info.z_dim)).forEach(addDim);

    const dirBox = h("div", { id: "dir-sliders" });
    for (const dn of info.directions) {
      moves.set(dn.name, 0);
      const what = [dn.attribute, dn.method].filter(Boolean).join(", ");
      dirBox.append(sliderRow(`${dn.name} ×`, `dir-${dn.name}`, (v, t) => { moves.set(dn.name, v); requestImage(t); }, null,
        `direction ${dn.name}${what ? ` (${what})` : ""}: z moves along its unit vector`));
    }

    const probeNote = info.probe
      ? h("p", { class: "muted", text: `Sentences from the probe of epoch ${info.probe.epoch ?? "?"} (${info.probe.ranked.length} dims; + means increasing z[d]). Top dims: ${ranked.slice(0, 10).join(", ")}` })
      : h("p", { class: "muted", text: `No probe result for this run: \`ganscope latent probe ${name}\` measures what every dimension does.` });
    if (info.probe_error) probeNote.replaceWith(errorCard(info.probe_error, "Probe"));

    view.append(h("section", { class: "latent-layout" },
      h("div", { class: "card image-card" }, img, latency, imgErr,
        h("p", { class: "muted", text: `z = torch.manual_seed(seed); randn(n, ${info.z_dim}); sliders add to z (|shift| ≤ ${L.max_shift}).` }),
        classSel ? h("p", { class: "muted", text: "A chosen class sets z[0] to the middle of its interval (as `ganscope generate --class`) before the sliders add to z." }) : null),
      h("div", { class: "card" }, h("h2", { text: "Latent dimensions" }), probeNote, dimsBox,
        h("div", { class: "add-row" }, addIn, addBtn),
        info.directions.length ? [h("h2", { text: "Directions" }), dirBox] : "")));

    for (const el of [epochSel, nSel, classSel].filter(Boolean)) el.addEventListener("change", () => requestImage());
    seedIn.addEventListener("input", () => requestImage());
    randomBtn.addEventListener("click", () => { seedIn.value = Math.floor(Math.random() * 100000); requestImage(); });
    requestImage();
  }

  // --- page: live 2-D lab -------------------------------------------------------------------
  // One run or a race of up to four (lanes), every frame drawn from the server's snapshots:
  // generated points over D's surface, G's force arrows, the latent mesh (z of size 2). The
  // target is a shipped set or one drawn here with the mouse (or dropped as a points file).

  function rdbu(t) {   // RdBu reversed: low blue, middle white, high red (scored "real")
    t = Math.min(1, Math.max(0, t));
    const lo = [33, 102, 172], mid = [247, 247, 247], hi = [178, 24, 43];
    const [a, b, u] = t < 0.5 ? [lo, mid, t / 0.5] : [mid, hi, (t - 0.5) / 0.5];
    return a.map((v, i) => Math.round(v + (b[i] - v) * u));
  }

  const LAYERS = [["surface", "D surface"], ["target", "target"], ["fake", "generated"],
                  ["arrows", "G's gradient"], ["mesh", "latent mesh"]];
  const SPEEDS = [["max", "as fast as it goes"], ["200", "200 steps/s"], ["50", "50 steps/s"], ["20", "20 steps/s"],
                  ["10", "10 steps/s"], ["5", "5 steps/s"], ["2", "2 steps/s"], ["1", "1 step/s"]];

  function drawPanel(opts) {
    // The target drawn with the mouse: strokes of points (undo removes the last stroke).
    const [x0, x1, y0, y1] = opts.draw.extent;
    const canvas = h("canvas", { id: "draw-canvas", width: 400, height: 400, title: "paint the target; drop a points file here" });
    const brush = h("input", { id: "draw-brush", type: "range", min: 0.05, max: 1, step: 0.05, value: 0.25 });
    const density = h("input", { id: "draw-density", type: "range", min: 1, max: 20, step: 1, value: 5 });
    const count = h("span", { id: "draw-count", class: "muted", text: "0 points" });
    const clear = h("button", { id: "draw-clear", type: "button", text: "Clear" });
    const undo = h("button", { id: "draw-undo", type: "button", text: "Undo" });
    const err = h("div", { id: "draw-error" });
    const strokes = [];
    let cur = null;
    const points = () => strokes.flat();
    gs.drawn = [];
    const W = canvas.width, H = canvas.height;
    const X = (x) => ((x - x0) / (x1 - x0)) * W, Y = (y) => H - ((y - y0) / (y1 - y0)) * H;
    function redraw() {
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
      ctx.strokeStyle = "#eee"; ctx.lineWidth = 1;
      for (let v = Math.ceil(x0); v <= x1; v++) { ctx.beginPath(); ctx.moveTo(X(v), 0); ctx.lineTo(X(v), H); ctx.stroke(); }
      for (let v = Math.ceil(y0); v <= y1; v++) { ctx.beginPath(); ctx.moveTo(0, Y(v)); ctx.lineTo(W, Y(v)); ctx.stroke(); }
      ctx.strokeStyle = "#ccc"; ctx.beginPath(); ctx.moveTo(X(0), 0); ctx.lineTo(X(0), H); ctx.moveTo(0, Y(0)); ctx.lineTo(W, Y(0)); ctx.stroke();
      ctx.fillStyle = "rgba(40,40,40,0.7)";
      const pts = points();
      for (const [x, y] of pts) ctx.fillRect(X(x) - 1, Y(y) - 1, 2, 2);
      gs.drawn = pts;
      count.textContent = `${pts.length} points${pts.length < opts.draw.min_points ? ` (at least ${opts.draw.min_points})` : ""}`;
      count.dataset.n = String(pts.length);
    }
    function dab(ev) {
      const r = canvas.getBoundingClientRect();
      const cx = x0 + ((ev.clientX - r.left) / r.width) * (x1 - x0);
      const cy = y0 + (1 - (ev.clientY - r.top) / r.height) * (y1 - y0);
      const rad = +brush.value;
      for (let i = 0; i < +density.value; i++) {
        const a = Math.random() * 2 * Math.PI, d = rad * Math.sqrt(Math.random());
        cur.push([Math.round((cx + d * Math.cos(a)) * 1e4) / 1e4, Math.round((cy + d * Math.sin(a)) * 1e4) / 1e4]);
      }
      redraw();
    }
    canvas.addEventListener("mousedown", (ev) => { cur = []; strokes.push(cur); dab(ev); });
    canvas.addEventListener("mousemove", (ev) => { if (cur && ev.buttons & 1) dab(ev); });
    window.addEventListener("mouseup", () => { cur = null; });
    clear.addEventListener("click", () => { strokes.length = 0; redraw(); });
    undo.addEventListener("click", () => { strokes.pop(); redraw(); });
    canvas.addEventListener("dragover", (ev) => ev.preventDefault());
    canvas.addEventListener("drop", async (ev) => {
      ev.preventDefault();
      const file = ev.dataTransfer && ev.dataTransfer.files[0];
      if (!file) return;
      const bytes = new Uint8Array(await file.arrayBuffer());
      let bin = "";
      for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      try {
        const r = await postJSON("/api/lab/target/file", { name: file.name, content: btoa(bin) });
        strokes.push(r.points); err.replaceChildren(); redraw();
      } catch (e) { err.replaceChildren(errorCard(e.message, "Points file")); }
    });
    redraw();
    const el = h("section", { id: "lab-draw", class: "card" },
      h("h2", { text: "Draw the target" }),
      h("div", { class: "controls" }, h("label", {}, "brush", brush), h("label", {}, "density", density), undo, clear, count),
      canvas, h("p", { class: "muted", text: `Paint with the mouse (window ${x0}..${x1} on both axes), or drop a .csv/.txt/.npy points file on the canvas. The drawing becomes each run's target.csv (points:FILE), checked like a points file.` }), err);
    return { el, points };
  }

  async function labPage(view) {
    view.append(h("h1", { text: "Live 2-D lab" }));
    let opts;
    try { [opts] = await Promise.all([getJSON("/api/lab/options"), metricLabels()]); } catch (e) { view.append(errorCard(e.message)); return; }
    const sel = (id, items, value) => h("select", { id }, items.map((v) => h("option", { value: v, text: v, selected: v === value })));
    const num = (id, value, attrs = {}) => h("input", { id, type: "number", value, ...attrs });
    const label = (t, el) => h("label", {}, t, " ", el);
    const dflt = opts.defaults;
    const f = {
      data: sel("lab-data", opts.data, dflt.data),
      steps: num("lab-steps", dflt.steps, { min: opts.bounds.steps[0], max: opts.bounds.steps[1] }),
      seed: num("lab-seed", dflt.seed, { min: 0 }),
      speed: h("select", { id: "lab-speed" }, SPEEDS.map(([v, t]) => h("option", { value: v, text: t }))),
    };
    // lanes: lane 0's inputs keep the single run's ids (lab-loss, ...), lane k's get "-k"
    const lanesBox = h("div", { id: "lab-lanes-form" });
    const lanes = [];
    function addLane(loss, optim) {
      const k = lanes.length, sfx = k ? `-${k}` : "";
      const L = {
        loss: sel(`lab-loss${sfx}`, opts.loss, loss), optim: sel(`lab-optim${sfx}`, opts.optim, optim),
        lr_g: num(`lab-lr-g${sfx}`, "", { step: "any", min: opts.bounds.lr[0], max: opts.bounds.lr[1] }),
        lr_d: num(`lab-lr-d${sfx}`, "", { step: "any", min: opts.bounds.lr[0], max: opts.bounds.lr[1] }),
        n_critic: num(`lab-n-critic${sfx}`, "", { min: 1, max: opts.bounds.n_critic[1] }),
      };
      const cellDefaults = () => {
        const c = opts.cells[`${L.loss.value}-${L.optim.value}`];
        L.lr_g.value = c.lr_g; L.lr_d.value = c.lr_d; L.n_critic.value = c.n_critic;
      };
      L.loss.addEventListener("change", cellDefaults); L.optim.addEventListener("change", cellDefaults);
      cellDefaults();
      const remove = h("button", { type: "button", class: "small", text: "×", title: "remove this run from the race" });
      L.row = h("div", { class: "controls lane-form", dataset: { lane: String(k) } },
        h("strong", { text: k ? `run ${k + 1}` : "run 1" }), label("Loss", L.loss), label("Optimiser", L.optim),
        label("lr G", L.lr_g), label("lr D", L.lr_d), label("n_critic", L.n_critic), k ? remove : "");
      remove.addEventListener("click", () => { L.row.remove(); lanes.splice(lanes.indexOf(L), 1); addBtn.disabled = false; });
      lanes.push(L); lanesBox.append(L.row);
      addBtn.disabled = lanes.length >= opts.max_lanes;
    }
    const addBtn = h("button", { id: "lab-add-lane", type: "button", text: "+ race another run" });
    addBtn.addEventListener("click", () => addLane("wgan-gp", "adam"));
    addLane(dflt.loss, dflt.optim);

    const btn = (id, text) => h("button", { id, type: "button", text });
    const b = { start: btn("lab-start", "▶ Start"), pause: btn("lab-pause", "❚❚ Pause"), play: btn("lab-play", "▶ Play"),
                step: btn("lab-step", "Step"), stop: btn("lab-stop", "■ Stop") };
    const status = h("p", { id: "lab-status", class: "muted", text: "Not started." });
    const err = h("div", { id: "lab-error" });
    const layers = {};
    const layerBox = h("div", { class: "controls layers" }, h("span", { class: "muted", text: "show:" }),
      LAYERS.map(([k, t]) => { layers[k] = h("input", { type: "checkbox", id: `layer-${k}`, checked: true }); return h("label", {}, layers[k], t); }));
    const scrub = h("input", { id: "lab-scrub", type: "range", min: 0, max: 0, value: 0, step: 1, disabled: true });
    const scrubLabel = h("span", { id: "lab-scrub-label", class: "muted", text: "live" });
    const liveBtn = h("button", { id: "lab-live", type: "button", text: "live", disabled: true });
    const raceTable = h("div", { id: "lab-race-table" });
    const panelsBox = h("section", { id: "lab-panels", class: "lab-panels" });
    const draw = drawPanel(opts);
    draw.el.hidden = f.data.value !== "drawn";
    f.data.addEventListener("change", () => { draw.el.hidden = f.data.value !== "drawn"; });
    view.append(
      h("section", { class: "card lab-form" },
        h("div", { class: "controls" }, label("Target", f.data), label("G steps", f.steps), label("Seed", f.seed), label("Speed", f.speed),
          h("div", { class: "buttons" }, b.start, b.pause, b.play, b.step, b.stop)),
        lanesBox, h("div", { class: "controls" }, addBtn, h("span", { class: "muted", text: "runs race on the same target and seed, in lockstep" }))),
      draw.el, err,
      h("section", { class: "card" }, status, layerBox,
        h("div", { class: "scrub-row" }, h("span", { class: "muted", text: "snapshots" }), scrub, scrubLabel, liveBtn),
        h("p", { class: "legend" }, h("i", { class: "dot target" }), "target ", h("i", { class: "dot fake" }), "generated (fixed z) ",
          h("i", { class: "swatch arrow-swatch" }), "−∇ of G's loss ", h("i", { class: "swatch mesh-swatch" }), "G(latent grid) ",
          h("span", { class: "muted", text: "surface: D's output (red: scored real, blue: fake)" })),
        h("h2", { text: "Live metrics (500 fixed-z points)" }), raceTable),
      panelsBox);

    let scenes = [], panels = [], race = null, es = null, alive = true, retry = null, pinned = false;
    gs.frames = 0;
    onLeave(() => { alive = false; if (es) es.close(); clearTimeout(retry); });
    const off = document.createElement("canvas");

    function makePanel(k, name) {
      const canvas = h("canvas", { id: k ? `lab-canvas-${k}` : "lab-canvas", class: "lab-canvas", width: 480, height: 480 });
      const title = h("h2", { class: "lane-title" });
      const settings = h("p", { class: "muted lane-settings" });
      const metrics = h("div", { class: "lane-metrics", id: k ? `lab-metrics-${k}` : "lab-metrics" });
      const charts = curveCharts(true);
      const el = h("div", { class: "card lane", dataset: { lane: String(k), run: name } }, title, canvas, settings, charts.loss.el, charts.d.el,
        h("h2", { text: "Evaluations (the run's own)" }), metrics);
      return { k, el, canvas, title, settings, metrics, charts, st: null, snap: null, shown: null };
    }

    function drawLane(p) {
      const canvas = p.canvas, scene = scenes[p.k];
      const ctx = canvas.getContext("2d");
      const W = canvas.width, H = canvas.height;
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
      if (!scene) { ctx.fillStyle = "#888"; ctx.font = "14px system-ui"; ctx.fillText("Start a run to see it train.", 20, 30); return; }
      const snap = p.shown;
      const [x0, x1, y0, y1] = scene.extent;
      const X = (x) => ((x - x0) / (x1 - x0)) * W, Y = (y) => H - ((y - y0) / (y1 - y0)) * H;
      if (layers.surface.checked && snap && snap.surface && snap.surface.length) {
        const n = snap.surface.length;
        off.width = n; off.height = n;
        const octx = off.getContext("2d");
        const im = octx.createImageData(n, n);
        let lo = 0, hi = 1;
        if (!(p.st && p.st.probability)) { lo = snap.surface_min ?? 0; hi = snap.surface_max ?? 1; if (hi - lo < 1e-9) hi = lo + 1; }
        for (let r = 0; r < n; r++) {
          for (let c = 0; c < n; c++) {
            const v = snap.surface[r][c];
            const [R, G, B] = v === null ? [255, 255, 255] : rdbu((v - lo) / (hi - lo));
            const q = ((n - 1 - r) * n + c) * 4;   // row 0 is the lowest y: draw it at the bottom
            im.data[q] = R; im.data[q + 1] = G; im.data[q + 2] = B; im.data[q + 3] = 150;
          }
        }
        octx.putImageData(im, 0, 0);
        ctx.imageSmoothingEnabled = true;
        ctx.drawImage(off, 0, 0, W, H);
      }
      if (layers.target.checked) {
        ctx.fillStyle = "rgba(70,70,70,0.55)";
        for (const [x, y] of scene.target) ctx.fillRect(X(x) - 1, Y(y) - 1, 2, 2);
      }
      let meshLines = 0, arrows = 0;
      if (snap && layers.mesh.checked && snap.mesh) {
        ctx.strokeStyle = "rgba(124,58,237,0.55)"; ctx.lineWidth = 1;
        const m = snap.mesh, n = m.length;
        const line = (get) => {
          ctx.beginPath();
          for (let j = 0; j < n; j++) { const [x, y] = get(j); if (j) ctx.lineTo(X(x), Y(y)); else ctx.moveTo(X(x), Y(y)); }
          ctx.stroke(); meshLines++;
        };
        for (let i = 0; i < n; i++) { line((j) => m[i][j]); line((j) => m[j][i]); }
      }
      if (snap && layers.fake.checked && snap.fake) {
        ctx.fillStyle = "rgba(255,127,14,0.85)";
        for (const q of snap.fake) if (q[0] !== null && q[1] !== null) ctx.fillRect(X(q[0]) - 1.5, Y(q[1]) - 1.5, 3, 3);
      }
      if (snap && layers.arrows.checked && snap.arrows && snap.arrows.length) {
        // relative sizes: the longest arrow of the frame is 9% of the panel
        let mx = 0;
        for (const [gx, gy] of snap.arrows) if (gx !== null && gy !== null) mx = Math.max(mx, Math.hypot(gx, gy));
        const scale = mx > 0 ? (0.09 * W) / mx : 0;
        ctx.strokeStyle = "#111"; ctx.fillStyle = "#111"; ctx.lineWidth = 1.3;
        snap.arrows.forEach(([gx, gy], i) => {
          const q = snap.fake[i];
          if (!q || gx === null || gy === null || q[0] === null) return;
          const ax = X(q[0]), ay = Y(q[1]), dx = gx * scale, dy = -gy * scale;
          const len = Math.hypot(dx, dy);
          ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(ax + dx, ay + dy); ctx.stroke();
          if (len > 3) {
            const ux = dx / len, uy = dy / len, hd = Math.min(6, len / 2);
            ctx.beginPath(); ctx.moveTo(ax + dx, ay + dy);
            ctx.lineTo(ax + dx - hd * ux - hd * 0.5 * uy, ay + dy - hd * uy + hd * 0.5 * ux);
            ctx.lineTo(ax + dx - hd * ux + hd * 0.5 * uy, ay + dy - hd * uy - hd * 0.5 * ux);
            ctx.closePath(); ctx.fill();
          }
          arrows++;
        });
      }
      canvas.dataset.arrows = String(arrows);
      canvas.dataset.meshLines = String(meshLines);
      if (snap) {
        canvas.dataset.step = String(snap.step);
        ctx.fillStyle = "#333"; ctx.font = "13px system-ui";
        ctx.fillText(`step ${snap.step} · epoch ${snap.epoch}${pinned ? " · scrubbed" : ""}`, 10, 20);
      }
    }

    function liveTable() {
      const rows = panels.filter((p) => p.st).map((p) => {
        const s = p.st, m = s.live || {}, set = s.settings || {};
        return h("tr", { dataset: { lane: String(p.k) } },
          h("td", {}, h("a", { href: `#/run/${enc(s.run)}`, text: s.run })), h("td", { text: `${set.loss} · ${set.optim}` }),
          h("td", { class: "num", text: String(s.step) }), h("td", { text: s.status }),
          h("td", { class: "num", text: m.modes_covered !== undefined ? `${m.modes_covered}/${m.n_modes}` : "–" }),
          h("td", { class: "num", text: m.hq_fraction !== undefined ? `${(100 * m.hq_fraction).toFixed(0)}%` : "–" }),
          h("td", { class: "num", text: fmt(m.reverse_kl, 3) }), h("td", { class: "num", text: fmt(m.sliced_wasserstein, 3) }));
      });
      raceTable.replaceChildren(h("table", { class: "metrics race" },
        h("thead", {}, h("tr", {}, ["run", "cell", "step", "status", "modes", "HQ", "reverse KL", "sliced W1"].map((t) => h("th", { text: t })))),
        h("tbody", {}, rows)));
    }

    function buttons() {
      const s = race ? race.status : null;
      const live = s === "running" || s === "paused";
      b.pause.disabled = s !== "running"; b.play.disabled = s !== "paused";
      b.step.disabled = !live; b.stop.disabled = !live;
    }

    function setRace(r) {
      race = r;
      const steps = panels.filter((p) => p.st).map((p) => p.st.step);
      const lead = panels[0] && panels[0].st;
      if (!lead) return;
      status.replaceChildren(panels.length > 1 ? `race of ${panels.length}: ` : "",
        h("a", { href: `#/run/${enc(lead.run)}`, text: lead.run }), `: ${r.status}, step `,
        h("span", { id: "lab-step-count", text: String(lead.step) }), ` of ${lead.total_steps} (epoch ${lead.epoch} of ${lead.epochs})`,
        panels.length > 1 ? ` · steps ${steps.join(" / ")}` : "", r.speed ? ` · ${r.speed} steps/s` : "");
      status.dataset.step = String(lead.step); status.dataset.status = r.status;
      status.dataset.steps = steps.join(",");
      buttons();
    }

    function applyLane(p, u) {
      const first = !p.st;
      p.st = { ...(p.st || {}), ...u };
      if (u.snapshot) { p.snap = u.snapshot; if (!pinned) p.shown = p.snap; }
      if (u.curve && u.curve.length) {
        const keys = ["loss_d", "loss_g", "d_x", "d_g_z"];
        p.charts.loss.appendRows(u.curve, keys); p.charts.d.appendRows(u.curve, keys);
      }
      if (first || u.probability !== undefined) setDScale(p.charts.d, !!p.st.probability);
      const s = p.st.settings || {};
      p.title.textContent = `${s.loss} · ${s.optim}`;
      p.settings.textContent = `${p.st.run} · ${s.data} (${s.n_points} points) · lr G ${fmt(s.lr_g)} / D ${fmt(s.lr_d)}, betas (${(s.betas || []).join(", ")}) · n_critic ${s.n_critic} · batch ${s.batch_size} · ${p.st.status}`;
      if (u.metrics) {
        const st = p.st;
        const every = st.eval_every ? `every ${st.eval_every} epoch${st.eval_every > 1 ? "s" : ""} (${st.eval_every * st.steps_per_epoch} steps)` : "at the end";
        p.metrics.replaceChildren(metricsTable(u.metrics, null, [["step", (r) => r.step]], `No evaluation yet: the run scores itself ${every}.`));
      }
      if (p.st.error) err.replaceChildren(errorCard(p.st.error, `Training failed (${p.st.run})`));
    }

    function apply(u) {   // an update: {race, lanes: [...]}
      let fresh = false;
      u.lanes.forEach((lu, k) => { if (panels[k]) { if (lu.snapshot) fresh = true; applyLane(panels[k], lu); } });
      if (fresh) gs.frames++;
      setRace(u.race);
      const hl = panels[0].st.history_len || 0;
      scrub.max = String(Math.max(0, hl - 1)); scrub.disabled = hl < 1;
      if (!pinned) { scrub.value = scrub.max; scrubLabel.textContent = `live (${hl} snapshots)`; }
      liveTable();
      for (const p of panels) drawLane(p);
    }

    function setup(s) {   // a started (or found) race: its panels, scenes and first state
      scenes = s.scenes || [{ target: s.target, extent: s.extent }];
      pinned = false; liveBtn.disabled = true; race = null;   // a new race counts versions anew
      panels = s.lanes.map((l, k) => makePanel(k, l.run));
      panelsBox.replaceChildren(...panels.map((p) => p.el));
      panelsBox.style.gridTemplateColumns = `repeat(${Math.min(panels.length, 2)}, minmax(0, 1fr))`;
      err.replaceChildren();
      apply({ race: s.race, lanes: s.lanes });
    }

    function connect() {
      if (!alive) return;
      const since = panels[0] ? panels[0].charts.loss.x.length : 0;
      es = new EventSource(url("/api/lab/stream", { since }));
      es.addEventListener("scene", (ev) => { const sc = JSON.parse(ev.data); scenes = sc.lanes; for (const p of panels) drawLane(p); });
      es.addEventListener("update", (ev) => apply(JSON.parse(ev.data)));
      es.addEventListener("end", (ev) => {
        es.close(); es = null;
        const info = JSON.parse(ev.data);
        if (info.reason === "lifetime") connect();
      });
      es.onerror = () => { if (es) es.close(); es = null; retry = setTimeout(connect, 2000); };
    }

    async function showFrame(i) {
      try {
        const fr = await getJSON("/api/lab/frame", { index: i });
        pinned = true; liveBtn.disabled = false;
        fr.lanes.forEach((snap, k) => { if (panels[k]) panels[k].shown = snap; });
        scrubLabel.textContent = `snapshot ${fr.index + 1} of ${fr.history_len} · step ${fr.step}`;
        scrubLabel.dataset.step = String(fr.step);
        for (const p of panels) drawLane(p);
      } catch (e) { err.replaceChildren(errorCard(e.message)); }
    }
    scrub.addEventListener("input", () => showFrame(+scrub.value));
    liveBtn.addEventListener("click", () => {
      pinned = false; liveBtn.disabled = true; scrubLabel.dataset.step = "";
      for (const p of panels) p.shown = p.snap;
      scrub.value = scrub.max; scrubLabel.textContent = "live";
      for (const p of panels) drawLane(p);
    });
    for (const cb of Object.values(layers)) cb.addEventListener("change", () => { for (const p of panels) drawLane(p); });

    const speedValue = () => (f.speed.value === "max" ? null : +f.speed.value);
    f.speed.addEventListener("change", async () => {
      if (!race || race.status === "completed" || race.status === "stopped") return;
      try {
        const r = await postJSON("/api/lab/speed", { speed: speedValue() });
        if (!race || r.version >= race.version) setRace(r);
      } catch (e) { err.replaceChildren(errorCard(e.message)); }
    });
    // A reply can reach the page after a newer stream update (the stream saw the lanes held
    // before this reply came back): an older state must not overwrite it, since a paused race
    // sends nothing more to correct it. The race's version only grows.
    async function control(action) {
      try {
        const s = await postJSON(`/api/lab/${action}`);
        if (!race || s.race.version >= race.version) apply({ race: s.race, lanes: s.lanes });
      } catch (e) { err.replaceChildren(errorCard(e.message)); }
      status.dataset.replies = String(+(status.dataset.replies || 0) + 1);
    }
    b.pause.addEventListener("click", () => control("pause"));
    b.play.addEventListener("click", () => control("play"));
    b.step.addEventListener("click", () => control("step"));
    b.stop.addEventListener("click", () => control("stop"));
    b.start.addEventListener("click", async () => {
      const body = { data: f.data.value, steps: +f.steps.value, seed: +f.seed.value, speed: speedValue() };
      const laneBody = (L) => {
        const o = { loss: L.loss.value, optim: L.optim.value };
        for (const k of ["lr_g", "lr_d"]) if (L[k].value !== "") o[k] = +L[k].value;
        if (L.n_critic.value !== "") o.n_critic = +L.n_critic.value;
        return o;
      };
      if (lanes.length === 1) Object.assign(body, laneBody(lanes[0])); else body.runs = lanes.map(laneBody);
      b.start.disabled = true;
      try {
        if (body.data === "drawn") await postJSON("/api/lab/target", { points: draw.points() });
        const s = await postJSON("/api/lab/start", body);
        if (es) { es.close(); es = null; }
        setup(s);
        connect();
      } catch (e) { err.replaceChildren(errorCard(e.message)); }
      b.start.disabled = false;
    });

    buttons(); liveTable();
    try {   // a race already live on this server: show it
      const s = await getJSON("/api/lab/state", { since: 0 });
      setup(s);
      if (s.race.status === "running" || s.race.status === "paused") connect();
    } catch (e) { /* none yet */ }
  }

  // --- router -------------------------------------------------------------------------------

  function route() {
    for (const fn of cleanups.splice(0)) { try { fn(); } catch (e) { /* page already gone */ } }
    const parts = location.hash.replace(/^#\/?/, "").split("/");
    const page = parts[0] || "runs";
    const arg = parts.length > 1 && parts[1] ? decodeURIComponent(parts.slice(1).join("/")) : null;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === (page === "run" ? "runs" : page));
    }
    const view = document.getElementById("view");
    view.replaceChildren();
    view.dataset.page = page;
    if (page === "run" && arg) runPage(view, arg);
    else if (page === "latent") latentPage(view, arg);
    else if (page === "lab") labPage(view);
    else runsPage(view);
  }
  window.addEventListener("hashchange", route);
  route();
  getJSON("/api/info").then((i) => {
    document.getElementById("server-note").textContent = `runs: ${i.runs_dir} · ganscope ${i.version}`;
  }).catch(() => { /* the pages show their own errors */ });
})();
