// The aiguilleur console: REST for the first view, the live stream for what follows.
// Plain ES module, no dependency, nothing fetched from anywhere but this server.

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;  // CSSOM: allowed by the page's CSP
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k.nodeType ? k : String(k));
  return e;
};
const fmt = (x, nd = 0) => (x === null || x === undefined || Number.isNaN(x) ? "-" :
  Number(x).toLocaleString("en-GB", { minimumFractionDigits: nd, maximumFractionDigits: nd }));

// Deadlines (s) past which a panel's data is marked stale: the stream has a heartbeat
// every 5 s; the other panels are refreshed on every relevant event and every 30 s.
const DEADLINE_S = { stream: 15, grid: 90, alarms: 90, proposals: 90, contingencies: 90, routes: 90, forecasts: 90 };
const FORECAST_STALE_H = 24;

const S = {
  token: sessionStorage.getItem("aiguilleur-token") || "",
  role: null,
  cursor: null,
  fetched: {},            // panel -> Date.now() of the last good refresh
  geometry: null, loading: null, gridMode: "base",
  alarms: new Map(), proposals: new Map(), timeline: [],
  roads: null, routes: null, forecasts: null, state: null,
  ws: null, retry: 0, lastMessage: 0,
  metrics: { gridDrawMs: [], alarmShownAt: {}, eventShownAt: {}, proposalShownAt: {} },
};
window.aiguilleur = S; // for the browser test and curious operators

