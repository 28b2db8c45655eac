//! `rookery apply -f`, `rookery delete -f` and `rookery get`: Rook resources on a running cluster.
//!
//! The cluster's saved spec (`spec.yaml`) is the set of resources; apply and delete edit that set, and the
//! supervisor reconciles to it. Deleting a pool also removes it from Ceph, refused while volumes live in it.

use rookery_orchestrator::teardown::{self, Blocker, Teardown};
use rookery_platform::local::{LocalPlatform, THIS_HOST_ADDRESS};
use rookery_platform::Platform;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use rookery_ceph::commands::{cluster, osd};
use rookery_orchestrator::report::ClusterReport;
use rookery_orchestrator::Layout;
use serde::Serialize;
use serde_json::json;
use serde_yaml::Value;

use crate::api::{self, CallError};
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct FileArgs {
    /// A file of ceph.rook.io/v1 resources (several may be separated by `---`).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
}

#[derive(Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// Also delete the buckets (and their objects) of a deleted object store or user.
    #[arg(long)]
    pub yes_delete_buckets: bool,
}

#[derive(Args)]
pub struct GetArgs {
    pub kind: Kind,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Pools with copies, usage, quotas and volume count.
    Pools,
}

/// (kind, metadata.name) of a YAML document.
fn key(doc: &Value) -> (String, String) {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    (
        s(doc.get("kind")),
        s(doc.get("metadata").and_then(|m| m.get("name"))),
    )
}

