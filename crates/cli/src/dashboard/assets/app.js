// The rookery dashboard: one page per resource kind, each a view of what the control API answers
// (through /api/...), refreshed every few seconds. No framework: the pages are tables and forms, and a
// small renderer of SVG line charts draws the last hour.
"use strict";

const CSRF = document.querySelector('meta[name="csrf"]').content;
const REFRESH_MS = 5000;
const state = { status: null, history: null, error: null, busy: false };

// ---- talking to the control API -------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the request failed (HTTP ${status})`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body, contentType) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const r = await fetch("/api" + path, { method, headers, body: payload, credentials: "same-origin" });
  if (r.status === 401) {
    window.location.assign("/login");
    throw new ApiError(401, { message: "logged out" });
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text }; }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

const get = (path) => api("GET", path);
const enc = encodeURIComponent;

// ---- formatting ------------------------------------------------------------------------------------

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = Number(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}
const pct = (r) => (r * 100).toFixed(r < 0.1 ? 1 : 0) + " %";
const rate = (n, unit) => (n >= 100 ? n.toFixed(0) : n.toFixed(1)) + " " + unit;
function ago(unix) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - unix));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(unix * 1000).toLocaleString();
}
function duration(s) {
  if (s === null || s === undefined) return "";
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}

// ---- building the page -----------------------------------------------------------------------------

// h("tag.class", {attr: v, onclick: f}, children...): text children are always text, never HTML.
function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function table(columns, rows, empty, id) {
  if (!rows.length) return h("p.muted", {}, empty);
  return h("table", { id },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c[0])))),
    h("tbody", {}, rows.map((r) => h("tr", { dataset: r.__key ? { key: r.__key } : undefined },
      columns.map((c) => h("td", {}, c[1](r)))))));
}

function card(title, ...body) {
  return h("section.card", {}, h("h2", {}, title), ...body);
}

function badge(text, kind) {
  return h("span.badge." + kind, {}, text);
}

function healthKind(health) {
  return health === "HEALTH_OK" ? "ok" : health === "HEALTH_WARN" ? "warn" : "err";
}

function bar(ratio) {
  const r = Math.max(0, Math.min(1, ratio || 0));
  const kind = r > 0.95 ? "err" : r > 0.85 ? "warn" : r > 0.75 ? "info" : "ok";
  return h("span.bar", { title: pct(r) }, h("span." + kind, { style: `width:${(r * 100).toFixed(1)}%` }), h("em", {}, pct(r)));
}

// What the last action did, or why it was refused: above the page, so a redraw keeps it.
function outcome(ok, text) {
  document.getElementById("flash").replaceChildren(
    h(ok ? "p.done" : "p.refused", { role: ok ? "status" : "alert" }, text,
      h("button.close", { type: "button", "aria-label": "dismiss", onclick: () => document.getElementById("flash").replaceChildren() }, "×")));
}

// Runs an action from a form: the API's refusal is shown as it is, and nothing else happens.
async function act(fn, doneText) {
  state.busy = true;
  try {
    await fn();
    outcome(true, doneText);
    state.busy = false;
    await refresh(true);
  } catch (e) {
    outcome(false, "Refused: " + e.message);
  } finally {
    state.busy = false;
  }
}

function confirmDialog(question) {
  return window.confirm(question);
}

// ---- charts ----------------------------------------------------------------------------------------

// Rates per second between successive samples of counter `key`.
function rates(samples, key) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = samples[i].unix - samples[i - 1].unix;
    const dv = samples[i][key] - samples[i - 1][key];
    if (dt > 0) out.push([samples[i].unix, Math.max(0, dv / dt)]);
  }
  return out;
}