// -- REST -------------------------------------------------------------------------------
class HttpError extends Error { constructor(status, msg) { super(msg); this.status = status; } }

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (S.token) headers.Authorization = `Bearer ${S.token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method: opts.method || "GET", headers,
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined, cache: "no-store" });
  const text = await r.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = { error: text.slice(0, 200) }; }
  if (!r.ok) throw new HttpError(r.status, (doc && doc.error) || `HTTP ${r.status}`);
  return doc;
}

function stamp(panel) { S.fetched[panel] = Date.now(); }

const pending = new Map();
function soon(name, fn, ms = 250) {  // one refresh per burst of events
  if (pending.has(name)) return;
  pending.set(name, setTimeout(async () => { pending.delete(name); try { await fn(); } catch (e) { report(e); } }, ms));
}

function report(e) {
  if (e instanceof HttpError && e.status === 401) { signOut("the token was refused"); return; }
  console.warn(e);
}

// -- the grid ---------------------------------------------------------------------------
const LOAD_BINS = [0, 50, 70, 85, 95, 100, 110, 130, Infinity];
const LOAD_COLOURS = ["#3a5a78", "#2f9e6e", "#a0c040", "#f0d040", "#f0a030", "#ff6a30", "#ff2d2d", "#ff00aa"];
function bin(pct) { for (let k = 0; k < LOAD_BINS.length - 1; k++) if (pct < LOAD_BINS[k + 1]) return k; return LOAD_BINS.length - 2; }

function gridLegend() {
  const L = $("#grid-legend"); L.replaceChildren();
  for (let k = 0; k < LOAD_COLOURS.length; k++) {
    const hi = LOAD_BINS[k + 1] === Infinity ? "+" : `-${LOAD_BINS[k + 1]}`;
    L.append(el("span", {}, el("i", { style: `background:${LOAD_COLOURS[k]}` }), `${LOAD_BINS[k]}${hi} %`));
  }
  L.append(el("span", {}, el("i", { style: "background:#c0c0c0;height:2px;border-top:2px dashed #fff" }), "out of service"));
  L.append(el("span", {}, el("i", { style: "background:#ff00aa;height:6px" }), "overloaded"));
}

function drawGrid() {
  const g = S.geometry, ld = S.loading, c = $("#grid");
  if (!g || !c) return;
  const t0 = performance.now();
  const ctx = c.getContext("2d");
  const W = c.width, H = c.height, pad = 14;
  ctx.fillStyle = "#0b0f14"; ctx.fillRect(0, 0, W, H);
  const X = (i) => pad + g.x[i] * (W - 2 * pad), Y = (i) => pad + (1 - g.y[i]) * (H - 2 * pad);
  const n = g.branch_from.length;
  const pct = ld && ld.converged ? (S.gridMode === "n1" ? ld.n1_worst_loading_pct : ld.base_loading_pct) : null;
  const out = new Set(ld ? ld.out_of_service : []);
  const over = new Set(ld && ld.overloaded ? ld.overloaded : []);
  // one path per colour bin: 2,531 branches in 9 strokes
  const paths = LOAD_COLOURS.map(() => new Path2D());
  const hot = new Path2D(), dead = new Path2D();
  for (let k = 0; k < n; k++) {
    const a = g.branch_from[k], b = g.branch_to[k];
    if (out.has(k)) { dead.moveTo(X(a), Y(a)); dead.lineTo(X(b), Y(b)); continue; }
    const p = pct ? (pct[k] ?? 0) : 0;
    const path = paths[bin(p)];
    path.moveTo(X(a), Y(a)); path.lineTo(X(b), Y(b));
    if ((S.gridMode === "base" && over.has(k)) || p > 100) { hot.moveTo(X(a), Y(a)); hot.lineTo(X(b), Y(b)); }
  }
  ctx.lineWidth = 1;
  paths.forEach((p, k) => { ctx.strokeStyle = LOAD_COLOURS[k]; ctx.lineWidth = k >= 5 ? 2 : 1; ctx.stroke(p); });
  ctx.save(); ctx.strokeStyle = "#ff00aa"; ctx.lineWidth = 4; ctx.globalAlpha = 0.55; ctx.stroke(hot); ctx.restore();
  ctx.save(); ctx.setLineDash([5, 4]); ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 2.5; ctx.stroke(dead); ctx.restore();
  // buses: one path, dots of 1.6 px
  const dots = new Path2D();
  for (let i = 0; i < g.x.length; i++) { dots.moveTo(X(i) + 1.6, Y(i)); dots.arc(X(i), Y(i), 1.6, 0, 6.2832); }
  ctx.fillStyle = "#c8d3de"; ctx.fill(dots);
  const ms = performance.now() - t0;
  S.metrics.gridDrawMs.push(ms);
  if (S.metrics.gridDrawMs.length > 50) S.metrics.gridDrawMs.shift();
  c.dataset.drawMs = ms.toFixed(1);
  c.dataset.version = ld ? ld.grid_version : "";
  const sum = $("#grid-summary");
  if (ld && ld.converged) {
    sum.textContent = `${g.case}: ${g.n_bus.toLocaleString()} buses, ${g.n_branch.toLocaleString()} branches · ` +
      `max ${fmt(ld.max_loading_pct, 1)} % base, ${fmt(ld.n1_max_loading_pct, 1)} % worst N-1 (DC est.) · ` +
      `${ld.overloaded.length} overloaded · out: ${ld.out_of_service.map((k) => `branch:${k + 1}`).join(", ") || "none"} · ` +
      `drawn in ${ms.toFixed(1)} ms`;
  } else if (ld) {
    sum.replaceChildren(el("span", { class: "error" }, `AC power flow: ${ld.error || "not converged"}`),
      ` · out: ${ld.out_of_service.map((k) => `branch:${k + 1}`).join(", ") || "none"}`);
  }
}

function gridTip(ev) {
  const g = S.geometry, c = $("#grid"), tip = $("#grid-tip");
  if (!g) return;
  const r = c.getBoundingClientRect(), sx = c.width / r.width, sy = c.height / r.height;
  const mx = (ev.clientX - r.left) * sx, my = (ev.clientY - r.top) * sy, pad = 14, W = c.width, H = c.height;
  const X = (i) => pad + g.x[i] * (W - 2 * pad), Y = (i) => pad + (1 - g.y[i]) * (H - 2 * pad);
  let best = -1, bd = 36;
  for (let k = 0; k < g.branch_from.length; k++) {
    const ax = X(g.branch_from[k]), ay = Y(g.branch_from[k]), bx = X(g.branch_to[k]), by = Y(g.branch_to[k]);
    const dx = bx - ax, dy = by - ay, L = dx * dx + dy * dy || 1;
    const t = Math.max(0, Math.min(1, ((mx - ax) * dx + (my - ay) * dy) / L));
    const ex = ax + t * dx - mx, ey = ay + t * dy - my, d = ex * ex + ey * ey;
    if (d < bd) { bd = d; best = k; }
  }
  if (best < 0) { tip.hidden = true; return; }
  const ld = S.loading || {};
  const w = ld.n1_worst_outage ? ld.n1_worst_outage[best] : -1;
  tip.textContent = `branch:${best + 1} (${g.bus[g.branch_from[best]]} – ${g.bus[g.branch_to[best]]}) · ` +
    `base ${fmt(ld.base_loading_pct?.[best], 1)} % · N-1 ${fmt(ld.n1_worst_loading_pct?.[best], 1)} %` +
    (w >= 0 ? ` (outage branch:${w + 1})` : "");
  tip.style.left = `${(ev.clientX - r.left) + 12}px`; tip.style.top = `${(ev.clientY - r.top) + 12}px`; tip.hidden = false;
}

async function loadGridGeometry() { S.geometry = await api("/grid/geometry"); drawGrid(); }
async function loadGridLoading() { S.loading = await api("/grid/loading"); stamp("grid"); drawGrid(); }

// -- alarms -----------------------------------------------------------------------------
function timeLeft(a) {
  const raised = Date.parse(a.raised_at);
  if (Number.isNaN(raised)) return null;
  return (raised + a.time_to_act_s * 1000 - Date.now()) / 1000;
}
function dur(s) {
  const a = Math.abs(s);
  const t = a >= 3600 ? `${Math.floor(a / 3600)} h ${Math.round((a % 3600) / 60)} min` : a >= 60 ? `${Math.round(a / 60)} min` : `${Math.round(a)} s`;
  return t;
}
const actText = (left) => (left < 0 ? `overdue by ${dur(left)}` : `act within ${dur(left)}`);

function renderAlarms() {
  const list = $("#alarms"), only = $("#only-open").checked;
  const all = [...S.alarms.values()].sort((a, b) => b.seq - a.seq || (b.id > a.id ? 1 : -1));
  const shown = all.filter((a) => !(only && a.acknowledged)).slice(0, 200);
  list.replaceChildren(...shown.map((a) => {
    const left = a.time_to_act_s > 0 ? timeLeft(a) : null;
    const act = a.acknowledged ? el("span", {}, `acknowledged by ${a.ack?.operator ?? "?"}`) :
      el("button", { type: "button", "data-alarm": a.id, disabled: S.role !== "operator", onclick: () => ack(a.id) }, "acknowledge");
    return el("li", { class: `${a.severity}${a.acknowledged ? " acked" : ""}`, "data-id": a.id },
      el("div", { class: "meta" }, el("span", { class: "sev" }, a.severity), el("span", {}, a.id),
        el("span", {}, (a.raised_at || "").slice(11, 19)),
        left === null ? el("span", {}, a.time_to_act_s > 0 ? "" : "act now") : el("span", { class: left < 0 ? "overdue" : "" }, actText(left)),
        act),
      el("div", {}, a.text));
  }));
  const open = all.filter((a) => !a.acknowledged).length;
  $("#alarm-count").textContent = `${open} open / ${all.length}`;
}

async function loadAlarms() {
  const d = await api("/alarms?limit=500");
  for (const a of d.alarms) S.alarms.set(a.id, a);
  stamp("alarms"); renderAlarms();
}

async function ack(id) {
  try { await api(`/alarms/${encodeURIComponent(id)}/ack`, { method: "POST" }); }
  catch (e) { alert(`acknowledge ${id}: ${e.message}`); }
  soon("alarms", loadAlarms, 50);
}

// -- proposals --------------------------------------------------------------------------
function renderProposals() {
  const box = $("#proposals");
  const ps = [...S.proposals.values()].sort((a, b) => b.seq - a.seq);
  box.replaceChildren(...ps.slice(0, 40).map(card));
}

function card(p) {
  const s = p.summary || {};
  const grid = p.kind === "grid_corrective";
  const rows = grid ? [
    ["holds in AC", s.holds_in_ac ? el("span", { class: "good" }, "yes") : el("span", { class: "bad" }, "NO")],
    ["cost", `${fmt(s.cost_eur_per_h)} €/h`], ["load shed", `${fmt(s.shed_mw, 1)} MW`],
    ["overloads", `${s.overloads_before ?? "-"} → ${s.overloads_after ?? "-"}`],
    ["max loading", `${fmt(s.max_loading_before_pct, 1)} → ${fmt(s.max_loading_after_pct, 1)} %`],
    ["voltage violations", `${s.voltage_violations_before ?? "-"} → ${s.voltage_violations_after ?? "-"}`],
    ["units moved", s.moved_units ?? "-"], ["method", s.method || "-"],
  ] : [
    ["holds", s.holds ? el("span", { class: "good" }, "yes") : el("span", { class: "bad" }, "NO")],
    ["fleet", s.fleet], ["vehicles changed", s.changed_vehicles],
    ["km left", `${fmt(s.km_left_after, 1)} (repair baseline ${fmt(s.km_left_repair, 1)})`],
    ["undelivered", Object.keys(s.undelivered || {}).length], ["required undelivered", (s.undelivered_required || []).join(", ") || "none"],
  ];
  const status = p.status || "pending";
  const buttons = status === "pending" ? el("div", { class: "buttons" },
    el("button", { type: "button", class: "approve", "data-proposal": p.id, disabled: S.role !== "operator", onclick: () => decide(p.id, "approve") }, "approve"),
    el("button", { type: "button", class: "reject", "data-proposal": p.id, disabled: S.role !== "operator", onclick: () => decide(p.id, "reject") }, "reject")) : null;
  const decided = p.decision ? el("div", { class: "small" }, `${p.decision.status} by ${p.decision.operator ?? "?"}`) : null;
  return el("div", { class: `card ${status}`, "data-id": p.id },
    el("h3", {}, el("span", {}, `${p.kind.replace("_", " ")} ${p.id}`), el("span", { class: "status" }, status),
      p.sheds_load ? el("span", { class: "status bad" }, "sheds load") : null),
    el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("ul", {}, ...(p.explanation || []).slice(0, 8).map((x) => el("li", {}, x))),
    el("details", {}, el("summary", {}, `${(p.actions || []).length} action(s)`),
      el("ul", {}, ...(p.actions || []).slice(0, 60).map((a) => el("li", {}, actionText(a))))),
    decided, buttons);
}

function actionText(a) {
  switch (a.kind) {
    case "set_dispatch": return `${a.gen}: ${fmt(a.pg_mw, 1)} MW`;
    case "set_voltage": return `${a.gen}: ${fmt(a.vg_pu, 3)} pu`;
    case "set_reactive": return `${a.gen}: ${fmt(a.qg_mvar, 1)} Mvar`;
    case "shed_load": return `${a.bus}: shed ${fmt(a.shed_mw, 1)} MW`;
    case "trip_gen": return `trip ${a.gen}`;
    case "adopt_routes": return `${a.fleet}: ${a.routes?.length ?? 0} routes`;
    default: return JSON.stringify(a).slice(0, 120);
  }
}

async function loadProposals() {
  const d = await api("/proposals?limit=200");
  for (const p of d.proposals) S.proposals.set(p.id, p);
  stamp("proposals"); renderProposals();
}

async function decide(id, verb) {
  const p = S.proposals.get(id);
  if (verb === "approve" && p) {  // a plan that sheds load or does not hold is approved knowingly
    const s = p.summary || {};
    const warn = [];
    if (p.sheds_load) warn.push(`it sheds ${fmt(s.shed_mw, 1)} MW of load`);
    if (!p.ok) warn.push("it does NOT hold in AC");
    if (warn.length && !window.confirm(`Approve ${id}? ${warn.join("; ")}.`)) return;
  }
  try {
    const body = verb === "reject" ? { reason: "rejected from the console" } : undefined;
    await api(`/proposals/${encodeURIComponent(id)}/${verb}`, { method: "POST", body });
  } catch (e) { alert(`${verb} ${id}: ${e.message}`); }
  soon("proposals", loadProposals, 50);
}

// -- contingencies ----------------------------------------------------------------------
async function loadContingencies() {
  const d = await api("/contingencies");
  const tb = $("#contingencies tbody");
  tb.replaceChildren(...d.ranking.slice(0, 15).map((r) => el("tr", {},
    el("td", {}, r.rank), el("td", {}, `${r.contingency} (${r.status})`),
    el("td", { class: "num", title: r.probability_source }, fmt(r.probability, 5)),
    el("td", { class: "num" }, `${fmt(r.max_loading_pct, 0)} %`),
    el("td", { class: "num" }, fmt(r.impact_mw, 1)),
    el("td", { class: "num" }, fmt(r.expected_impact_mw, 3)))));
  const n1 = d.n1;
  $("#n1-summary").textContent = n1 ? `N-1 at seq ${n1.seq}: ${n1.contingencies} outages, ${n1.secure} secure, ` +
    `${n1.overload} overload, ${n1.islanding} islanding, ${n1.diverged} diverged (${n1.method}; ${n1.grid})` : "no N-1 screen yet";
  stamp("contingencies");
}

// -- fleets -----------------------------------------------------------------------------
const ROUTE_COLOURS = ["#40a9ff", "#73d13d", "#ffc53d", "#b37feb", "#36cfc9", "#ff85c0", "#ffd666", "#95de64"];

function drawFleet() {
  const c = $("#fleet"), R = S.roads, F = S.routes;
  if (!c || !R) return;
  const ctx = c.getContext("2d"), W = c.width, H = c.height, pad = 10;
  const [x0, y0, x1, y1] = R.bounds;
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
  const sc = Math.min((W - 2 * pad) / ((x1 - x0) * k || 1), (H - 2 * pad) / ((y1 - y0) || 1));
  const X = (lon) => pad + (lon - x0) * k * sc, Y = (lat) => H - pad - (lat - y0) * sc;
  ctx.fillStyle = "#0b0f14"; ctx.fillRect(0, 0, W, H);
  const roads = new Path2D();
  for (const line of R.lines) { line.forEach(([lo, la], i) => (i ? roads.lineTo(X(lo), Y(la)) : roads.moveTo(X(lo), Y(la)))); }
  ctx.strokeStyle = "#33404e"; ctx.lineWidth = 1; ctx.stroke(roads);
  if (!F) return;
  const feats = F.features || [];
  const byVehicle = {};
  let n = 0;
  const line = (coords) => { const p = new Path2D(); coords.forEach(([lo, la], i) => (i ? p.lineTo(X(lo), Y(la)) : p.moveTo(X(lo), Y(la)))); return p; };
  for (const f of feats.filter((f) => f.properties.feature === "route")) {
    const col = byVehicle[f.properties.vehicle] ??= ROUTE_COLOURS[n++ % ROUTE_COLOURS.length];
    ctx.strokeStyle = col; ctx.lineWidth = 2.5; ctx.stroke(line(f.geometry.coordinates));
  }
  for (const f of feats.filter((f) => f.properties.feature === "closure")) {
    ctx.strokeStyle = "#ff4d4f"; ctx.lineWidth = 4;
    for (const l of f.geometry.coordinates) ctx.stroke(line(l));
  }
  const pt = (f) => [X(f.geometry.coordinates[0]), Y(f.geometry.coordinates[1])];
  for (const f of feats) {
    const p = f.properties, [x, y] = f.geometry.type === "Point" ? pt(f) : [0, 0];
    if (p.feature === "site") { ctx.fillStyle = "#8c8c8c"; ctx.fillRect(x - 2, y - 2, 4, 4); }
    if (p.feature === "depot") { ctx.fillStyle = p.down ? "#ff4d4f" : "#ffffff"; ctx.fillRect(x - 5, y - 5, 10, 10); }
    if (p.feature === "dropped") { ctx.strokeStyle = "#ff4d4f"; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(x - 5, y - 5); ctx.lineTo(x + 5, y + 5); ctx.moveTo(x + 5, y - 5); ctx.lineTo(x - 5, y + 5); ctx.stroke(); }
    if (p.feature === "vehicle") {
      ctx.fillStyle = p.broken ? "#ff4d4f" : (byVehicle[p.vehicle] || "#fff");
      ctx.beginPath(); ctx.arc(x, y, p.reported ? 5 : 3.5, 0, 6.2832); ctx.fill();
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.stroke();
    }
  }
  const count = (f) => feats.filter((x) => x.properties.feature === f).length;
  $("#fleet-summary").textContent = `${count("route")} routes, ${count("vehicle")} vehicles, ` +
    `${feats.filter((f) => f.properties.feature === "closure").reduce((a, f) => a + f.geometry.coordinates.length, 0)} closed street segments, ` +
    `${count("dropped")} dropped orders (${feats.filter((f) => f.properties.feature === "dropped").map((f) => f.properties.order).join(", ") || "none"})`;
  $("#fleet-legend").replaceChildren(
    el("span", {}, el("i", { style: "background:#40a9ff" }), "route (one colour per vehicle)"),
    el("span", {}, el("i", { style: "background:#ff4d4f;height:4px" }), "closed road"),
    el("span", {}, "■ depot (red: down) · ● vehicle (small: not yet reported, at its depot) · ✕ dropped order"),
    el("span", {}, R.attribution || "© OpenStreetMap contributors"));
}

async function loadRoads() { S.roads = await api("/roads"); drawFleet(); }
async function loadRoutes() { S.routes = await api("/routes"); stamp("routes"); drawFleet(); }

// -- forecasts --------------------------------------------------------------------------
function drawForecast() {
  const c = $("#forecast"), d = S.forecasts;
  if (!c || !d) return;
  const ctx = c.getContext("2d"), W = c.width, H = c.height;
  ctx.fillStyle = "#0b0f14"; ctx.fillRect(0, 0, W, H);
  const f = d.forecasts.load || Object.values(d.forecasts)[0];
  const note = $("#forecast-note");
  if (!f) { note.textContent = "no forecast yet"; return; }
  const t = f.time.map((x) => Date.parse(x)), lo = Math.min(...f.p10_mw), hi = Math.max(...f.p90_mw);
  const padL = 52, padB = 22, padT = 10, padR = 10;
  const X = (ms) => padL + (ms - t[0]) / ((t[t.length - 1] - t[0]) || 1) * (W - padL - padR);
  const span = (hi - lo) || 1, Y = (v) => padT + (1 - (v - lo + 0.05 * span) / (1.1 * span)) * (H - padT - padB);
  ctx.fillStyle = "rgba(64,169,255,0.25)"; ctx.beginPath();
  t.forEach((x, i) => (i ? ctx.lineTo(X(x), Y(f.p90_mw[i])) : ctx.moveTo(X(x), Y(f.p90_mw[i]))));
  for (let i = t.length - 1; i >= 0; i--) ctx.lineTo(X(t[i]), Y(f.p10_mw[i]));
  ctx.closePath(); ctx.fill();
  ctx.strokeStyle = "#40a9ff"; ctx.lineWidth = 2; ctx.beginPath();
  t.forEach((x, i) => (i ? ctx.lineTo(X(x), Y(f.p50_mw[i])) : ctx.moveTo(X(x), Y(f.p50_mw[i])))); ctx.stroke();
  ctx.fillStyle = "#8a99a8"; ctx.font = "11px system-ui";
  for (const v of [lo, (lo + hi) / 2, hi]) ctx.fillText(`${fmt(v)} MW`, 2, Y(v) + 4);
  for (let i = 0; i < t.length; i += Math.max(1, Math.floor(t.length / 6))) ctx.fillText(new Date(t[i]).toISOString().slice(11, 16), X(t[i]) - 14, H - 6);
  const now = Date.now();
  if (now >= t[0] && now <= t[t.length - 1]) { ctx.strokeStyle = "#fff"; ctx.setLineDash([3, 3]); ctx.beginPath(); ctx.moveTo(X(now), padT); ctx.lineTo(X(now), H - padB); ctx.stroke(); ctx.setLineDash([]); }
  if (d.demand_now_mw !== null && d.demand_now_mw >= lo - 0.05 * span && d.demand_now_mw <= hi + 0.05 * span) {
    ctx.fillStyle = "#ffc53d"; ctx.fillText(`demand now ${fmt(d.demand_now_mw)} MW`, padL + 4, Y(d.demand_now_mw) - 4);
  }
  const ageH = (now - Date.parse(f.issued_at || f.start)) / 3.6e6;
  note.replaceChildren(`${f.quantity} forecast, model ${f.model}, P10–P90 band and P50, every ${f.step_minutes} min from ${f.start.slice(0, 16)}; issued ${fmt(ageH, 1)} h ago`,
    ageH > FORECAST_STALE_H ? el("span", { class: "age stale" }, " stale") : "");
}
async function loadForecasts() { S.forecasts = await api("/forecasts"); stamp("forecasts"); drawForecast(); }

// -- state, timeline --------------------------------------------------------------------
async function loadState() {
  S.state = await api("/state");
  $("#seq").textContent = `seq ${S.state.last_seq.toLocaleString()}`;
  $("#clock").textContent = S.state.clock ? S.state.clock.slice(0, 19).replace("T", " ") : "-";
}

function renderTimeline() {
  $("#timeline").replaceChildren(...S.timeline.slice(-150).reverse().map((e) =>
    el("li", { class: e.source.startsWith("operator:") ? "action" : e.source.startsWith("policy:") ? "compliant" : "information" },
      el("div", { class: "meta" }, el("span", {}, `#${e.seq}`), el("span", {}, e.occurred_at.slice(11, 19)), el("span", {}, e.source)),
      el("div", {}, `${e.type}${describe(e)}`))));
}
function describe(e) {
  const b = e.body;
  if (!b) return "";
  const part = b.branch || b.gen || b.bus || b.proposal || b.alarm || b.closure || b.order || b.vehicle || b.depot || b.asset || "";
  return part ? ` ${part}` : "";
}

