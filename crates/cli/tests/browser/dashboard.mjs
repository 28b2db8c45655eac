// Drives Debian's chromium through the rookery dashboard of a real cluster (crates/cli/tests/dashboard.rs
// starts the cluster and runs this): login (a wrong key refused), every page checked against what the
// control API answers, a volume made in the UI, a refused action that changes nothing, a live update,
// the claim of a CSI-made volume, secrets only on request; a screenshot of every page.
//
// Environment: DASHBOARD_URL, DASHBOARD_KEY, SCREENSHOTS (a folder), CSI_VOLUME (pool/name), CSI_CLAIM
// (namespace/name). Prints one JSON line of findings for the Rust test; exits 1 on the first failure.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const url = process.env.DASHBOARD_URL.replace(/\/$/, "");
const key = process.env.DASHBOARD_KEY;
const shots = process.env.SCREENSHOTS;
const csiVolume = process.env.CSI_VOLUME;
const csiClaim = process.env.CSI_CLAIM;
mkdirSync(shots, { recursive: true });

function check(ok, what) {
  if (!ok) throw new Error("dashboard check failed: " + what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // The tests run as root, where chromium's sandbox cannot start.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const findings = { pages: {} };
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error" && !/401|403|422|409|400/.test(m.text())) problems.push("console: " + m.text()); });
  page.on("dialog", (d) => d.accept());

  // Not logged in: the app sends the browser to the login page.
  await page.goto(url + "/");
  check(page.url().endsWith("/login"), "an anonymous visit lands on /login, not " + page.url());
  await page.fill("#key", "not-the-key");
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
  await page.waitForSelector("#error:not(:empty)");
  const refusedText = await page.textContent("#error");
  check(/not this cluster's/.test(refusedText), "a wrong key is refused with a reason: " + refusedText);
  check(page.url().endsWith("/login"), "a wrong key stays on /login");
  await page.screenshot({ path: `${shots}/login-refused.png` });

  await page.fill("#key", key);
  await Promise.all([page.waitForURL(url + "/"), page.click("button[type=submit]")]);

  const api = (path) => page.evaluate(async (p) => {
    const r = await fetch("/api" + p);
    return { status: r.status, body: await r.json() };
  }, path);
  const apiPost = (path, body) => page.evaluate(async ([p, b]) => {
    const csrf = document.querySelector('meta[name="csrf"]').content;
    const r = await fetch("/api" + p, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(b) });
    return { status: r.status, body: await r.json() };
  }, [path, body]);
  const show = async (name) => {
    await page.goto(`${url}/#/${name}`);
    await page.waitForSelector(`#page[data-page="${name}"]`, { timeout: 30000 });
  };
  const text = () => page.textContent("#page");
  const rowKeys = (table) => page.$$eval(`${table} tbody tr`, (rows) => rows.map((r) => r.dataset.key));
  const shot = async (name) => {
    await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
    findings.pages[name] = true;
  };

  const status = (await api("/v1/status")).body;

  // Overview: the health Ceph reports, the capacity, the charts.
  await show("overview");
  check((await page.textContent("#health")) === status.ceph.health, "the header shows Ceph's health");
  const ov = await text();
  check(ov.includes(status.ceph.health), "the overview names the health");
  check(ov.includes("Capacity") && ov.includes("used of"), "the overview shows capacity");
  check((await page.$$("figure.chart")).length === 3, "three charts");
  await page.waitForSelector("figure.chart svg polyline", { state: "attached", timeout: 30000 });
  await shot("overview");

  // Hosts and OSDs: every OSD of the status, with its state.
  await show("osds");
  const osdRows = await rowKeys("#osds");
  for (const o of status.ceph.osds) check(osdRows.includes("osd." + o.id), `osd.${o.id} listed`);
  check((await text()).includes(status.ceph.osds[0].backing), "an OSD's device shown");
  await shot("osds");

  // Pools: every pool the API lists.
  await show("pools");
  const pools = (await api("/v1/pools")).body;
  const poolRows = await rowKeys("#pools");
  for (const p of pools) check(poolRows.includes(p.name), `pool ${p.name} listed`);
  await shot("pools");

  // Volumes: every volume, and the CSI-made one with its claim.
  await show("volumes");
  const rbdPools = pools.filter((p) => (p.applications || []).includes("rbd")).map((p) => p.name);
  let apiVolumes = [];
  for (const p of rbdPools) apiVolumes = apiVolumes.concat((await api("/v1/volumes?pool=" + encodeURIComponent(p))).body);
  const volRows = await rowKeys("#volumes");
  for (const v of apiVolumes) check(volRows.includes(`${v.pool}/${v.name}`), `volume ${v.pool}/${v.name} listed`);
  const csiRow = await page.textContent(`#volumes tr[data-key="${csiVolume}"]`);
  check(csiRow && csiRow.includes(csiClaim), `the CSI volume ${csiVolume} shows its claim ${csiClaim}: ${csiRow}`);
  await shot("volumes");

  // A volume made in the UI.
  await page.fill('#create-volume input[name="name"]', "made-in-ui");
  await page.fill('#create-volume input[name="size"]', "64Mi");
  await page.click('#create-volume button[type="submit"]');
  await page.waitForSelector("#flash p.done", { timeout: 60000 });
  await page.waitForSelector('#volumes tr[data-key="replicapool/made-in-ui"]', { timeout: 30000 });
  findings.made = "replicapool/made-in-ui";

  // A refused action shows the API's reason and changes nothing.
  const before = (await api("/v1/volumes?pool=replicapool")).body.map((v) => v.name).sort();
  await page.fill('#create-volume input[name="name"]', "too-big");
  await page.fill('#create-volume input[name="size"]', "900Ti");
  await page.click('#create-volume button[type="submit"]');
  await page.waitForSelector("#flash p.refused", { timeout: 60000 });
  const refusal = await page.textContent("#flash p.refused");
  const direct = await apiPost("/v1/volumes", { pool: "replicapool", name: "too-big", size: "900Ti" });
  check(direct.status >= 400 && refusal.includes(direct.body.message), `the refusal shows the API's reason: ${refusal} / ${direct.body.message}`);
  const after = (await api("/v1/volumes?pool=replicapool")).body.map((v) => v.name).sort();
  check(JSON.stringify(before) === JSON.stringify(after), "a refused create changes nothing");
  findings.refusal = refusal;
  await page.screenshot({ path: `${shots}/volumes-refused.png`, fullPage: true });

  // Live: a volume made elsewhere appears without a reload.
  await page.fill('#create-volume input[name="name"]', "");
  await page.fill('#create-volume input[name="size"]', "");
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  const made = await apiPost("/v1/volumes", { pool: "replicapool", name: "made-elsewhere", size: "32Mi" });
  check(made.status >= 200 && made.status < 300, "a volume made through the API: " + JSON.stringify(made.body));
  await page.waitForSelector('#volumes tr[data-key="replicapool/made-elsewhere"]', { timeout: 20000 });

  // Filesystems: each filesystem with its subvolumes.
  await show("filesystems");
  for (const fs of status.ceph.filesystems) {
    check((await text()).includes("Filesystem " + fs.name), `filesystem ${fs.name} shown`);
    const subs = (await api(`/v1/filesystems/${fs.name}/subvolumes`)).body;
    const rows = await rowKeys(`#subvolumes-${fs.name}`).catch(() => []);
    for (const s of subs) check(rows.includes(s.name), `subvolume ${s.name} listed`);
    const mounts = (await api(`/v1/filesystems/${fs.name}/mounts`)).body;
    const mountRows = await rowKeys(`#mounts-${fs.name}`).catch(() => []);
    for (const m of mounts) check(mountRows.includes(m.path), `mount ${m.path} listed`);
    findings.mounts = (findings.mounts || 0) + mounts.length;
  }
  await shot("filesystems");

  // Object stores: users without their secrets until asked, behind a confirm.
  await show("objects");
  for (const s of status.ceph.object_stores) {
    check((await text()).includes(s.endpoint), `store ${s.name} endpoint shown`);
    const users = (await api(`/v1/objectstores/${s.name}/users`)).body;
    for (const u of users) {
      const detail = (await api(`/v1/objectstores/${s.name}/users/${u.user}?showSecrets=true`)).body;
      check(detail.secret_key && !(await page.content()).includes(detail.secret_key), `no secret of ${u.user} on the page`);
      findings.secretChecked = true;
    }
    const buckets = (await api(`/v1/objectstores/${s.name}/buckets`)).body;
    const rows = await rowKeys(`#buckets-${s.name}`).catch(() => []);
    for (const b of buckets) check(rows.includes(b.bucket), `bucket ${b.bucket} listed`);
  }
  await shot("objects");
  const showButton = await page.$("#page table button");
  if (showButton) {
    await showButton.click();
    await page.waitForSelector("p.secret code");
    findings.secretShownOnRequest = true;
  }

  // Daemons: every daemon the supervisor runs.
  await show("daemons");
  const daemonRows = await rowKeys("#daemons");
  for (const d of status.daemons) check(daemonRows.includes(d.name), `daemon ${d.name} listed`);
  await shot("daemons");

  // Events: the orchestrator's timeline.
  await show("events");
  const events = (await api("/v1/events")).body;
  check(events.length > 0, "the orchestrator has done things");
  const shown = (await page.$$("#events tbody tr")).length;
  check(shown >= events.length, `every event listed (${shown} of ${events.length})`);
  check((await text()).includes(events[events.length - 1].message), "the latest event shown");
  check((await text()).includes(events[0].message), "the oldest event shown");
  findings.events = events.length;
  await shot("events");

  check(problems.length === 0, "no script errors: " + problems.join("; "));

  // Logging out ends the session: the API answers 401 again.
  await page.click("#logout");
  await page.waitForURL(url + "/login");
  const gone = await page.evaluate(async () => (await fetch("/api/v1/status")).status);
  check(gone === 401, "after logging out the API answers 401, not " + gone);
  findings.ok = true;
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