function chart(title, series, format) {
  const W = 460, H = 150, L = 64, B = 20;
  const all = series.flatMap((s) => s.points);
  const box = h("figure.chart", {}, h("figcaption", {}, title));
  if (all.length < 2) {
    box.append(h("p.muted", {}, "Collecting: a point every 10 s."));
    return box;
  }
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  const vmax = Math.max(1e-9, ...all.map((p) => p[1])) * 1.1;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - 8);
  const y = (v) => 8 + (1 - v / vmax) * (H - B - 8);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const line = (x1, y1, x2, y2, cls) => {
    const l = document.createElementNS(ns, "line");
    Object.entries({ x1, y1, x2, y2, class: cls }).forEach(([k, v]) => l.setAttribute(k, v));
    svg.append(l);
  };
  const label = (xx, yy, text, anchor) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", xx); t.setAttribute("y", yy); t.setAttribute("text-anchor", anchor || "end");
    t.textContent = text;
    svg.append(t);
  };
  line(L, y(0), W - 8, y(0), "axis");
  line(L, y(vmax / 1.1), W - 8, y(vmax / 1.1), "grid");
  label(L - 4, y(0) + 4, format(0));
  label(L - 4, y(vmax / 1.1) + 4, format(vmax / 1.1));
  label(L, H - 4, new Date(t0 * 1000).toLocaleTimeString(), "start");
  label(W - 8, H - 4, new Date(t1 * 1000).toLocaleTimeString(), "end");
  series.forEach((s, i) => {
    const p = document.createElementNS(ns, "polyline");
    p.setAttribute("points", s.points.map((pt) => `${x(pt[0]).toFixed(1)},${y(pt[1]).toFixed(1)}`).join(" "));
    p.setAttribute("class", "series s" + i);
    svg.append(p);
  });
  box.append(svg, h("div.legend", {}, series.map((s, i) => h("span.s" + i, {}, s.name + ": " + format(s.points.length ? s.points[s.points.length - 1][1] : 0)))));
  return box;
}

// ---- pages -----------------------------------------------------------------------------------------

function attention(st) {
  const items = [];
  const c = st.ceph;
  if (!c) items.push(["err", "Ceph does not answer: " + (st.ceph_error || "no mon reachable")]);
  for (const k of (c && c.checks) || []) {
    items.push([k.severity === "HEALTH_ERR" ? "err" : "warn", `${k.code}: ${k.message}. ${k.explanation}`, k.details]);
  }
  for (const d of st.daemons || []) {
    if (d.state === "gave-up") items.push(["err", `${d.name} kept dying at start and was given up on: fix the cause, then \`rookery daemon retry ${d.name}\`.`, d.log_tail]);
    else if (d.crash_looping) items.push(["warn", `${d.name} keeps dying within a minute of each start.`, d.log_tail]);
    else if (d.state !== "running") items.push(["warn", `${d.name} is ${d.state}.`]);
  }
  const r = st.reconcile || {};
  for (const b of r.blocked || []) items.push(["warn", "Cannot carry out: " + b]);
  for (const p of r.problems || []) items.push(["warn", typeof p === "string" ? p : JSON.stringify(p)]);
  if (r.last_error) items.push(["err", "The last reconcile pass failed: " + r.last_error]);
  for (const n of st.not_ready || []) items.push(["info", n]);
  return items;
}

function overview(st, hist) {
  const c = st.ceph || {};
  const cap = c.capacity || {};
  const samples = (hist && hist.samples) || [];
  const readB = rates(samples, "read_bytes"), writeB = rates(samples, "written_bytes");
  const readO = rates(samples, "read_ops"), writeO = rates(samples, "write_ops");
  const last = (pts) => (pts.length ? pts[pts.length - 1][1] : 0);
  const act = c.activity || {};
  const items = attention(st);
  const osds = c.osds || [];
  return [
    card("Health",
      h("p.health", {}, badge(c.health || "unknown", healthKind(c.health)), " ",
        items.length ? `${items.length} thing(s) need attention.` : "All is well: every OSD up and in, every placement group active and clean."),
      items.length ? h("ul.attention", { id: "attention" }, items.map(([kind, text, details]) =>
        h("li." + kind, {}, text, details && details.length ? h("ul", {}, details.map((d) => h("li", {}, d))) : null))) : null),
    h("div.grid", {},
      card("Capacity",
        h("p.big", {}, bytes(cap.used_bytes), " used of ", bytes(cap.total_bytes)),
        bar(cap.total_bytes ? cap.used_bytes / cap.total_bytes : 0),
        h("p.muted", {}, bytes(cap.avail_bytes), " free (raw, before copies)")),
      card("Client I/O",
        h("p.big", {}, rate(last(readO) + last(writeO), "op/s")),
        h("p", {}, "read ", rate(last(readB) / 1048576, "MiB/s"), ", write ", rate(last(writeB) / 1048576, "MiB/s"))),
      card("Recovery",
        act.degraded_objects || act.misplaced_objects
          ? h("p", {}, `${act.degraded_objects} degraded, ${act.misplaced_objects} misplaced object copies; recovering ${rate((act.recovering_bytes_per_sec || 0) / 1048576, "MiB/s")}`)
          : h("p", {}, "Nothing to recover: every object has all its copies."),
        h("p.muted", {}, `${(c.pgs || {}).total || 0} placement groups`)),
      card("Daemons",
        h("p.big", {}, `${osds.filter((o) => o.up).length} / ${osds.length} OSDs up`),
        h("p", {}, `${(c.mons || []).filter((m) => m.in_quorum).length} / ${(c.mons || []).length} mons in quorum; mgr ${(c.mgr || {}).available ? "active" : "not active"}`))),
    h("div.grid", {},
      chart("Capacity used", [{ name: "raw used", points: samples.map((s) => [s.unix, s.raw_used_bytes]) }], bytes),
      chart("Operations per second", [{ name: "read", points: readO }, { name: "write", points: writeO }], (v) => rate(v, "op/s")),
      chart("Throughput", [{ name: "read", points: readB }, { name: "write", points: writeB }], (v) => bytes(v) + "/s")),
  ];
}

