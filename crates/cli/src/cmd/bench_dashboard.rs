//! `rookery bench dashboard`: the web dashboard's volumes page with N volumes. The volumes are made
//! through the CSI driver (as claims make them); then what the page asks the server for (the page, its
//! script, the pools and each block pool's volumes) is timed through the dashboard, next to the same API
//! reads on the control socket (the API's own cost: the base), with the supervisor's memory before and
//! after the page loads. The run logs in with a key of its own (dashboard/keys.d/, removed at the end, so
//! the person's key and sessions are untouched); the volumes are deleted at the end.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rookery_orchestrator::report::ClusterReport;
use rookery_orchestrator::{ClusterState, Layout};
use serde_json::{json, Value};

use crate::api::Client;
use crate::{CmdResult, Failure, Output};

/// Page loads timed (after one to warm up).
const LOADS: usize = 20;
/// The targets of the issue: server time of the volumes page, and the dashboard's memory.
const TARGET_MS: f64 = 300.0;
const TARGET_MIB: f64 = 20.0;

/// The run's own key file, removed when dropped (also after a failure).
struct RunKey(PathBuf);

impl Drop for RunKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn run(layout: &Layout, count: usize, output: Output) -> CmdResult {
    let state = ClusterState::load(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .ok_or_else(|| {
            Failure::bad_input("no cluster here; run `rookery up --dashboard-port 0` first")
        })?;
    let client = Client::new(layout)?;
    let report: ClusterReport = client
        .get("/v1/status")
        .map_err(|r| r.word(crate::api::plain))?;
    let address = report
        .supervisor
        .as_ref()
        .and_then(|s| s.dashboard_address.clone())
        .ok_or_else(|| {
            Failure::bad_input(
                "the supervisor serves no dashboard: start it with `rookery up --dashboard-port 0` (after `rookery down` if it runs without one)",
            )
        })?;
    let figures =
        super::bench_scale::with_volumes(layout, &state, "bench-dashboard", count, |_| {
            measure(layout, &client, &address, count)
        })?;
    let f = |k: &str| figures[k].as_f64().unwrap_or(0.0);
    match output {
        Output::Json => println!("{figures}"),
        Output::Text => {
            println!("dashboard: the volumes page with {count} volumes, next to the same reads on the control socket");
            println!(
                "  API reads on the socket (base)   {:.1} ms median",
                f("apiMedianMs")
            );
            println!(
                "  volumes page through dashboard   {:.1} ms median, {:.1} ms slowest of {LOADS}   {:.2}x the base (target: <= {TARGET_MS} ms)",
                f("pageMedianMs"),
                f("pageMaxMs"),
                f("pageMedianMs") / f("apiMedianMs").max(1e-9)
            );
            println!(
                "  supervisor memory                {:.1} MiB before, {:.1} MiB after: +{:.1} MiB (target: <= {TARGET_MIB} MiB)",
                f("supervisorMibBefore"),
                f("supervisorMibAfter"),
                f("supervisorMibAfter") - f("supervisorMibBefore")
            );
            println!("  page data                        {:.0} KiB", f("pageKib"));
        }
    }
    Ok(())
}

fn measure(layout: &Layout, client: &Client, address: &str, count: usize) -> Result<Value> {
    let key_file = crate::dashboard::key_file(layout);
    let (key, file) = crate::dashboard::access::add_extra_key(
        &key_file,
        &format!("bench-{}", std::process::id()),
    )
    .map_err(|e| anyhow!(e))?;
    let _key = RunKey(file);
    let cookie = login(address, &key)?;
    let pools: Vec<Value> = client
        .get("/v1/pools")
        .map_err(|r| anyhow!("{}", r.word(crate::api::plain).message))?;
    let rbd: Vec<String> = pools
        .iter()
        .filter(|p| {
            p["applications"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "rbd"))
        })
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    let mut reads = vec!["/v1/pools".to_string()];
    reads.extend(
        rbd.iter()
            .map(|p| format!("/v1/volumes?pool={}", crate::api::enc(p))),
    );
    let supervisor_mib = || super::bench_scale::supervisor_rss(layout) as f64 / 1048576.0;

    let before = supervisor_mib();
    let mut page = Vec::new();
    let mut kib = 0.0;
    for round in 0..=LOADS {
        let started = Instant::now();
        let mut bytes = 0usize;
        for path in ["/", "/assets/app.js"] {
            bytes += get(address, path, &cookie)?.len();
        }
        let mut listed = 0;
        for path in &reads {
            let body = get(address, &format!("/api{path}"), &cookie)?;
            bytes += body.len();
            let v: Value = serde_json::from_slice(&body).context("a dashboard API answer")?;
            if path.starts_with("/v1/volumes") {
                listed += v.as_array().map_or(0, Vec::len);
            }
        }
        if listed < count {
            bail!("the volumes page listed {listed} volumes, fewer than the {count} made");
        }
        if round > 0 {
            page.push(started.elapsed());
        }
        kib = bytes as f64 / 1024.0;
    }
    let after = supervisor_mib();
    let mut api = Vec::new();
    for round in 0..=LOADS {
        let started = Instant::now();
        for path in &reads {
            let _: Value = client
                .get(path)
                .map_err(|r| anyhow!("{}", r.word(crate::api::plain).message))?;
        }
        if round > 0 {
            api.push(started.elapsed());
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    page.sort();
    api.sort();
    Ok(json!({
        "volumes": count,
        "loads": LOADS,
        "pageMedianMs": ms(page[page.len() / 2]),
        "pageMaxMs": ms(page[page.len() - 1]),
        "apiMedianMs": ms(api[api.len() / 2]),
        "pageKib": kib,
        "supervisorMibBefore": before,
        "supervisorMibAfter": after,
        "targetPageMs": TARGET_MS,
        "targetDashboardMib": TARGET_MIB,
    }))
}

/// One HTTP/1.0 exchange with the dashboard on 127.0.0.1: status code, head and body.
fn exchange(address: &str, request: &str) -> Result<(u16, String, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect(address)
        .with_context(|| format!("connecting to the dashboard at {address}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(request.as_bytes())?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("the dashboard answered no HTTP"))?;
    let head = String::from_utf8_lossy(&reply[..split]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("the dashboard answered no status: {head}"))?;
    Ok((code, head, reply[split + 4..].to_vec()))
}

fn login(address: &str, key: &str) -> Result<String> {
    let body = format!("key={key}");
    let (code, head, _) = exchange(
        address,
        &format!(
            "POST /login HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )?;
    if code != 303 {
        bail!("the dashboard refused the run's own key (HTTP {code})");
    }
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().map(String::from))?
        })
        .ok_or_else(|| anyhow!("the dashboard set no session cookie"))
}

fn get(address: &str, path: &str, cookie: &str) -> Result<Vec<u8>> {
    let (code, _, body) = exchange(
        address,
        &format!("GET {path} HTTP/1.0\r\nHost: {address}\r\nCookie: {cookie}\r\n\r\n"),
    )?;
    if code != 200 {
        bail!(
            "GET {path} through the dashboard answered {code}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}
