//! `rookery bench objects`: S3 requests to the gateway rookery runs for a store, next to the same
//! requests sent straight to a hand-tuned radosgw that the run starts on the same zone (same pools,
//! same user, same bucket), so the only difference is the gateway rookery deploys.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rookery_ceph::commands::auth;
use rookery_ceph::Rados;
use rookery_objects::s3::S3;
use rookery_orchestrator::Layout;
use rookery_platform::local::THIS_HOST_ADDRESS;
use serde_json::{json, Value};

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct ObjectsBenchArgs {
    /// The object store (CephObjectStore) whose gateway is measured; the only one when left out.
    #[arg(long)]
    pub store: Option<String>,
    /// Requests of 4 KiB per gateway and direction (a tenth as many of 1 MiB, three of 64 MiB).
    #[arg(long, default_value_t = 300)]
    pub count: usize,
    /// Keys listed (ListObjectsV2, every page) by each gateway.
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
}

/// What the reference gateway runs with besides its zone, address and files: request logging off,
/// the background threads (garbage collection, lifecycle, resharding) left to rookery's gateway, and
/// `tcp_nodelay` so small replies are not held back by Nagle's algorithm.
const TUNED: &[(&str, &str)] = &[
    ("rgw_thread_pool_size", "64"),
    ("rgw_max_concurrent_requests", "1024"),
    ("debug_rgw", "0/0"),
    ("debug_ms", "0/0"),
    ("debug_objecter", "0/0"),
    ("debug_rados", "0/0"),
    ("rgw_enable_ops_log", "false"),
    ("rgw_enable_usage_log", "false"),
    ("rgw_enable_gc_threads", "false"),
    ("rgw_enable_lc_threads", "false"),
    ("rgw_dynamic_resharding", "false"),
    ("rgw_cache_enabled", "true"),
    ("rgw_cache_lru_size", "100000"),
];

/// Threads that fill and empty the bucket for the listing.
const FILLERS: usize = 8;

/// The request sizes measured: name, bytes, requests per gateway as a share of `--count`.
fn sizes(count: usize) -> [(&'static str, usize, usize); 3] {
    [
        ("4k", 4 << 10, count.max(1)),
        ("1m", 1 << 20, (count / 10).max(3)),
        ("64m", 64 << 20, 3),
    ]
}

/// A radosgw started for the run, stopped and its cephx user removed on drop.
struct ReferenceGateway<'a> {
    rados: &'a Rados,
    entity: String,
    child: Option<Child>,
    endpoint: String,
    /// Its keyring, log and sockets.
    dir: tempfile::TempDir,
}

impl<'a> ReferenceGateway<'a> {
    fn start(rados: &'a Rados, conf: &Path, store: &str) -> Result<ReferenceGateway<'a>> {
        let exe = rookery_ceph::tools::find_program("radosgw")
            .ok_or_else(|| anyhow!("radosgw is not installed; `apt-get install radosgw`"))?;
        let dir = tempfile::Builder::new()
            .prefix("rookery-bench-rgw-")
            .tempdir()?;
        let port = std::net::TcpListener::bind((THIS_HOST_ADDRESS, 0))?
            .local_addr()?
            .port();
        let entity = format!("client.rookery-bench-rgw-{}", std::process::id());
        // From here on the user is removed on drop, whatever fails.
        let key = auth::get_or_create(
            rados,
            &entity,
            &[
                ("mon", "allow rw"),
                ("osd", "allow rwx"),
                ("mgr", "allow rw"),
            ],
        )?;
        let mut gw = ReferenceGateway {
            rados,
            entity,
            child: None,
            endpoint: rookery_orchestrator::objectstore::endpoint(THIS_HOST_ADDRESS, port),
            dir,
        };
        let keyring = gw.dir.path().join("keyring");
        rookery_ceph::conf::write_atomic(
            &keyring,
            format!("[{}]\n\tkey = {key}\n", gw.entity).as_bytes(),
            0o600,
        )?;
        let files = gw.dir.path().to_path_buf();
        let path = |name: &str| files.join(name).display().to_string();
        let mut args: Vec<String> = vec![
            "-f".into(),
            "--conf".into(),
            conf.display().to_string(),
            "-n".into(),
            gw.entity.clone(),
            "--keyring".into(),
            keyring.display().to_string(),
            "--rgw_frontends".into(),
            format!("beast endpoint={} tcp_nodelay=1", gw.endpoint),
            "--admin_socket".into(),
            path("asok"),
            "--log_file".into(),
            path("log"),
            "--run_dir".into(),
            path("run"),
        ];
        for k in ["rgw_realm", "rgw_zonegroup", "rgw_zone"] {
            args.extend([format!("--{k}"), store.to_string()]);
        }
        for (k, v) in TUNED {
            args.extend([format!("--{k}"), v.to_string()]);
        }
        let child = Command::new(exe)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the reference radosgw")?;
        gw.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        // Beast listens once the gateway has loaded its zone.
        while std::net::TcpStream::connect((THIS_HOST_ADDRESS, port)).is_err() {
            if let Some(status) = gw.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!(
                    "the reference radosgw stopped ({status}); its log is {}",
                    path("log")
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the reference radosgw did not answer on {} within 60 s",
                    gw.endpoint
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(gw)
    }
}

impl Drop for ReferenceGateway<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = auth::rm(self.rados, &self.entity);
    }
}

/// Nearest-rank percentile of `v` in milliseconds.
fn percentile(v: &[Duration], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1].as_secs_f64() * 1000.0
}