function osdsPage(st) {
  const c = st.ceph || {};
  const daemons = Object.fromEntries((st.daemons || []).map((d) => [d.name, d]));
  const rows = (c.osds || []).map((o) => ({ ...o, __key: "osd." + o.id, daemon: daemons["osd." + o.id] }));
  const hosts = [...new Set(rows.map((o) => o.host || "?"))];
  return hosts.map((host) => card("Host " + host,
    table([
      ["OSD", (o) => "osd." + o.id],
      ["State", (o) => [badge(o.up ? "up" : "down", o.up ? "ok" : "err"), " ", badge(o.in ? "in" : "out", o.in ? "ok" : "warn")]],
      ["Device", (o) => o.backing],
      ["Size", (o) => bytes(o.size_bytes)],
      ["Used", (o) => [bytes(o.used_bytes), " ", bar(o.size_bytes ? o.used_bytes / o.size_bytes : 0)]],
      ["Restarts", (o) => (o.daemon ? o.daemon.restarts : "")],
      ["Process", (o) => (o.daemon ? [o.daemon.state, o.daemon.crash_looping ? badge("crash-looping", "err") : null] : "not ours")],
      ["Last log lines", (o) => (o.daemon && o.daemon.log_tail && o.daemon.log_tail.length ? h("pre", {}, o.daemon.log_tail.join("\n")) : "")],
    ], rows.filter((o) => (o.host || "?") === host), "No OSDs.", "osds")));
}

function poolForm() {
  const form = h("form.inline", { id: "create-pool" },
    h("label", {}, "Name ", h("input", { name: "name", required: true, pattern: "[a-z0-9][a-z0-9._-]*" })),
    h("label", {}, "Copies ", h("input", { name: "size", type: "number", min: 1, max: 7, value: 3 })),
    h("label", {}, "Quota ", h("input", { name: "quota", placeholder: "none, or e.g. 50Gi" })),
    h("button", { type: "submit" }, "Create pool"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const quota = String(f.get("quota") || "").trim();
    const doc = [
      "apiVersion: ceph.rook.io/v1", "kind: CephBlockPool",
      `metadata: {name: ${JSON.stringify(String(f.get("name")))}}`, "spec:", "  failureDomain: osd",
      `  replicated: {size: ${Number(f.get("size"))}}`,
      quota ? `  quotas: {maxSize: ${JSON.stringify(quota)}}` : null,
    ].filter((l) => l !== null).join("\n") + "\n";
    act(() => api("POST", "/v1/resources", doc, "application/yaml"), `Pool ${f.get("name")} created.`);
  });
  return [form];
}

function poolsPage(pools) {
  return [
    card("Pools",
      table([
        ["Pool", (p) => p.name],
        ["Copies", (p) => `${p.size} (min ${p.min_size})`],
        ["PGs", (p) => p.pg_num],
        ["Stored", (p) => bytes(p.stored_bytes)],
        ["Objects", (p) => p.objects],
        ["Room", (p) => bytes(p.max_avail_bytes)],
        ["Quota", (p) => (p.quota_max_bytes ? [bytes(p.quota_max_bytes), " ", bar(p.stored_bytes / p.quota_max_bytes)] : "none")],
        ["Volumes", (p) => (p.volumes === null || p.volumes === undefined ? "" : p.volumes)],
        ["Used for", (p) => (p.applications || []).join(", ")],
      ], pools.map((p) => ({ ...p, __key: p.name })), "No pools yet.", "pools")),
    card("Create a pool", ...poolForm()),
  ];
}

