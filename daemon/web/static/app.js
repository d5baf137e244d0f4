// The status page: polls /api/status and redraws. No library, no CDN.
"use strict";

const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
let previous = null; // last status and when it came, for the rates

function $(id) { return document.getElementById(id); }

function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function limit(n) { return n > 0 ? bytes(n) : "unlimited"; }
function rate(n) { return n > 0 ? bytes(n) + "/s" : "unlimited"; }

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function stateOf(m) { return m.self ? "self" : (m.connected ? "connected" : "disconnected"); }

function fillList(dl, rows) {
  dl.replaceChildren();
  for (const [k, v] of rows) { dl.append(el("dt", {}, k), el("dd", {}, v)); }
}

function drawSwarm(st) {
  const svg = $("swarm");
  svg.replaceChildren();
  const members = st.members || [];
  if (members.length === 0) {
    svg.append(el("svg:text", { x: 260, y: 210, "text-anchor": "middle" }, "not in a swarm"));
    return;
  }
  const self = members.find(m => m.self);
  const others = members.filter(m => !m.self);
  const cx = 260, cy = 210, r = others.length > 0 ? 150 : 0;
  const pos = new Map();
  if (self) pos.set(self.peer_id, [cx, cy]);
  // Keep every member off the top, where its label would sit on its line.
  const offset = others.length <= 2 ? Math.PI / 2 : Math.PI / others.length;
  others.forEach((m, i) => {
    const a = -Math.PI / 2 + offset + (2 * Math.PI * i) / others.length;
    pos.set(m.peer_id, [cx + r * Math.cos(a), cy + r * Math.sin(a)]);
  });
  if (self) {
    for (const m of others) {
      const [x, y] = pos.get(m.peer_id);
      svg.append(el("svg:line", { x1: cx, y1: cy, x2: x, y2: y, class: "link" + (m.connected ? "" : " down"), "data-peer": m.name }));
    }
  }
  for (const m of members) {
    const [x, y] = pos.get(m.peer_id);
    const g = el("svg:g", { class: "node state-" + stateOf(m), "data-member": m.name, "data-state": stateOf(m) });
    g.append(el("svg:circle", { cx: x, cy: y, r: 30 }));
    g.append(el("svg:text", { x: x, y: y + 4 }, m.name));
    g.append(el("svg:text", { x: x, y: y + 46, class: "sub" }, m.role + " · " + stateOf(m)));
    svg.append(g);
  }
}

function drawMembers(st) {
  const body = $("members").tBodies[0];
  body.replaceChildren();
  for (const m of st.members || []) {
    const lim = m.limits || {};
    const tr = el("tr", { "data-member": m.name, "data-state": stateOf(m) });
    tr.append(
      el("td", {}, m.name + (m.self ? " (this daemon)" : "")),
      el("td", {}, m.role),
      el("td", { class: "state-" + stateOf(m) }, stateOf(m)),
      el("td", {}, m.self ? "now" : (m.last_seen || "never")),
      el("td", {}, m.self ? bytes(st.store.used) + " of " + limit(st.store.limit) : "not known here"),
      el("td", {}, limit(lim.storage)),
      el("td", {}, rate(lim.upload) + " / " + rate(lim.download)),
    );
    body.append(tr);
  }
}

function drawSelf(st, now) {
  let up = "–", down = "–";
  if (previous) {
    const dt = (now - previous.at) / 1000;
    if (dt > 0) {
      up = bytes(Math.max(0, (st.bytes_sent - previous.st.bytes_sent) / dt)) + "/s";
      down = bytes(Math.max(0, (st.bytes_received - previous.st.bytes_received) / dt)) + "/s";
    }
  }
  fillList($("self"), [
    ["peer", st.peer_id],
    ["version", st.version],
    ["connected peers", String(st.connected_peers)],
    ["store", bytes(st.store.used) + " of " + limit(st.store.limit) + " · " + st.store.chunks + " chunks · " + st.store.manifests + " contents"],
    ["corrupt chunks", String(st.store.corrupt)],
    ["bandwidth now", "up " + up + " · down " + down],
    ["sent / received", bytes(st.bytes_sent) + " / " + bytes(st.bytes_received)],
    ["limits", "upload " + rate(st.limits.upload) + " · download " + rate(st.limits.download)],
    ["refused connections", String(st.refused_connections)],
  ]);
}

function drawReplication(st) {
  const r = st.replication;
  if (!r) {
    fillList($("replication"), [["", "not in a swarm"]]);
    $("problem").hidden = true;
    $("last-round").textContent = "";
    return;
  }
  fillList($("replication"), [
    ["contents held", String(r.contents)],
    ["at target", String(r.at_target)],
    ["below target", String(r.below_target)],
    ["below copies_min", String(r.below_copies_min)],
    ["in repair", String(r.in_repair)],
    ["no member has room", String(r.no_room)],
    ["removal records", String(r.removed)],
  ]);
  $("last-round").textContent = r.last_round ? "(last round " + r.last_round + ")" : "(no round yet)";
  $("problem").hidden = !r.problem;
  $("problem").textContent = r.problem || "";
}

function drawTransfers(st) {
  const box = $("transfers");
  box.replaceChildren();
  const ts = st.transfers || [];
  if (ts.length === 0) { box.append(el("p", { class: "muted" }, "none")); return; }
  const names = new Map((st.members || []).map(m => [m.peer_id, m.name]));
  for (const t of ts) {
    const pct = t.total > 0 ? Math.min(100, (100 * t.bytes) / t.total) : 0;
    const d = el("div", { class: "transfer", "data-op": t.op });
    const what = t.op + (t.phase ? " (" + t.phase + ")" : "") + " " + t.subject;
    d.append(el("div", {}, what + " — " + bytes(t.bytes) + (t.total ? " of " + bytes(t.total) : "")));
    const bar = el("div", { class: "bar" });
    const fill = el("div");
    fill.style.width = pct.toFixed(1) + "%"; // CSSOM: the CSP forbids style attributes
    bar.append(fill);
    d.append(bar);
    const src = Object.entries(t.sources || {}).map(([p, n]) => (names.get(p) || p.slice(-8)) + " " + bytes(n));
    if (src.length) d.append(el("div", { class: "note" }, (t.phase === "seeding" ? "holders: " : "sources: ") + src.join(", ")));
    box.append(d);
  }
}

function render(st) {
  const now = Date.now();
  const sw = st.swarm;
  $("swarm-name").textContent = sw ? "· " + sw.name : "· no swarm";
  const members = st.members || [];
  const up = members.filter(m => m.self || m.connected).length;
  $("summary").textContent = sw
    ? "rules version " + sw.version + " · " + up + " of " + members.length + " members reachable from here"
    : "this daemon has not joined a swarm";
  drawSwarm(st);
  drawMembers(st);
  drawSelf(st, now);
  drawReplication(st);
  drawTransfers(st);
  previous = { st, at: now };
  $("updated").textContent = new Date(now).toLocaleTimeString();
  document.body.dataset.loaded = "true";
}

async function poll() {
  try {
    const resp = await fetch("/api/status", { cache: "no-store" });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || resp.statusText);
    $("banner").hidden = true;
    render(body);
  } catch (e) {
    $("banner").hidden = false;
    $("banner").textContent = "cannot read the daemon's status: " + e.message;
  }
  setTimeout(poll, POLL_MS);
}

poll();