fn figures(ours: &[Duration], tuned: &[Duration]) -> Value {
    let (o50, t50) = (percentile(ours, 50.0), percentile(tuned, 50.0));
    json!({
        "ours": {"p50": o50, "p99": percentile(ours, 99.0)},
        "tuned": {"p50": t50, "p99": percentile(tuned, 99.0)},
        "ratio_p50": o50 / t50.max(1e-9),
        "requests": ours.len(),
    })
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let t = Instant::now();
    let v = f()?;
    Ok((v, t.elapsed()))
}

/// PUTs and GETs of each size and a listing, through both gateways in turn.
fn measure(ours: &S3, tuned: &S3, bucket: &str, count: usize, keys: usize) -> Result<Value> {
    let mut report = serde_json::Map::new();
    // Warm both: the first requests load the user and bucket into the gateway's cache.
    for (side, s3) in [("ours", ours), ("tuned", tuned)] {
        for i in 0..20 {
            let key = format!("warm-{side}-{i}");
            s3.put(bucket, &key, &super::smoke::content(i, 4096))?;
            s3.get(bucket, &key)?;
            s3.delete(bucket, &key)?;
        }
    }
    for (name, len, n) in sizes(count) {
        let (mut put, mut get) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        for i in 0..n {
            let data = super::smoke::content(i, len);
            // Who goes first alternates, so neither gateway always meets a warmer cluster.
            let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let s3 = [ours, tuned][side];
                let key = format!("{name}-{side}-{i}");
                put[side].push(timed(|| Ok(s3.put(bucket, &key, &data)?))?.1);
                let (got, took) = timed(|| Ok(s3.get(bucket, &key)?))?;
                if got != data {
                    bail!("{key} read back different from what was written");
                }
                get[side].push(took);
                s3.delete(bucket, &key)?;
            }
        }
        report.insert(format!("put_{name}_ms"), figures(&put[0], &put[1]));
        report.insert(format!("get_{name}_ms"), figures(&get[0], &get[1]));
    }
    // Every object of the PUTs and GETs is gone by now: the bucket holds just these keys.
    super::bench::parallel(FILLERS, keys, |i| {
        ours.put(bucket, &format!("list/{i:06}"), b"")
    })?;
    let mut list: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..3 {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (listed, took) = timed(|| Ok([ours, tuned][side].list(bucket)?))?;
            if listed.len() != keys {
                bail!("a listing gave {} keys of {keys}", listed.len());
            }
            list[side].push(took);
        }
    }
    report.insert(format!("list_{keys}_ms"), figures(&list[0], &list[1]));
    report.insert("list_keys".into(), json!(keys));
    Ok(Value::Object(report))
}

pub fn run(layout: &Layout, args: &ObjectsBenchArgs, output: Output) -> CmdResult {
    let res = super::resources::saved_resources(layout)?;
    let gateway = super::object::pick_store(&res, &args.store)?;
    let store = gateway.name.clone();
    let creds = gateway
        .admin_credentials(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let rados = super::connect(layout)?;
    let reference = ReferenceGateway::start(&rados, &layout.conf(), &store)?;
    let ours = S3::new(
        rookery_orchestrator::objectstore::endpoint(THIS_HOST_ADDRESS, gateway.port),
        creds.clone(),
    );
    let tuned = S3::new(reference.endpoint.clone(), creds);
    let bucket = format!("rookery-bench-{}", std::process::id());
    ours.create_bucket(&bucket)
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let measured = measure(&ours, &tuned, &bucket, args.count, args.keys);
    let emptied = super::bench::parallel(FILLERS, args.keys, |i| {
        match ours.delete(&bucket, &format!("list/{i:06}")) {
            Err(e) if e.status() != Some(404) => Err(e),
            _ => Ok(()),
        }
    });
    let removed = ours.delete_bucket(&bucket);
    drop(reference);
    let measured = measured?;
    emptied?;
    removed.map_err(|e| Failure::from(anyhow!(e)))?;
    let report = json!({"bench": "objects", "store": store, "figures": measured});
    match output {
        Output::Json => println!("{report}"),
        Output::Text => print_text(&store, &measured, args.keys),
    }
    Ok(())
}

fn print_text(store: &str, figures: &Value, keys: usize) {
    println!("objects: S3 through store {store}'s gateway next to a hand-tuned radosgw on the same zone (one request at a time, ms)");
    println!(
        "{:<18} {:>9} {:>9} {:>11} {:>11} {:>8}",
        "request", "ours p50", "ours p99", "tuned p50", "tuned p99", "ratio"
    );
    let mut rows: Vec<(String, String)> = Vec::new();
    for (name, _, _) in sizes(1) {
        for verb in ["put", "get"] {
            rows.push((
                format!("{} {}", verb.to_uppercase(), name.to_uppercase()),
                format!("{verb}_{name}_ms"),
            ));
        }
    }
    rows.push((format!("LIST {keys} keys"), format!("list_{keys}_ms")));
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    for (label, key) in rows {
        let v = &figures[&key];
        println!(
            "{label:<18} {:>9.2} {:>9.2} {:>11.2} {:>11.2} {:>7.2}x",
            f(&v["ours"]["p50"]),
            f(&v["ours"]["p99"]),
            f(&v["tuned"]["p50"]),
            f(&v["tuned"]["p99"]),
            f(&v["ratio_p50"])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v[..3], 99.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