function volumeActions(v) {
  const id = `${enc(v.pool)}/${enc(v.name)}`;
  const resize = h("form.inline", {},
    h("input", { name: "size", placeholder: "new size, e.g. 20Gi", required: true, "aria-label": "new size" }),
    h("button", { type: "submit" }, "Resize"));
  resize.addEventListener("submit", (e) => {
    e.preventDefault();
    const size = new FormData(resize).get("size");
    act(() => api("POST", `/v1/volumes/${id}/resize`, { size }), `${v.pool}/${v.name} is now ${size}.`);
  });
  const snap = h("form.inline", {},
    h("input", { name: "name", placeholder: "snapshot name", required: true, "aria-label": "snapshot name" }),
    h("button", { type: "submit" }, "Snapshot"));
  snap.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = new FormData(snap).get("name");
    act(() => api("POST", `/v1/volumes/${id}/snapshots`, { name }), `Snapshot ${name} made.`);
  });
  const remove = h("button.danger", {
    type: "button",
    onclick: () => {
      if (!confirmDialog(`Remove volume ${v.pool}/${v.name} and its data?`)) return;
      act(() => api("DELETE", `/v1/volumes/${id}`), `${v.pool}/${v.name} removed.`);
    },
  }, "Remove");
  return h("div.actions", {}, resize, snap, remove);
}

function volumeForm(pools) {
  const form = h("form.inline", { id: "create-volume" },
    h("label", {}, "Pool ", h("select", { name: "pool" }, pools.map((p) => h("option", { value: p }, p)))),
    h("label", {}, "Name ", h("input", { name: "name", required: true })),
    h("label", {}, "Size ", h("input", { name: "size", required: true, placeholder: "10Gi" })),
    h("button", { type: "submit" }, "Create volume"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = { pool: f.get("pool"), name: f.get("name"), size: f.get("size") };
    act(() => api("POST", "/v1/volumes", body), `Volume ${body.pool}/${body.name} created.`);
  });
  return [form];
}

function volumesPage(data) {
  const rows = data.volumes.map((v) => ({ ...v, __key: `${v.pool}/${v.name}` }));
  return [
    card(`Volumes (${rows.length})`,
      h("input.filter", { type: "search", placeholder: "Filter by name or claim", "aria-label": "filter",
        oninput: (e) => {
          const q = e.target.value.toLowerCase();
          document.querySelectorAll("#volumes tbody tr").forEach((tr) => { tr.hidden = !tr.textContent.toLowerCase().includes(q); });
        } }),
      table([
        ["Volume", (v) => `${v.pool}/${v.name}`],
        ["Claim", (v) => v.claim || ""],
        ["Size", (v) => bytes(v.size_bytes)],
        ["Used", (v) => bytes(v.used_bytes)],
        ["Snapshots", (v) => (v.snapshots || []).map((s) => s.name).join(", ")],
        ["Clone of", (v) => (v.parent ? `${v.parent.pool || ""}/${v.parent.image || v.parent.name || ""}@${v.parent.snapshot || ""}` : "")],
        ["Mounted", (v) => (v.holders || []).map((x) => `${x.host}:${x.path}${x.read_only ? " (read-only)" : ""}`).join(", ") || "no"],
        ["", (v) => h("details", {}, h("summary", {}, "Actions"), volumeActions(v))],
      ], rows, "No volumes yet.", "volumes")),
    card("Create a volume", ...volumeForm(data.pools)),
  ];
}

