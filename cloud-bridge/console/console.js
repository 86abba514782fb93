// Ferry console: reads the HTTP API (docs/api.md), follows its event stream
// and renders the fleet. Plain JS, no library. Text from the server only ever
// goes into textContent, never into HTML.
"use strict";

const API = "/api/v1";
const STATES = ["idle", "available", "deferred", "downloading", "verifying", "installing",
  "pending-reboot", "success", "failed", "rolled-back", "rejected"];
const BUSY = new Set(["downloading", "verifying", "installing", "pending-reboot"]);
const ACTIONS = ["pause", "resume", "next", "cancel", "retry"];
// Which actions a rollout's state allows (cloud_rollout_ops.h).
const ALLOWED = {
  scheduled: ["pause", "next", "cancel"], running: ["pause", "next", "cancel"],
  paused: ["resume", "cancel"], halted: ["retry", "cancel"], cancelled: [], completed: [],
};

const $ = (sel) => document.querySelector(sel);
const state = {
  token: sessionStorage.getItem("ferry-token") || "",
  query: {},          // the node list's filters
  cursor: {},         // {after} or {before}
  page: null,         // the last page read
  rows: new Map(),    // node id -> <tr> on the page
  refreshTimer: 0,
  openLogs: new Set(),  // rollouts whose log is unfolded
};

// ---- small helpers -------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function when(t) {
  if (!t) return "–";
  const s = Math.max(0, Math.round(Date.now() / 1000 - t));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");
}

function headers(extra) {
  const h = Object.assign({}, extra);
  if (state.token) h.Authorization = "Bearer " + state.token;
  return h;
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function get(path) {
  const r = await fetch(API + path, { headers: headers() });
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) askToken();
  if (!r.ok) throw new HttpError(r.status, body.message || r.statusText);
  return body;
}

// A stacked bar: parts is [[class, count], ...] out of total.
function bar(parts, total, title) {
  const b = el("div", { class: "bar", title: title || "" });
  for (const [cls, n] of parts) {
    if (!n) continue;
    const seg = el("div", { class: "seg " + cls, title: cls.replace("s-", "") + ": " + n });
    seg.style.width = (100 * n / Math.max(total, 1)) + "%";
    seg.dataset.count = n;
    b.append(seg);
  }
  return b;
}

function legend(parts) {
  return el("div", { class: "legend" },
    ...parts.filter(([, n]) => n).map(([cls, n]) =>
      el("span", {}, el("i", { class: cls }), cls.replace("s-", "") + " " + n)));
}

// ---- summary -------------------------------------------------------------------------------

function renderSummary(s) {
  $("#sum-nodes").textContent = s.nodes;
  $("#sum-gateways").textContent = s.gateways.online + " / " + s.gateways.known;
  $("#sum-rollouts").textContent = s.rollouts.active;
  const parts = STATES.map((st) => ["s-" + st, s.states[st]]);
  $("#sum-states").replaceWith(Object.assign(bar(parts, s.nodes), { id: "sum-states" }));
  $("#sum-states-legend").replaceWith(Object.assign(legend(parts), { id: "sum-states-legend" }));
  const rows = s.versions.map((v) => el("tr", {},
    el("td", { text: v.version || "(none)" }),
    el("td", { class: "num", text: String(v.nodes) }),
    el("td", {}, bar([["s-success", v.nodes]], s.nodes))));
  if (s.other_versions) rows.push(el("tr", {}, el("td", { text: "others" }),
    el("td", { class: "num", text: String(s.other_versions) })));
  $("#sum-versions").replaceChildren(...rows);
}

// ---- rollouts ------------------------------------------------------------------------------

// A rollout's counts name only the states its nodes are in.
function count(states, k) { return states[k] || 0; }

function rolloutParts(states, targets) {
  const active = ["available", "deferred", "downloading", "verifying", "installing",
    "pending-reboot"].reduce((a, k) => a + count(states, k), 0);
  const reported = STATES.reduce((a, k) => a + count(states, k), 0);
  return [["s-success", count(states, "success")], ["s-failed", count(states, "failed")],
    ["s-rolled-back", count(states, "rolled-back")], ["s-rejected", count(states, "rejected")],
    ["s-active", active], ["s-idle", count(states, "idle")],
    ["s-silent", Math.max(0, targets - reported)]];
}