fn documents(text: &str) -> Result<Vec<Value>, Failure> {
    let mut out = Vec::new();
    for d in serde_yaml::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(d)
            .map_err(|e| Failure::bad_input(format!("not YAML: {e}")))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn render(docs: &[Value]) -> Result<String, Failure> {
    let parts: Result<Vec<String>, _> = docs.iter().map(serde_yaml::to_string).collect();
    Ok(parts.map_err(|e| Failure::from(anyhow!(e)))?.join("---\n"))
}

fn read_file(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", file.display())))
}

/// The spec's documents as they are saved now.
fn saved_docs(layout: &Layout) -> Result<Vec<Value>, Failure> {
    let saved = std::fs::read_to_string(layout.spec()).map_err(|_| {
        Failure::bad_input(format!(
            "{} holds no cluster; run `rookery up` first",
            layout.root.display()
        ))
    })?;
    documents(&saved)
}

/// The saved resources, validated.
pub fn saved_resources(layout: &Layout) -> Result<rookery_spec::Resources, Failure> {
    let text = render(&saved_docs(layout)?)?;
    super::load_spec_text(&text, "the cluster's spec", true)
}

/// Validates `text` (from `origin`) and the cluster's spec with it applied (or removed), returning the
/// new spec text and the documents of `text`.
fn edited_spec(
    layout: &Layout,
    text: &str,
    origin: &str,
    remove: bool,
) -> Result<(String, Vec<Value>), Failure> {
    let given = super::load_spec_text(text, origin, false)?;
    drop(given);
    let mut docs = saved_docs(layout)?;
    let new = documents(text)?;
    for doc in &new {
        let k = key(doc);
        if k.0 == "CephCluster" {
            let current = docs.iter().find(|d| key(d).0 == "CephCluster").map(key);
            if remove {
                return Err(Failure::bad_input(
                    "deleting the CephCluster destroys all its data; that is `rookery down --purge --yes-really-destroy-data`",
                ));
            }
            if current.as_ref().is_some_and(|c| c.1 != k.1) {
                return Err(Failure::bad_input(format!(
                    "{origin} describes cluster {:?}, but this data dir holds {:?}; use that cluster's --data-dir",
                    k.1,
                    current.map(|c| c.1).unwrap_or_default()
                )));
            }
        }
        match docs.iter().position(|d| key(d) == k) {
            Some(i) if remove => {
                docs.remove(i);
            }
            Some(i) => docs[i] = doc.clone(),
            None if remove => {
                return Err(Failure::bad_input(format!(
                    "there is no {} named {:?} to delete",
                    k.0, k.1
                )));
            }
            None => docs.push(doc.clone()),
        }
    }
    let merged = render(&docs)?;
    super::load_spec_text(&merged, "the cluster's spec with this change", true)?;
    Ok((merged, new))
}

/// Waits until the supervisor reconciled to `text` and has nothing left to do; returns what it reports.
fn wait_reconciled(
    layout: &Layout,
    text: &str,
    limit: Duration,
) -> Result<Option<ClusterReport>, Failure> {
    let rt = crate::runtime()?;
    let digest = rookery_orchestrator::spec_digest(text);
    let deadline = Instant::now() + limit;
    loop {
        match rt.block_on(api::call::<ClusterReport>(
            &layout.socket(),
            "GET",
            api::STATUS,
            Duration::from_secs(30),
        )) {
            Ok(r) => {
                let info = r.reconcile.clone().unwrap_or_default();
                if info.spec_digest == digest && (info.converged || !info.blocked.is_empty()) {
                    return Ok(Some(r));
                }
                if Instant::now() > deadline {
                    return Err(Failure::from(anyhow!(
                        "the change is saved but not reconciled after {} s: {}",
                        limit.as_secs(),
                        info.last_error
                            .or(info.waiting)
                            .unwrap_or_else(|| info.pending.join("; "))
                    )));
                }
            }
            Err(CallError::NotRunning) => return Ok(None),
            Err(CallError::Failed(e)) => return Err(Failure::from(e)),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn save(layout: &Layout, text: &str) -> Result<(), Failure> {
    rookery_ceph::conf::write_atomic(&layout.spec(), text.as_bytes(), 0o600)
        .map_err(|e| Failure::from(anyhow!(e)))
}

pub fn apply(layout: &Layout, args: &FileArgs, output: Output) -> CmdResult {
    let text = read_file(&args.file)?;
    apply_text(layout, &text, &args.file.display().to_string(), output)
}

/// A port wanted by an object store that some process other than that store's gateway listens on.
fn check_gateway_ports(layout: &Layout, new: &[Value]) -> Result<(), Failure> {
    for doc in new.iter().filter(|d| key(d).0 == "CephObjectStore") {
        let store = key(doc).1;
        let port = doc
            .get("spec")
            .and_then(|s| s.get("gateway"))
            .and_then(|g| g.get("port"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        if let Some((pid, cmd)) = rookery_platform::proc::tcp_listener(port) {
            let ours = cmd.contains(&format!("client.rgw.{store}"))
                && cmd.contains(&layout.conf().display().to_string());
            if !ours {
                return Err(Failure::bad_input(format!(
                    "CephObjectStore/{store}: spec.gateway.port {port} is in use by pid {pid} ({cmd}); choose a free port or stop that process; nothing was changed"
                )));
            }
        }
    }
    Ok(())
}

/// The Ceph programs the new resources run, each checked before anything is saved.
fn check_programs(new: &[Value]) -> Result<(), Failure> {
    let mut needed = Vec::new();
    for doc in new {
        match key(doc).0.as_str() {
            "CephFilesystem" => needed.extend(["ceph-mds", "ceph-fuse"]),
            "CephObjectStore" => needed.extend(["radosgw", "radosgw-admin"]),
            _ => {}
        }
    }
    for program in needed {
        if rookery_ceph::tools::find_program(program).is_none() {
            let package = rookery_ceph::tools::package_of(program);
            return Err(Failure::bad_input(format!(
                "`{program}` is not installed; install it with: apt-get install -y {package} (nothing was changed)"
            )));
        }
    }
    Ok(())
}

/// Applies resources given as text: validate with the whole spec, save, wait for the supervisor, and show
/// the keys of users made now (the only time they are printed without `--show-secret`).
pub fn apply_text(layout: &Layout, text: &str, origin: &str, output: Output) -> CmdResult {
    let before: Vec<(String, String)> = saved_docs(layout)?.iter().map(key).collect();
    let (merged, new) = edited_spec(layout, text, origin, false)?;
    check_gateway_ports(layout, &new)?;
    check_programs(&new)?;
    save(layout, &merged)?;
    let names: Vec<String> = new
        .iter()
        .map(|d| format!("{}/{}", key(d).0, key(d).1))
        .collect();
    let report = wait_reconciled(layout, &merged, Duration::from_secs(180))?;
    let blocked = report
        .as_ref()
        .and_then(|r| r.reconcile.as_ref())
        .map(|i| i.blocked.clone())
        .unwrap_or_default();
    let mut new_keys = Vec::new();
    for doc in new.iter().filter(|d| key(d).0 == "CephObjectStoreUser") {
        let k = key(doc);
        if before.contains(&k) {
            continue;
        }
        let store = doc
            .get("spec")
            .and_then(|s| s.get("store"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let record = rookery_orchestrator::objectstore::read(&layout.rgw_user(&store, &k.1))
            .map_err(|e| Failure::from(anyhow!(e)))?;
        if let Some(r) = record {
            new_keys.push((store, k.1, r));
        }
    }
    match output {
        Output::Json => {
            let users: Vec<serde_json::Value> = new_keys
                .iter()
                .map(|(store, uid, r)| json!({"store": store, "user": uid, "access_key": r.access_key, "secret_key": r.secret_key}))
                .collect();
            println!(
                "{}",
                json!({"applied": names, "reconciled": report.is_some(), "blocked": blocked, "new_users": users})
            )
        }
        Output::Text => {
            for n in &names {
                println!(
                    "{n} applied{}",
                    if report.is_some() {
                        ""
                    } else {
                        " (the cluster is stopped: `rookery up` reconciles it)"
                    }
                );
            }
            for (store, uid, r) in &new_keys {
                println!("user {uid} of object store {store}:");
                println!("  access key  {}", r.access_key);
                println!("  secret key  {}", r.secret_key);
                println!(
                    "  (shown once; `rookery object user show {uid} --show-secret` shows it again)"
                );
            }
            for doc in new.iter().filter(|d| key(d).0 == "CephObjectStore") {
                let port = doc
                    .get("spec")
                    .and_then(|s| s.get("gateway"))
                    .and_then(|g| g.get("port"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                println!(
                    "object store {}: S3 endpoint http://127.0.0.1:{port}",
                    key(doc).1
                );
            }
            for b in &blocked {
                eprintln!("warning: {b}");
            }
        }
    }
    if blocked.is_empty() {
        Ok(())
    } else {
        Err(Failure::bad_input(format!(
            "saved, but rookery cannot carry it out: {}",
            blocked.join("; ")
        )))
    }
}

/// The spec's object store named `store`, with its gateway port.
pub fn store_admin(
    layout: &Layout,
    res: &rookery_spec::Resources,
    store: &str,
) -> Result<rookery_objects::admin::Admin, Failure> {
    let port = res
        .object_stores
        .iter()
        .find(|s| s.metadata.name == store)
        .map(|s| u16::try_from(s.spec.gateway.port).unwrap_or(0))
        .ok_or_else(|| Failure::bad_input(format!("there is no object store {store:?}")))?;
    rookery_orchestrator::objectstore::admin(layout, store, THIS_HOST_ADDRESS, port)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .ok_or_else(|| {
            Failure::from(anyhow!(
                "object store {store} is not set up yet; wait for `rookery status` to show it"
            ))
        })
}

pub fn delete(layout: &Layout, args: &DeleteArgs, output: Output) -> CmdResult {
    let text = read_file(&args.file.file)?;
    let origin = args.file.file.display().to_string();
    delete_text(layout, &text, &origin, args.yes_delete_buckets, output)
}

/// Deletes the resources given as text: the orchestrator plans the teardown and names what blocks it
/// (volumes, subvolumes, mounts, users, buckets), in which case nothing changes.
pub fn delete_text(
    layout: &Layout,
    text: &str,
    origin: &str,
    yes_delete_buckets: bool,
    output: Output,
) -> CmdResult {
    let current = saved_resources(layout)?;
    let given = super::load_spec_text(text, origin, false)?;
    let gone = resource_keys(&given);
    let plan = Teardown::of(&current, &gone);
    let rados = super::connect(layout)?;
    let admin_of = |store: &str| store_admin(layout, &current, store).ok();
    let found = teardown::observe(&rados, layout, &plan, &admin_of)
        .map_err(|e| Failure::from(anyhow!(e)))?;
    // Every refusal comes before anything changes.
    if let Some(b) = teardown::blockers(&plan, &current, &found, yes_delete_buckets).first() {
        return Err(Failure::bad_input(format!(
            "{b} ({}); nothing was changed",
            how_to_unblock(b)
        )));
    }
    let (merged, _) = edited_spec(layout, text, origin, true)?;
    teardown::remove_object_users(&plan, &admin_of).map_err(|e| Failure::from(anyhow!(e)))?;
    save(layout, &merged)?;
    // Only once the supervisor reconciles to the spec without them can it no longer recreate them (and
    // it has stopped the MDS daemons and gateways they had).
    wait_reconciled(layout, &merged, Duration::from_secs(60))?;
    teardown::forget_users(layout, &plan.users);
    let steps = plan.steps(yes_delete_buckets, &found.buckets);
    let stores = LocalPlatform::new(&layout.root).stores();
    teardown::execute(&rados, layout, stores.as_ref(), &steps, &admin_of)
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let deleted_pools: Vec<&String> = plan
        .pools
        .iter()
        .chain(plan.filesystems.iter().flat_map(|f| &f.pools))
        .chain(plan.stores.iter().flat_map(|s| &s.pools))
        .collect();
    let names: Vec<String> = gone.iter().map(|(k, n)| format!("{k}/{n}")).collect();
    let deleted_buckets: Vec<&String> = if yes_delete_buckets {
        found.buckets.iter().map(|(_, b)| b).collect()
    } else {
        vec![]
    };
    match output {
        Output::Json => println!(
            "{}",
            json!({"deleted": names, "deleted_pools": deleted_pools, "deleted_buckets": deleted_buckets})
        ),
        Output::Text => {
            for n in &names {
                println!("{n} deleted");
            }
            if !deleted_pools.is_empty() {
                let list: Vec<&str> = deleted_pools.iter().map(|p| p.as_str()).collect();
                println!("pools deleted: {}", list.join(", "));
            }
        }
    }
    Ok(())
}

/// (kind, metadata.name) of every document but the cluster.
fn resource_keys(res: &rookery_spec::Resources) -> Vec<(String, String)> {
    let of = |kind: &str, name: &str| (kind.to_string(), name.to_string());
    res.pools
        .iter()
        .map(|p| of("CephBlockPool", &p.metadata.name))
        .chain(
            res.filesystems
                .iter()
                .map(|f| of("CephFilesystem", &f.metadata.name)),
        )
        .chain(
            res.object_stores
                .iter()
                .map(|s| of("CephObjectStore", &s.metadata.name)),
        )
        .chain(
            res.object_users
                .iter()
                .map(|u| of("CephObjectStoreUser", &u.metadata.name)),
        )
        .collect()
}

/// The commands that clear a blocker, for the terminal.
fn how_to_unblock(b: &Blocker) -> String {
    match b {
        Blocker::StoreHasUsers { .. } => {
            "`rookery object user rm NAME`, or add their documents to the file".into()
        }
        Blocker::PoolHasVolumes { pool, .. } => format!("`rookery volume rm NAME --pool {pool}`"),
        Blocker::FilesystemMounted { .. } => "`rookery fs unmount PATH`".into(),
        Blocker::FilesystemHasSubvolumes { fs, .. } => {
            format!("`rookery fs subvolume rm {fs} NAME`")
        }
        Blocker::BucketsWouldBeDeleted { .. } => {
            "`rookery object bucket rm`, or add --yes-delete-buckets".into()
        }
    }
}

#[derive(Serialize)]
struct PoolRow {
    name: String,
    size: u32,
    min_size: u32,
    pg_num: u32,
    applications: Vec<String>,
    crush_rule: String,
    stored_bytes: u64,
    objects: u64,
    max_avail_bytes: u64,
    quota_max_bytes: u64,
    quota_max_objects: u64,
    volumes: Option<usize>,
}

pub fn get(layout: &Layout, args: &GetArgs, output: Output) -> CmdResult {
    match args.kind {
        Kind::Pools => get_pools(layout, output),
    }
}

fn get_pools(layout: &Layout, output: Output) -> CmdResult {
    let rados = super::connect(layout)?;
    let dump = osd::dump(&rados).map_err(|e| Failure::from(anyhow!(e)))?;
    let df = cluster::df(&rados).map_err(|e| Failure::from(anyhow!(e)))?;
    let rules = osd::crush_rule_dump(&rados).map_err(|e| Failure::from(anyhow!(e)))?;
    let rows: Vec<PoolRow> = dump
        .pools
        .iter()
        .map(|p| {
            let usage = df.pools.iter().find(|d| d.name == p.pool_name);
            let volumes = p
                .application_metadata
                .contains_key("rbd")
                .then(|| {
                    rados
                        .ioctx(&p.pool_name)
                        .ok()
                        .and_then(|io| rookery_ceph::rbd::list(&io).ok().map(|v| v.len()))
                })
                .flatten();
            PoolRow {
                name: p.pool_name.clone(),
                size: p.size,
                min_size: p.min_size,
                pg_num: p.pg_num,
                applications: p.application_metadata.keys().cloned().collect(),
                crush_rule: rules
                    .iter()
                    .find(|r| r.rule_id == p.crush_rule)
                    .map(|r| r.rule_name.clone())
                    .unwrap_or_default(),
                stored_bytes: usage.map(|u| u.stats.stored).unwrap_or(0),
                objects: usage.map(|u| u.stats.objects).unwrap_or(0),
                max_avail_bytes: usage.map(|u| u.stats.max_avail).unwrap_or(0),
                quota_max_bytes: p.quota_max_bytes,
                quota_max_objects: p.quota_max_objects,
                volumes,
            }
        })
        .collect();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| Failure::from(anyhow!(e)))?
        ),
        Output::Text => {
            let h = rookery_orchestrator::preflight::human;
            println!(
                "{:<24} {:>4} {:>4} {:>10} {:>8} {:>10} {:>16} {:>7}  RULE",
                "NAME", "SIZE", "PGS", "STORED", "OBJECTS", "AVAILABLE", "QUOTA", "VOLUMES"
            );
            for r in rows {
                let quota = match (r.quota_max_bytes, r.quota_max_objects) {
                    (0, 0) => "-".to_string(),
                    (b, 0) => h(b),
                    (0, o) => format!("{o} obj"),
                    (b, o) => format!("{} / {o} obj", h(b)),
                };
                println!(
                    "{:<24} {:>4} {:>4} {:>10} {:>8} {:>10} {:>16} {:>7}  {}",
                    r.name,
                    r.size,
                    r.pg_num,
                    h(r.stored_bytes),
                    r.objects,
                    h(r.max_avail_bytes),
                    quota,
                    r.volumes
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.crush_rule
                );
            }
        }
    }
    Ok(())
}