function filesystemsPage(st, subvolumes, mounts) {
  const fss = (st.ceph || {}).filesystems || [];
  if (!fss.length) return [card("Filesystems", h("p.muted", {}, "No CephFS filesystem: `rookery apply -f examples/filesystem.yaml` makes one."))];
  return fss.map((fs) => {
    const form = h("form.inline", {},
      h("input", { name: "name", placeholder: "subvolume name", required: true, "aria-label": "subvolume name" }),
      h("input", { name: "size", placeholder: "quota, e.g. 10Gi", required: true, "aria-label": "quota" }),
      h("button", { type: "submit" }, "Create subvolume"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const f = new FormData(form);
      act(() => api("POST", `/v1/filesystems/${enc(fs.name)}/subvolumes`, { name: f.get("name"), size: f.get("size") }), `Subvolume ${f.get("name")} created.`);
    });
    return card("Filesystem " + fs.name,
      h("p", {}, "MDS: ", (fs.mds || []).map((m) => `${m.name} (${m.state})`).join(", ") || "none", fs.standbys && fs.standbys.length ? `; standby: ${fs.standbys.join(", ")}` : ""),
      table([
        ["Subvolume", (s) => s.name],
        ["Claim", (s) => s.claim || ""],
        ["Quota", (s) => (s.quota_bytes ? bytes(s.quota_bytes) : "none")],
        ["Used", (s) => bytes(s.used_bytes)],
        ["Path", (s) => s.path],
      ], (subvolumes[fs.name] || []).map((s) => ({ ...s, __key: s.name })), "No subvolumes yet.", "subvolumes-" + fs.name),
      form,
      h("h3", {}, "Mounted on this host"),
      table([
        ["Path", (m) => m.path],
        ["What", (m) => (m.subvolume ? "subvolume " + m.subvolume : "the whole filesystem") + (m.read_only ? " (read-only)" : "")],
        ["State", (m) => (m.suspended ? badge("unmounted by rookery down", "warn") : badge("mounted", "ok"))],
        ["ceph-fuse pid", (m) => m.pid],
      ], (mounts[fs.name] || []).map((m) => ({ ...m, __key: m.path })), "Not mounted here.", "mounts-" + fs.name));
  });
}

function objectsPage(st, stores) {
  const list = (st.ceph || {}).object_stores || [];
  if (!list.length) return [card("Object stores", h("p.muted", {}, "No object store: `rookery apply -f examples/object-store.yaml` makes one."))];
  return list.map((s) => {
    const data = stores[s.name] || { users: [], buckets: [] };
    return card("Object store " + s.name,
      h("p", {}, "S3 endpoint ", h("code", {}, s.endpoint), " ", badge(s.responding ? "answering" : "not answering", s.responding ? "ok" : "err")),
      h("h3", {}, "Users"),
      table([
        ["User", (u) => u.user],
        ["Access key", (u) => u.access_key || "(being made)"],
        ["Buckets", (u) => u.buckets],
        ["Secret key", (u) => h("button", {
          type: "button",
          onclick: async () => {
            if (!confirmDialog(`Show the secret key of ${u.user}? Anyone who sees it can use the account.`)) return;
            try {
              const d = await get(`/v1/objectstores/${enc(s.name)}/users/${enc(u.user)}?showSecrets=true`);
              document.getElementById("flash").replaceChildren(h("p.secret", {}, `Secret key of ${u.user}: `, h("code", {}, d.secret_key || ""),
                h("button.close", { type: "button", "aria-label": "hide", onclick: () => document.getElementById("flash").replaceChildren() }, "×")));
            } catch (e) { outcome(false, e.message); }
          },
        }, "Show")],
      ], data.users.map((u) => ({ ...u, __key: u.user })), "No users yet.", "users-" + s.name),
      h("h3", {}, "Buckets"),
      table([
        ["Bucket", (b) => b.bucket],
        ["Owner", (b) => b.owner],
        ["Objects", (b) => b.objects],
        ["Size", (b) => bytes(b.bytes)],
      ], data.buckets.map((b) => ({ ...b, __key: b.bucket })), "No buckets yet.", "buckets-" + s.name));
  });
}

function daemonsPage(st) {
  const rows = (st.daemons || []).map((d) => ({ ...d, __key: d.name }));
  const sup = st.supervisor || {};
  return [
    card("Supervisor", h("p", {}, `pid ${sup.pid}, rookery ${sup.version}, up ${duration(sup.uptime_secs)}, ${bytes(sup.rss_bytes)} resident`)),
    card("Daemons",
      table([
        ["Daemon", (d) => d.name],
        ["State", (d) => [badge(d.state, d.state === "running" ? "ok" : "err"), d.crash_looping ? [" ", badge("crash-looping", "err")] : null]],
        ["pid", (d) => d.pid || ""],
        ["Up for", (d) => duration(d.uptime_secs)],
        ["Restarts", (d) => d.restarts],
        ["Last exit", (d) => d.last_exit || ""],
        ["Last log lines", (d) => (d.log_tail && d.log_tail.length ? h("pre", {}, d.log_tail.join("\n")) : "")],
      ], rows, "No daemons.", "daemons")),
  ];
}