function renderRollout(r) {
  const allowed = ALLOWED[r.state] || [];
  const buttons = ACTIONS.map((a) => el("button", {
    type: "button", "data-action": a, class: a === "cancel" ? "danger" : "",
    onclick: () => askAction(r, a),
  }, a));
  buttons.forEach((b) => { b.disabled = !allowed.includes(b.dataset.action); });
  const waves = el("table", { class: "waves" },
    el("thead", {}, el("tr", {}, ...["wave", "share", "", "targets", "silent", "success",
      "failed", "rolled back", "rejected", "progress"].map((h) => el("th", { text: h })))));
  const body = el("tbody");
  for (const w of r.waves) {
    const st = w.states;
    body.append(el("tr", {
      "data-wave": w.wave, title: "show this wave's nodes",
      onclick: () => filterNodes({ rollout: String(r.id), wave: String(w.wave) }),
    },
    el("td", { text: String(w.wave) }), el("td", { text: w.spec }),
    el("td", { class: "wave-state", text: w.open ? "open" : "waiting" }),
    el("td", { class: "num", text: String(w.targets) }),
    el("td", { class: "num", text: String(w.silent) }),
    el("td", { class: "num", text: String(count(st, "success")) }),
    el("td", { class: "num", text: String(count(st, "failed")) }),
    el("td", { class: "num", text: String(count(st, "rolled-back")) }),
    el("td", { class: "num", text: String(count(st, "rejected")) }),
    el("td", {}, bar(rolloutParts(st, w.targets), w.targets))));
  }
  waves.append(body);
  const log = el("details", { class: "log", "data-id": r.id });
  log.open = state.openLogs.has(r.id);
  log.addEventListener("toggle", () => {
    if (log.open) { state.openLogs.add(r.id); loadLog(r.id, log); } else state.openLogs.delete(r.id);
  });
  log.append(el("summary", { text: "decision log" }), el("div", { class: "entries" }));
  if (log.open) loadLog(r.id, log);
  const parts = rolloutParts(r.totals.states, r.totals.targets);
  return el("div", { class: "rollout", "data-id": r.id, "data-state": r.state },
    el("div", { class: "head" },
      el("span", { class: "title", text: "#" + r.id + " " + r.release }),
      el("span", { class: "badge state " + r.state, text: r.state }),
      el("span", { class: "muted", text: "version " + r.version + ", " + r.open_waves + " of " +
        r.waves.length + " waves open, by " + r.created_by + " " + when(r.created_at) }),
      el("span", { class: "actions" }, ...buttons)),
    el("div", { class: "totals", "data-targets": r.totals.targets,
      "data-success": count(r.totals.states, "success") }, bar(parts, r.totals.targets)),
    legend(parts),
    el("p", { class: "waiting", text: r.waiting }),
    waves, log);
}

async function loadLog(id, details) {
  try {
    const r = await get("/rollouts/" + id + "/log?limit=50");
    details.querySelector(".entries").replaceChildren(el("table", {},
      ...r.log.map((e) => el("tr", {}, el("td", { text: when(e.at) }),
        el("td", { text: e.actor }), el("td", { text: e.action }), el("td", { text: e.reason })))));
  } catch (e) { /* the next rollouts event draws it again */ }
}

function renderRollouts(doc) {
  const box = $("#rollouts");
  if (!doc.rollouts.length) {
    box.replaceChildren(el("p", { class: "empty", text: "No rollout yet." }));
    return;
  }
  box.replaceChildren(...doc.rollouts.map(renderRollout));
}

// ---- actions -------------------------------------------------------------------------------

let pending = null;

function askAction(r, action) {
  pending = { id: r.id, action };
  $("#action-title").textContent = action[0].toUpperCase() + action.slice(1) + " rollout #" + r.id +
    " (" + r.release + ")?";
  $("#action-token-row").hidden = !!state.token;
  $("#action-error").hidden = true;
  $("#action-form").reset();
  $("#action-dialog").showModal();
}

async function doAction(token, reason) {
  if (token) { state.token = token; sessionStorage.setItem("ferry-token", token); }
  const body = reason ? JSON.stringify({ reason }) : "";
  const r = await fetch(API + "/rollouts/" + pending.id + "/" + pending.action, {
    method: "POST", headers: headers({ "Content-Type": "application/json" }), body,
  });
  const doc = await r.json().catch(() => ({}));
  if (r.status === 401) {   // a wrong token: ask again
    state.token = "";
    sessionStorage.removeItem("ferry-token");
  }
  if (!r.ok) throw new HttpError(r.status, doc.message || r.statusText);
  return doc;
}

$("#action-dialog").addEventListener("close", async () => {
  const dlg = $("#action-dialog");
  if (dlg.returnValue !== "confirm" || !pending) return;
  const form = $("#action-form");
  try {
    await doAction(form.token.value.trim(), form.reason.value.trim());
    pending = null;
    loadRollouts();
  } catch (e) {
    $("#action-error").textContent = e.message;
    $("#action-error").hidden = false;
    $("#action-token-row").hidden = !!state.token;
    dlg.showModal();
  }
});