// -- the live stream --------------------------------------------------------------------
const GRID_EVENTS = new Set(["branch_trip", "branch_restore", "gen_trip", "gen_restore", "gen_derate", "load_change",
  "load_scale", "renewable_update", "rating_change", "proposal_approved", "proposal_amended", "grid_initialised"]);
const FLEET_EVENTS = new Set(["road_closure", "road_slowdown", "road_reopening", "depot_outage", "depot_restored",
  "vehicle_position", "vehicle_breakdown", "order_created", "order_cancelled", "order_urgent", "proposal_approved",
  "proposal_amended", "fleet_initialised"]);

function onBatch(m) {
  let grid = false, fleet = false, props = false, alarms = false, cont = false;
  for (const it of m.items) {
    if (it.kind === "event") {
      S.timeline.push(it);
      S.metrics.eventShownAt[it.seq] = [it.recorded_at * 1000, 0];
      if (GRID_EVENTS.has(it.type)) grid = true;
      if (FLEET_EVENTS.has(it.type)) fleet = true;
      if (it.type === "forecast_issued") soon("forecasts", loadForecasts);
      if (["proposal_approved", "proposal_rejected", "proposal_amended"].includes(it.type)) props = true;
      if (it.type === "alarm_acknowledged") alarms = true;
    } else if (it.kind === "alarm") {
      const a = it.alarm;
      S.alarms.set(a.id, { ...a, acknowledged: false, ack: null });
      alarms = true; cont = true;
    } else if (it.kind === "proposal") {
      const p = it.proposal;
      for (const q of S.proposals.values()) if (q.scope === p.scope && q.status === "pending" && q.seq < p.seq) q.status = "superseded";
      S.proposals.set(p.id, { ...p, status: "pending", decision: null });
      S.metrics.proposalShownAt[p.id] = 0;
      props = true; cont = true;
    }
  }
  if (S.timeline.length > 500) S.timeline.splice(0, S.timeline.length - 500);
  renderTimeline();
  if (alarms) renderAlarms();
  if (props) renderProposals();
  // when each item is on screen (the browser test and the benchmark read these)
  const shown = Date.now();
  for (const it of m.items) {
    if (it.kind === "event") S.metrics.eventShownAt[it.seq][1] = shown;
    else if (it.kind === "alarm") S.metrics.alarmShownAt[it.alarm.id] = [it.stored_at * 1000, shown];
    else S.metrics.proposalShownAt[it.proposal.id] = [it.stored_at * 1000, shown];
  }
  if (m.items.some((it) => it.kind === "event" && it.type.startsWith("alarm_"))) soon("alarms", loadAlarms);
  if (m.items.some((it) => it.kind === "event" && it.type.startsWith("proposal_"))) soon("proposals", loadProposals);
  if (grid) soon("grid", loadGridLoading, 300);
  if (grid || cont) soon("contingencies", loadContingencies, 500);
  if (fleet) soon("routes", loadRoutes, 500);
  soon("state", loadState, 200);
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/stream?since=${encodeURIComponent(S.cursor)}`);
  S.ws = ws;
  setConn("wait", "connecting");
  ws.onopen = () => ws.send(JSON.stringify({ token: S.token }));
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    S.lastMessage = Date.now(); stamp("stream");
    if (m.type === "error") { setConn("off", `refused: ${m.error}`); if (m.status === 401) signOut(m.error); return; }
    if (m.type === "hello") { S.retry = 0; setConn("live", "live"); }
    if (m.type === "batch") onBatch(m);
    if (m.cursor) S.cursor = m.cursor;
  };
  ws.onclose = () => {
    if (S.ws !== ws || !S.token) return;
    setConn("off", "reconnecting");
    const wait = Math.min(10000, 300 * 2 ** S.retry++);
    setTimeout(() => { if (S.token) connect(); }, wait);
  };
}

function setConn(cls, text) { const b = $("#conn"); b.className = `badge ${cls}`; b.textContent = text; }

// -- ages -------------------------------------------------------------------------------
function tickAges() {
  const now = Date.now();
  for (const span of document.querySelectorAll("[data-age]")) {
    const k = span.dataset.age, t = S.fetched[k];
    if (!t) { span.textContent = "no data"; span.classList.add("stale"); continue; }
    const age = (now - t) / 1000;
    span.textContent = `updated ${age < 1 ? "now" : `${Math.round(age)} s ago`}`;
    span.classList.toggle("stale", age > DEADLINE_S[k]);
  }
  if (S.lastMessage && now - S.lastMessage > DEADLINE_S.stream * 1000 && S.ws && S.ws.readyState === 1) setConn("wait", "silent");
  for (const li of document.querySelectorAll("#alarms li")) {
    const a = S.alarms.get(li.dataset.id);
    const span = li.querySelector(".meta span:nth-child(4)");
    if (a && span && a.time_to_act_s > 0 && !a.acknowledged) {
      const left = timeLeft(a);
      if (left !== null) { span.textContent = actText(left); span.className = left < 0 ? "overdue" : ""; }
    }
  }
}

// -- start ------------------------------------------------------------------------------
function signOut(why) {
  S.token = ""; sessionStorage.removeItem("aiguilleur-token");
  if (S.ws) { const w = S.ws; S.ws = null; w.close(); }
  $("#main").hidden = true; $("#login").hidden = false; $("#logout").hidden = true;
  $("#login-error").textContent = why || "";
  setConn("off", "signed out");
}

async function start() {
  try {
    const head = await api("/feed/head");
    S.cursor = head.cursor;
  } catch (e) {
    signOut(e instanceof HttpError && e.status === 401 ? "the token was refused" : e.message);
    return;
  }
  $("#login").hidden = true; $("#main").hidden = false; $("#logout").hidden = false;
  const me = await api("/whoami");
  S.role = me.role;
  $("#who").textContent = `${me.name} (${me.role})`;
  gridLegend();
  const seq = Number(S.cursor.split(".")[0]);
  const tail = await api(`/feed?since=${Math.max(0, seq - 100)}.${Number.MAX_SAFE_INTEGER}.${Number.MAX_SAFE_INTEGER}&limit=100`).catch(() => null);
  if (tail) { S.timeline = tail.items.filter((x) => x.kind === "event"); renderTimeline(); stamp("stream"); }
  await Promise.allSettled([loadState(), loadGridGeometry().then(loadGridLoading), loadAlarms(), loadProposals(),
    loadContingencies(), loadForecasts(), loadRoads().then(loadRoutes)]);
  connect();
  setInterval(tickAges, 1000);
  setInterval(() => { if (!S.token) return; soon("grid", loadGridLoading); soon("contingencies", loadContingencies);
    soon("routes", loadRoutes); soon("forecasts", loadForecasts); soon("alarms", loadAlarms); soon("proposals", loadProposals); }, 30000);
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  S.token = $("#token").value.trim();
  sessionStorage.setItem("aiguilleur-token", S.token);
  start();
});
$("#logout").addEventListener("click", () => signOut(""));
$("#only-open").addEventListener("change", renderAlarms);
for (const r of document.querySelectorAll("input[name=gridmode]")) r.addEventListener("change", (e) => { S.gridMode = e.target.value; drawGrid(); });
$("#grid").addEventListener("mousemove", gridTip);
$("#grid").addEventListener("mouseleave", () => { $("#grid-tip").hidden = true; });

if (S.token) start(); else signOut("");