function eventsPage(st, all) {
  const r = st.reconcile || {};
  const events = [...all].reverse();
  return [
    card("What the orchestrator is doing",
      h("p", {}, r.converged ? "Converged: the cluster is as the spec asks." : "Working towards the spec."),
      (r.pending || []).length ? h("ul", {}, r.pending.map((p) => h("li", {}, p))) : null,
      r.waiting ? h("p", {}, "Waiting: " + r.waiting) : null,
      (r.notices || []).length ? h("ul.notices", {}, r.notices.map((n) => h("li", {}, n))) : null),
    card("Timeline",
      table([
        ["When", (e) => ago(e.unix)],
        ["What", (e) => e.action || ""],
        ["Why and how", (e) => e.message],
      ], events, "Nothing done since the supervisor started.", "events")),
  ];
}

// ---- routing and refresh ---------------------------------------------------------------------------

const pages = {
  overview: async (st) => overview(st, state.history || (state.history = await get("/v1/history"))),
  osds: async (st) => osdsPage(st),
  pools: async () => poolsPage(await get("/v1/pools")),
  volumes: async () => {
    const pools = (await get("/v1/pools")).filter((p) => (p.applications || []).includes("rbd")).map((p) => p.name);
    const lists = await Promise.all(pools.map((p) => get("/v1/volumes?pool=" + enc(p))));
    return volumesPage({ pools, volumes: lists.flat() });
  },
  filesystems: async (st) => {
    const subvolumes = {}, mounts = {};
    for (const fs of (st.ceph || {}).filesystems || []) {
      [subvolumes[fs.name], mounts[fs.name]] = await Promise.all([
        get(`/v1/filesystems/${enc(fs.name)}/subvolumes`),
        get(`/v1/filesystems/${enc(fs.name)}/mounts`),
      ]);
    }
    return filesystemsPage(st, subvolumes, mounts);
  },
  objects: async (st) => {
    const stores = {};
    for (const s of (st.ceph || {}).object_stores || []) {
      const [users, buckets] = await Promise.all([
        get(`/v1/objectstores/${enc(s.name)}/users`),
        get(`/v1/objectstores/${enc(s.name)}/buckets`),
      ]);
      stores[s.name] = { users, buckets };
    }
    return objectsPage(st, stores);
  },
  daemons: async (st) => daemonsPage(st),
  events: async (st) => eventsPage(st, await get("/v1/events")),
};

function route() {
  const name = (location.hash.replace(/^#\//, "") || "overview").split("/")[0];
  return pages[name] ? name : "overview";
}

// Keeps what a person is typing: a page is redrawn only when no form field has focus or holds text.
function editing() {
  const a = document.activeElement;
  if (a && ["INPUT", "SELECT", "TEXTAREA"].includes(a.tagName) && a.type !== "search") return true;
  return [...document.querySelectorAll("#page form input")].some((i) => i.value && i.type !== "number")
    || [...document.querySelectorAll("#page details")].some((d) => d.open);
}

async function refresh(force) {
  if (state.busy && !force) return;
  const name = route();
  try {
    const [st, hist] = await Promise.all([get("/v1/status"), get("/v1/history")]);
    state.status = st;
    state.history = hist;
    document.getElementById("cluster").textContent = st.name || "";
    const c = st.ceph || {};
    const hb = document.getElementById("health");
    hb.textContent = c.health || "unreachable";
    hb.className = "badge " + healthKind(c.health);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    if (!force && editing()) return;
    const content = await pages[name](st);
    if (route() !== name) return;
    const filter = document.querySelector("#page .filter");
    const keep = filter ? filter.value : "";
    document.getElementById("page").replaceChildren(...[].concat(content));
    const nf = document.querySelector("#page .filter");
    if (nf && keep) { nf.value = keep; nf.dispatchEvent(new Event("input")); }
    document.getElementById("page").dataset.page = name;
  } catch (e) {
    if (e.status !== 401) {
      document.getElementById("updated").textContent = "not updated: " + e.message;
    }
  }
}

function highlightNav() {
  const name = route();
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("current", a.getAttribute("href") === "#/" + name));
}

window.addEventListener("hashchange", () => { highlightNav(); document.getElementById("flash").replaceChildren(); document.getElementById("page").replaceChildren(h("p.muted", {}, "Loading…")); refresh(true); });
document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": CSRF }, credentials: "same-origin" });
  window.location.assign("/login");
});
highlightNav();
refresh(true);
setInterval(() => refresh(false), REFRESH_MS);