// ---- nodes ---------------------------------------------------------------------------------

function stateCell(n) {
  const cell = el("span", { class: "state" }, el("i", { class: "dot s-" + n.state }),
    el("span", { class: "name", text: n.state }));
  if (BUSY.has(n.state) && n.total > 0) {
    const pct = Math.min(100, Math.round(100 * n.bytes / n.total));
    const fill = el("span", { class: "fill" });
    fill.style.width = pct + "%";
    cell.append(el("span", { class: "progress", title: n.bytes + " of " + n.total + " bytes",
      "data-pct": pct }, fill), el("span", { class: "muted", text: pct + " %" }));
  }
  return cell;
}

function nodeRow(n) {
  const hw = n.hw_model ? n.hw_model + (n.hw_revision ? "/" + n.hw_revision : "") : "–";
  const err = n.error ? n.error + (n.message ? ": " + n.message : "") : "";
  return el("tr", { "data-node": n.node, "data-state": n.state, onclick: () => showNode(n.node) },
    el("td", { text: n.node }), el("td", { text: n.gateway }), el("td", {}, stateCell(n)),
    el("td", { text: n.version || "–" }), el("td", { text: n.release || "–" }),
    el("td", { text: hw }), el("td", { class: "error", text: err, title: err }),
    el("td", { text: when(n.updated_at), title: new Date(n.updated_at * 1000).toISOString() }));
}

function renderPage(page) {
  state.page = page;
  state.rows.clear();
  const rows = page.nodes.map((n) => { const tr = nodeRow(n); state.rows.set(n.node, tr); return tr; });
  $("#nodes tbody").replaceChildren(...rows);
  if (!rows.length) {
    $("#nodes tbody").append(el("tr", {}, el("td", { colspan: 8, class: "empty", text: "No node matches." })));
  }
  $("#nodes-count").textContent = page.total + (page.total === 1 ? " node" : " nodes");
  $("#page-info").textContent = page.nodes.length ? page.nodes[0].node + " … " +
    page.nodes[page.nodes.length - 1].node : "";
  $("#page-prev").disabled = !page.prev;
  $("#page-next").disabled = !page.next;
  $("#page-first").disabled = !page.prev;
}

async function loadNodes() {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(Object.assign({}, state.query, state.cursor))) {
    if (v) params.set(k, v);
  }
  try {
    renderPage(await get("/nodes?" + params.toString()));
    $("#nodes-error").hidden = true;
  } catch (e) {
    $("#nodes-error").textContent = e.message;
    $("#nodes-error").hidden = false;
  }
}

// The page's rows change in place; the page itself is read again a little
// later (a node may have left or entered the filter).
function patchNodes(doc) {
  for (const n of doc.nodes) {
    const tr = state.rows.get(n.node);
    if (!tr) continue;
    const fresh = nodeRow(n);
    tr.replaceWith(fresh);
    state.rows.set(n.node, fresh);
  }
  if (doc.truncated || doc.nodes.some((n) => !state.rows.has(n.node))) refreshNodesSoon();
}

function refreshNodesSoon() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => { state.refreshTimer = 0; loadNodes(); }, 2000);
}

function filterNodes(q) {
  const form = $("#filters");
  for (const input of form.elements) {
    if (input.name && input.name !== "limit") input.value = q[input.name] || "";
  }
  readFilters();
  form.scrollIntoView({ behavior: "smooth" });
}

function readFilters() {
  state.query = {};
  for (const input of $("#filters").elements) {
    if (input.name && input.value.trim()) state.query[input.name] = input.value.trim();
  }
  state.cursor = {};
  loadNodes();
}

async function showNode(id) {
  try {
    const d = await get("/nodes/" + encodeURIComponent(id) + "?history=30");
    const n = d.node;
    $("#node-title").textContent = n.node;
    const tags = n.tags ? Object.entries(n.tags).map(([k, v]) => k + "=" + v).join(", ") : "";
    $("#node-facts").textContent = "gateway " + n.gateway + (d.binding ? " (bound " +
      d.binding.how + ")" : "") + ", hardware " + (n.hw_model || "–") +
      (tags ? ", tags " + tags : "") + ", running " + (n.version || "–");
    $("#node-history tbody").replaceChildren(...d.history.map((h) => el("tr", {},
      el("td", { text: String(h.seq) }), el("td", { text: when(h.received_at) }),
      el("td", { text: h.state }), el("td", { text: h.release || "–" }),
      el("td", { text: h.total ? Math.round(100 * h.bytes / h.total) + " %" : "" }),
      el("td", { class: "error", text: h.error ? h.error + ": " + h.message : "" }))));
    $("#node-refused").textContent = d.refused.length ? d.refused.length +
      " record(s) refused, the newest: " + d.refused[0].reason + " (" + d.refused[0].detail + ")" : "";
    $("#node-dialog").showModal();
  } catch (e) { /* gone meanwhile */ }
}

