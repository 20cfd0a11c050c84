// loadkit live view: polls /api/live once a second and draws the run with uPlot.
// Everything it needs is served by the run itself (no CDN, works offline).
(() => {
  "use strict";
  const token = new URLSearchParams(location.search).get("token");
  const auth = token ? { "X-Loadkit-Token": token } : {};
  const tokenQuery = token ? "token=" + encodeURIComponent(token) : "";
  const $ = (id) => document.getElementById(id);
  const EXTRA = ["#1b9e77", "#e7298a", "#66a61e", "#a6761d", "#1f78b4", "#b15928"];
  const ACTION = "#d1495b", REQUEST = "#2e86ab";
  const LAG_S = 3;  // seconds whose answers are still arriving (as the server's tiles)

  // the page's model; tests (and curious people) can read it from the console
  const live = {
    revision: null, points: new Map(), last: null, data: null, offset: 0,
    charts: {}, causes: [], halting: false, failures: 0, applyMs: [],
  };
  window.loadkitLive = live;

  // -- formatting ----------------------------------------------------------------------------
  function clock(value) {
    const s = Math.round(value), a = Math.abs(s);
    const h = Math.floor(a / 3600), m = Math.floor((a % 3600) / 60), sec = a % 60;
    const body = h ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`
      : `${m}:${String(sec).padStart(2, "0")}`;
    return (s < 0 ? "-" : "") + body;
  }
  const wallFmt = new Intl.DateTimeFormat(undefined,
    { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  const wall = (t0, s) => wallFmt.format(new Date((t0 + s) * 1000));
  function tzLabel() {
    const off = -new Date().getTimezoneOffset(), a = Math.abs(off);
    return `UTC${off < 0 ? "−" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:` +
      String(a % 60).padStart(2, "0");
  }
  const pct = (x, d = 1) => (x == null ? "–" : (100 * x).toFixed(d) + "%");
  const ms = (x) => (x == null ? "–" : x >= 1000 ? (x / 1000).toFixed(2) + " s" : Math.round(x) + " ms");
  const perS = (x) => (x == null ? "–" : Math.round(x).toLocaleString() + "/s");
  const answered = (n) => n[0] + n[1] + n[2];
  const rate = (n) => (answered(n) ? n[2] / answered(n) : null);
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text != null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function emptyRow(body, text) {
    const tr = el("tr");
    tr.append(el("td", text, "dim"));
    body.append(tr);
  }
  function colour(cause) {
    const known = live.data && live.data.colours[cause];
    if (known) return known;
    let h = 0;
    for (const ch of cause) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return EXTRA[h % EXTRA.length];
  }

  // -- charts --------------------------------------------------------------------------------
  const px = () => (window.uPlot && uPlot.pxRatio) || window.devicePixelRatio || 1;

  function xRange() {
    const d = live.data;
    if (!d) return [0, 10];
    const r = d.run, now = r.now == null ? 0 : r.now;
    const end = Math.max(r.duration_s || 0, r.stopped_at || 0, Math.min(now, (r.duration_s || now) * 1.5),
      live.last == null ? 0 : live.last + 1, 10);
    return [0, end];
  }

  function drawBands(u) {
    const d = live.data;
    if (!d) return;
    const ctx = u.ctx, { left, top, width, height } = u.bbox, r = px();
    const X = (v) => Math.min(left + width, Math.max(left, u.valToPos(v, "x", true)));
    ctx.save();
    ctx.font = `${11 * r}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    d.run.phases.forEach((p, i) => {
      const a = X(p.start_s), b = X(p.end_s);
      if (i % 2) { ctx.fillStyle = "#f1f3f5"; ctx.fillRect(a, top, b - a, height); }
      if (b - a > 50 * r) {
        ctx.fillStyle = "#6e7781";
        ctx.textAlign = "center";
        ctx.fillText(p.name, (a + b) / 2, top + 2 * r);
      }
    });
    const now = d.run.now == null ? 0 : d.run.now;
    ctx.textAlign = "left";
    for (const f of d.faults) {
      if (f.injected_t != null) {
        const end = f.reverted_t != null ? f.reverted_t : (d.run.stopped_at != null && f.state !== "active"
          ? d.run.stopped_at : now);
        const a = X(f.injected_t), b = Math.max(X(end), a + 2 * r);
        ctx.fillStyle = "rgba(209, 73, 91, 0.16)";
        ctx.fillRect(a, top, b - a, height);
        ctx.fillStyle = "#8c2f39";
        ctx.font = `bold ${11 * r}px system-ui, sans-serif`;
        ctx.fillText(f.name, a + 3 * r, top + 16 * r);
      } else if (f.state === "pending") {
        const a = X(f.start_s), b = X(f.end_s != null ? f.end_s : f.start_s + 1);
        ctx.setLineDash([4 * r, 3 * r]);
        ctx.strokeStyle = "rgba(209, 73, 91, 0.55)";
        ctx.lineWidth = r;
        ctx.strokeRect(a, top + r, Math.max(b - a, 2 * r), height - 2 * r);
        ctx.setLineDash([]);
        ctx.fillStyle = "rgba(140, 47, 57, 0.7)";
        ctx.font = `${11 * r}px system-ui, sans-serif`;
        ctx.fillText(f.name + " (planned)", a + 3 * r, top + 16 * r);
      }
    }
    if (d.run.now != null && d.run.status !== "finished") {  // "now"
      const x = X(now);
      ctx.strokeStyle = "rgba(31, 35, 40, 0.35)";
      ctx.lineWidth = r;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    }
    ctx.restore();
  }

  function drawLimit(u) {
    const d = live.data;
    if (!d || d.busy_limit == null) return;
    const ctx = u.ctx, { left, width } = u.bbox, r = px(), y = u.valToPos(d.busy_limit, "y", true);
    ctx.save();
    ctx.setLineDash([6 * r, 4 * r]);
    ctx.strokeStyle = "#333";
    ctx.lineWidth = r;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
    ctx.restore();
  }

  function xAxis() {
    return {
      space: 70,
      size: 44,
      incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200],
      values: (u, splits) => splits.map((s) => {
        const t0 = live.data && live.data.run.t0;
        return clock(s) + (t0 ? "\n" + wall(t0, s) : "");
      }),
    };
  }

  function size(elem) {
    const w = Math.max(280, elem.clientWidth);
    return { width: w, height: w < 700 ? 190 : 210 };
  }

  function make(id, series, opts) {
    const elem = $(id);
    const old = live.charts[id];
    if (old) old.destroy();
    const chart = new uPlot({
      ...size(elem),
      series: [{ label: "run clock", value: (u, v) => (v == null ? "–" : clock(v)) },
        ...series.map((x) => ({ points: { show: false }, ...x }))],
      scales: { x: { time: false, range: () => xRange() }, ...(opts.scales || {}) },
      axes: [xAxis(), { size: 56, ...(opts.y || {}) }],
      legend: { live: true },
      focus: { alpha: 0.5 },
      cursor: { drag: { x: false, y: false } },
      hooks: { drawClear: [drawBands], draw: opts.draw || [] },
    }, [[], ...series.map(() => [])], elem);
    live.charts[id] = chart;
    return chart;
  }

  function makeCharts() {
    const pctAxis = { values: (u, v) => v.map((x) => (x == null ? "" : (100 * x).toFixed(x < 0.1 ? 1 : 0) + "%")) };
    make("chart-busy", [
      { label: "user actions (after retries)", stroke: ACTION, width: 2, value: (u, v) => pct(v) },
      { label: "requests", stroke: REQUEST, width: 1.2, value: (u, v) => pct(v) },
    ], {
      scales: { y: { range: (u, lo, hi) => {
        const lim = (live.data && live.data.busy_limit) || 0;
        return [0, Math.min(1.05, Math.max(0.05, (hi || 0) * 1.2, lim * 1.4))];
      } } },
      y: pctAxis, draw: [drawLimit],
    });
    makeCausesChart();
    make("chart-latency", [
      { label: "p50", stroke: "#6c9a8b", width: 1.2, value: (u, v) => ms(v) },
      { label: "p95", stroke: "#e6a100", width: 1.4, value: (u, v) => ms(v) },
      { label: "p99", stroke: ACTION, width: 1.4, value: (u, v) => ms(v) },
    ], {
      scales: { y: { distr: 3 } },
      y: { values: (u, v) => v.map((x) => (x == null ? "" : x >= 1000 ? x / 1000 + "s" : x + "ms")) },
    });
    make("chart-rate", [
      { label: "offered", stroke: "#333", width: 1.2, dash: [6, 4], value: (u, v) => perS(v) },
      { label: "achieved", stroke: REQUEST, width: 1.8, value: (u, v) => perS(v) },
      { label: "goodput", stroke: "#1a7f37", width: 1.4, value: (u, v) => perS(v) },
      { label: "unsent", stroke: ACTION, width: 1.2, value: (u, v) => perS(v) },
    ], { scales: { y: { range: (u, lo, hi) => [0, Math.max(1, (hi || 0) * 1.1)] } } });
  }

  // stacked: cumulative series drawn from the top of the stack down, each filled to zero; the
  // legend shows each cause's own value
  function makeCausesChart() {
    const causes = live.causes;
    const series = causes.length ? causes.slice().reverse().map((c, i) => ({
      label: c, stroke: colour(c), fill: colour(c), width: 1,
      value: (u, v, si, idx) => (idx == null ? "–" : String(live.own[causes.length - 1 - i][idx] ?? 0)),
    })) : [{ label: "no busy answers yet", stroke: "#aaa", width: 1 }];
    make("chart-causes", series, {
      scales: { y: { range: (u, lo, hi) => [0, Math.max(1, (hi || 0) * 1.15)] } },
    });
  }

  function data() {
    const [, xEnd] = xRange();
    let last = live.last == null ? -1 : live.last;
    const r = live.data && live.data.run;
    if (r && r.status !== "finished" && r.now != null) {
      last = Math.min(last, Math.floor(r.now) - LAG_S);  // answers of later seconds still arrive
    }
    const n = Math.max(0, Math.min(last + 1, Math.ceil(xEnd)));
    const x = [], bA = [], bR = [], p50 = [], p95 = [], p99 = [], off = [], ach = [], good = [], uns = [];
    const own = live.causes.map(() => []);
    for (let t = 0; t < n; t++) {
      const p = live.points.get(t);
      x.push(t);
      if (!p) {
        for (const arr of [bA, bR, p50, p95, p99, ach, good, uns]) arr.push(null);
        off.push(null); own.forEach((o) => o.push(null));
        continue;
      }
      bA.push(rate(p.a)); bR.push(rate(p.r));
      p50.push(p.p[0]); p95.push(p.p[1]); p99.push(p.p[2]);
      off.push(p.off); ach.push(answered(p.a)); good.push(answered(p.a) - p.a[2]); uns.push(p.a[3]);
      live.causes.forEach((c, i) => own[i].push(p.c[c] || 0));
    }
    live.own = own;
    const cum = [];
    let acc = x.map(() => 0);
    for (const o of own) { acc = acc.map((v, i) => v + (o[i] || 0)); cum.push(acc.slice()); }
    const stack = cum.length ? cum.reverse() : [x.map(() => null)];
    return {
      "chart-busy": [x, bA, bR],
      "chart-causes": [x, ...stack],
      "chart-latency": [x, p50, p95, p99],
      "chart-rate": [x, off, ach, good, uns],
    };
  }

  function drawCharts() {
    const all = new Set();
    for (const p of live.points.values()) for (const c in p.c) all.add(c);
    const causes = [...all].sort();
    if (causes.join() !== live.causes.join()) { live.causes = causes; makeCausesChart(); }
    const sets = data();
    for (const [id, d] of Object.entries(sets)) live.charts[id].setData(d, true);
  }

  // -- text ----------------------------------------------------------------------------------
  function runNow() {
    const d = live.data;
    if (!d || d.run.t0 == null) return null;
    if (d.run.status === "finished" && d.run.stopped_at != null) return d.run.stopped_at;
    return Date.now() / 1000 + live.offset - d.run.t0;
  }

  function renderClocks() {
    const d = live.data;
    if (!d) return;
    const now = runNow();
    $("clock-run").textContent = now == null ? "–" : clock(Math.max(0, now));
    $("clock-len").textContent = d.run.duration_s ? "/ " + clock(d.run.duration_s) : "";
    $("clock-wall").textContent = wallFmt.format(new Date(Date.now() + live.offset * 1000));
    $("clock-tz").textContent = tzLabel();
  }

  function renderHeader(d) {
    const r = d.run;
    document.title = `loadkit live — ${r.title || r.run_id}`;
    $("title").textContent = [r.title, r.scenario ? "chaos: " + r.scenario : null, r.run_id]
      .filter(Boolean).join(" · ");
    let status = r.status;
    if ((d.halt || live.halting) && status !== "finished") status = "halting";
    const pill = $("status");
    pill.textContent = status === "finished" && r.reason ? r.reason.split(":")[0] : status;
    const bad = status === "finished" && !/^completed/.test(r.reason || "");
    pill.className = "pill " + status + (bad ? " bad" : "");
    $("phase").textContent = r.phase || (r.status === "finished" ? "–" : "–");
    $("halt").disabled = !(r.status === "running" || r.status === "starting") || !!d.halt || live.halting;
    const banner = $("banner");
    banner.replaceChildren();
    banner.className = "";
    if (r.status === "finished") {
      banner.append(el("b", "Run finished: "), (r.reason || "") + ". ");
      if (d.reports.length) {
        banner.append("Reports: ");
        for (const name of d.reports) {
          const a = el("a", name);
          a.href = "/files/" + name + (tokenQuery ? "?" + tokenQuery : "");
          a.target = "_blank"; a.rel = "noopener";
          banner.append(a);
        }
      } else {
        banner.append("No report was written (no load was sent).");
      }
      banner.className = bad ? "bad" : "";
      banner.hidden = false;
    } else if (d.halt || live.halting) {
      const by = d.halt && d.halt.by ? ` by ${d.halt.by}` : "";
      banner.append(el("b", "Halting" + by + ": "),
        "reverting every fault, stopping the load, then writing the reports…");
      banner.className = "bad";
      banner.hidden = false;
    } else if (live.failures > 2) {
      banner.append(el("b", "No answer from the run"), " — retrying…");
      banner.className = "bad";
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  function renderTiles(d) {
    const rec = d.recent, lim = d.busy_limit == null ? 0.05 : d.busy_limit;
    const style = (x) => (x == null || x === 0 ? "" : x > lim ? "bad" : "warn");
    const b = rate(rec.a), rb = rate(rec.r);
    $("t-busy").textContent = pct(b, 2); $("t-busy").className = style(b);
    $("t-rbusy").textContent = pct(rb, 2); $("t-rbusy").className = style(rb);
    let p95 = null;
    const now = d.run.status === "finished" || d.run.now == null ? Infinity : Math.floor(d.run.now) - LAG_S;
    const top = live.last == null ? null : Math.min(live.last, now);
    for (let t = top; t != null && t >= Math.max(0, top - 5); t--) {
      const p = live.points.get(t);
      if (p && p.p[1] != null) { p95 = p.p[1]; break; }
    }
    $("t-p95").textContent = ms(p95);
    const ach = answered(rec.rate_a) / 3;
    $("t-rate").textContent = perS(ach) + (rec.offered_per_s != null ? " / " + perS(rec.offered_per_s) : "");
    $("t-good").textContent = perS((answered(rec.rate_a) - rec.rate_a[2]) / 3);
    const unsent = rec.totals.action[3], sched = answered(rec.totals.action) + unsent;
    $("t-unsent").textContent = unsent.toLocaleString() + (sched ? ` (${pct(unsent / sched, 2)})` : "");
    $("t-unsent").className = sched && unsent / sched > 0.01 ? "bad" : "";
  }

  function window_(t0, a, b) {
    const run = (a == null ? "…" : clock(a)) + "–" + (b == null ? "…" : clock(b));
    const w = t0 ? (a == null ? "" : wall(t0, a)) + (b == null ? "" : "–" + wall(t0, b)) : "";
    return [run, w];
  }

  function renderScenario(d) {
    const t0 = d.run.t0;
    $("scenario").textContent = d.run.scenario || "";
    const c = d.chaos;
    $("chaos-status").textContent = c
      ? `controller ${c.status}${c.reason ? ": " + c.reason : ""}`
      : "no chaos scenario in this run";
    const body = $("faults").tBodies[0];
    body.replaceChildren();
    for (const f of d.faults) {
      const tr = document.createElement("tr");
      tr.dataset.fault = f.name;
      tr.className = f.state.replace(/[ ,]+/g, "-");
      const name = el("td", f.name); name.append(el("span", `${f.type} on ${f.target}`, "sub"));
      const [run, w] = window_(t0, f.start_s, f.end_s);
      const win = el("td", run); if (w) win.append(el("span", w, "sub"));
      let detail = "";
      if (f.injected_t != null) detail = "in " + clock(f.injected_t) + (f.reverted_t != null ? " · out " + clock(f.reverted_t) : "");
      const st = el("td", f.state, "state"); if (detail) st.append(el("span", detail, "sub"));
      if (f.error) st.append(el("span", f.error, "sub"));
      tr.append(name, win, st);
      body.append(tr);
    }
    if (!d.faults.length) emptyRow(body, "no faults");
    const cond = $("conditions").tBodies[0];
    cond.replaceChildren();
    for (const x of (c && c.conditions) || []) {
      const tr = el("tr");
      tr.dataset.condition = x.name;
      const name = el("td", x.name); name.append(el("span", x.when, "sub"));
      const stt = x.state || "not watched yet";
      tr.append(name, el("td", stt, /TRIPPED/.test(stt) ? "state bad" : "state"));
      cond.append(tr);
    }
    if (!cond.children.length) emptyRow(cond, "none");
    const probes = $("probes").tBodies[0];
    probes.replaceChildren();
    for (const p of (c && c.probes) || []) {
      const tr = el("tr");
      tr.dataset.probe = p.name;
      const name = el("td", p.name); name.append(el("span", p.kind, "sub"));
      tr.append(name);
      for (const [stage, on] of [["before", c.steady_before], ["after", c.steady_after]]) {
        const r = p[stage];
        const td = el("td", r == null ? (on ? "pending" : "skipped") : (r.ok ? "✓ holds" : "✗ fails"),
          r == null ? "dim" : r.ok ? "ok" : "bad");
        if (r) td.append(el("span", r.detail, "sub"));
        tr.append(td);
      }
      probes.append(tr);
    }
    if (!probes.children.length) emptyRow(probes, "none");
    const phases = $("phases").tBodies[0];
    phases.replaceChildren();
    for (const p of d.run.phases) {
      const [run, w] = window_(t0, p.start_s, p.end_s);
      const tr = el("tr");
      if (p.name === d.run.phase && d.run.status === "running") tr.className = "active";
      const win = el("td", run); if (w) win.append(el("span", w, "sub"));
      tr.append(el("td", p.name), win);
      phases.append(tr);
    }
    if (!phases.children.length) emptyRow(phases, "no load profile");
  }

  // -- polling -------------------------------------------------------------------------------
  function apply(d) {
    if (d.revision !== live.revision) {  // a new run (the next capacity pass)
      live.revision = d.revision; live.points.clear(); live.last = null; live.halting = false;
    }
    for (const p of d.points) {
      live.points.set(p.t, p);
      if (live.last == null || p.t > live.last) live.last = p.t;
    }
    live.data = d;
    live.offset = d.server_time - Date.now() / 1000;
    renderHeader(d); renderTiles(d); renderScenario(d); renderClocks(); drawCharts();
  }

  async function poll() {
    const began = performance.now();
    const from = live.last == null ? 0 : Math.max(0, live.last - 20);
    let finished = false;
    try {
      const r = await fetch(`/api/live?from=${from}${tokenQuery ? "&" + tokenQuery : ""}`,
        { headers: auth, cache: "no-store" });
      if (!r.ok) throw new Error(String(r.status));
      const d = await r.json();
      live.failures = 0;
      const t = performance.now();
      apply(d);
      live.applyMs.push(performance.now() - t);
      if (live.applyMs.length > 600) live.applyMs.shift();
      finished = d.run.status === "finished";
    } catch (e) {
      live.failures += 1;
      if (live.data) renderHeader(live.data);
    }
    // once a second from the start of the last poll (a slow answer does not stretch it);
    // after the run, a slow heartbeat keeps the reports served while the page is open
    const every = finished ? 4000 : 1000;
    setTimeout(poll, Math.max(100, every - (performance.now() - began)));
  }

  async function halt() {
    live.halting = true;
    if (live.data) renderHeader(live.data);
    try {
      const r = await fetch(`/api/halt${tokenQuery ? "?" + tokenQuery : ""}`, {
        method: "POST",
        headers: { ...auth, "X-Loadkit-Halt": "confirmed", "Content-Type": "application/json" },
        body: JSON.stringify({ note: "" }),
      });
      if (!r.ok) live.halting = false;
    } catch (e) {
      live.halting = false;
    }
  }

  $("halt").addEventListener("click", () => $("confirm").showModal());
  $("confirm").addEventListener("close", () => {
    if ($("confirm").returnValue === "halt") halt();
  });
  makeCharts();
  const ro = new ResizeObserver(() => {
    for (const [id, chart] of Object.entries(live.charts)) chart.setSize(size($(id)));
  });
  for (const id of Object.keys(live.charts)) ro.observe($(id));
  setInterval(renderClocks, 250);
  poll();
})();