$("#filters").addEventListener("submit", (e) => { e.preventDefault(); readFilters(); });
$("#filters-clear").addEventListener("click", () => { $("#filters").reset(); readFilters(); });
$("#page-next").addEventListener("click", () => { state.cursor = { after: state.page.next }; loadNodes(); });
$("#page-prev").addEventListener("click", () => { state.cursor = { before: state.page.prev }; loadNodes(); });
$("#page-first").addEventListener("click", () => { state.cursor = {}; loadNodes(); });

// ---- gateways ------------------------------------------------------------------------------

function renderGateways(doc) {
  $("#gateways tbody").replaceChildren(...doc.gateways.map((g) => el("tr", { "data-gateway": g.gateway },
    el("td", { text: g.gateway }),
    el("td", { class: g.presence, text: g.presence + (g.presence_since ? " " + when(g.presence_since) : "") }),
    el("td", { class: "num", text: String(g.nodes) }), el("td", { class: "num", text: String(g.busy) }),
    el("td", { class: "num", text: String(g.failed) }), el("td", { text: when(g.last_record_at) }))));
}

// ---- the token -----------------------------------------------------------------------------

function askToken() {
  const dlg = $("#token-dialog");
  if (!dlg.open) dlg.showModal();
}

$("#token-button").addEventListener("click", askToken);
$("#token-dialog").addEventListener("close", () => {
  const dlg = $("#token-dialog");
  const value = dlg.querySelector("input").value.trim();
  dlg.querySelector("input").value = "";
  if (dlg.returnValue === "forget") { state.token = ""; sessionStorage.removeItem("ferry-token"); }
  if (dlg.returnValue === "save" && value) { state.token = value; sessionStorage.setItem("ferry-token", value); }
  loadAll();
  stream.restart();
});

// ---- live updates --------------------------------------------------------------------------

// Server-Sent Events read with fetch(), so that a token can go in the
// Authorization header (EventSource cannot send one).
const stream = {
  controller: null, lastId: "", delay: 1000,
  restart() { if (this.controller) this.controller.abort(); },
  async run() {
    for (;;) {
      this.controller = new AbortController();
      try {
        const h = headers({ Accept: "text/event-stream" });
        if (this.lastId) h["Last-Event-ID"] = this.lastId;
        const r = await fetch(API + "/events", { headers: h, signal: this.controller.signal });
        if (!r.ok) throw new HttpError(r.status, r.statusText);
        setLive(true);
        this.delay = 1000;
        await this.read(r.body.getReader());
      } catch (e) { /* reconnect below */ }
      setLive(false);
      await new Promise((ok) => setTimeout(ok, this.delay));
      this.delay = Math.min(this.delay * 2, 15000);
    }
  },
  async read(reader) {
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let type = "message", data = "";
        for (const line of frame.split("\n")) {
          if (line.startsWith("id: ")) this.lastId = line.slice(4);
          else if (line.startsWith("event: ")) type = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) onEvent(type, JSON.parse(data));
      }
    }
  },
};

function setLive(on) {
  $("#live").className = "live " + (on ? "on" : "off");
  $("#live").textContent = on ? "live" : "reconnecting";
}

function onEvent(type, doc) {
  if (type === "summary") { renderSummary(doc); refreshNodesSoon(); }
  else if (type === "rollouts") renderRollouts(doc);
  else if (type === "gateways") renderGateways(doc);
  else if (type === "nodes") patchNodes(doc);
  else if (type === "reset") loadAll();
}

// ---- start ---------------------------------------------------------------------------------

async function loadRollouts() {
  try { renderRollouts(await get("/rollouts")); } catch (e) { /* shown by the stream later */ }
}

async function loadAll() {
  try { renderSummary(await get("/summary")); } catch (e) { /* 401 asks for a token */ }
  loadRollouts();
  loadNodes();
  try { renderGateways(await get("/gateways")); } catch (e) { /* idem */ }
}

for (const s of STATES) $("#filters select[name=state]").append(el("option", { value: s, text: s }));
loadAll();
stream.run();
