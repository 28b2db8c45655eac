//! `rookery apply -f`, `rookery delete -f` and `rookery get`: Rook resources on a running cluster.
//!
//! The cluster's saved spec (`spec.yaml`) is the set of resources; apply and delete edit that set, and the
//! supervisor reconciles to it. Deleting a pool also removes it from Ceph, refused while volumes live in it.

use rookery_orchestrator::teardown::Blocker;
use rookery_platform::local::{LocalPlatform, THIS_HOST_ADDRESS};
use rookery_platform::Platform;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use rookery_orchestrator::report::ClusterReport;
use rookery_orchestrator::resources::{self, Apply, Delete, ResourceError};
use rookery_orchestrator::Layout;
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

/// The CLI's words for a resource error: what the library says, with the command or option to use.
pub fn resource_failure(e: ResourceError) -> Failure {
    let message = match &e {
        ResourceError::Invalid { origin, errors } => {
            let lines: Vec<String> = errors
                .0
                .iter()
                .map(|e| format!("{}: {}\n    fix: {}", e.path, e.message, e.fix))
                .collect();
            format!(
                "{origin} is not valid; nothing was changed:\n{}",
                lines.join("\n")
            )
        }
        ResourceError::NotYaml { detail, .. } => format!("not YAML: {detail}"),
        ResourceError::NoCluster(dir) => format!("{dir} holds no cluster; run `rookery up` first"),
        ResourceError::ClusterDelete => "deleting the CephCluster destroys all its data; that is `rookery down --purge --yes-really-destroy-data`".into(),
        ResourceError::OtherCluster { .. } => format!("{e}; use that cluster's --data-dir"),
        ResourceError::PortInUse { .. } | ResourceError::ProgramMissing { .. } => {
            format!("{e}; nothing was changed")
        }
        ResourceError::Blocked(blockers) => match blockers.first() {
            Some(b) => format!("{b} ({}); nothing was changed", how_to_unblock(b)),
            None => e.to_string(),
        },
        _ => e.to_string(),
    };
    if e.is_bad_input() {
        Failure::bad_input(message)
    } else {
        Failure::from(anyhow!(message))
    }
}

fn key(doc: &Value) -> (String, String) {
    resources::key(doc)
}

fn read_file(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", file.display())))
}

/// The saved resources, validated.
pub fn saved_resources(layout: &Layout) -> Result<rookery_spec::Resources, Failure> {
    resources::saved_resources(layout).map_err(resource_failure)
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
                if info.settled_on(&digest) {
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

pub fn apply(layout: &Layout, args: &FileArgs, output: Output) -> CmdResult {
    let text = read_file(&args.file)?;
    apply_text(layout, &text, &args.file.display().to_string(), output)
}

/// Applies resources given as text: validate with the whole spec, save, wait for the supervisor, and show
/// the keys of users made now (the only time they are printed without `--show-secret`).
pub fn apply_text(layout: &Layout, text: &str, origin: &str, output: Output) -> CmdResult {
    let platform = LocalPlatform::new(&layout.root);
    let applied = Apply::prepare(layout, &platform, text, origin).map_err(resource_failure)?;
    applied.save(layout).map_err(resource_failure)?;
    let new = &applied.new;
    let names = applied.names();
    let report = wait_reconciled(layout, &applied.merged, Duration::from_secs(180))?;
    let blocked = report
        .as_ref()
        .and_then(|r| r.reconcile.as_ref())
        .map(|i| i.blocked.clone())
        .unwrap_or_default();
    let new_keys = applied.new_users(layout).map_err(resource_failure)?;
    match output {
        Output::Json => {
            let users = &new_keys;
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
            for u in &new_keys {
                println!("user {} of object store {}:", u.user, u.store);
                println!("  access key  {}", u.access_key);
                println!("  secret key  {}", u.secret_key);
                println!(
                    "  (shown once; `rookery object user show {} --show-secret` shows it again)",
                    u.user
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
    let rados = super::connect(layout)?;
    let admin_of = |store: &str| store_admin(layout, &current, store).ok();
    let delete = Delete::prepare(&rados, layout, text, origin, yes_delete_buckets, &admin_of)
        .map_err(resource_failure)?;
    delete.start(layout, &admin_of).map_err(resource_failure)?;
    wait_reconciled(layout, &delete.merged, Duration::from_secs(60))?;
    let stores = LocalPlatform::new(&layout.root).stores();
    let done = delete
        .finish(&rados, layout, stores.as_ref(), &admin_of)
        .map_err(resource_failure)?;
    match output {
        Output::Json => println!(
            "{}",
            json!({"deleted": done.deleted, "deleted_pools": done.deleted_pools, "deleted_buckets": done.deleted_buckets})
        ),
        Output::Text => {
            for n in &done.deleted {
                println!("{n} deleted");
            }
            if !done.deleted_pools.is_empty() {
                println!("pools deleted: {}", done.deleted_pools.join(", "));
            }
        }
    }
    Ok(())
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

pub fn get(layout: &Layout, args: &GetArgs, output: Output) -> CmdResult {
    match args.kind {
        Kind::Pools => get_pools(layout, output),
    }
}

fn get_pools(layout: &Layout, output: Output) -> CmdResult {
    let rados = super::connect(layout)?;
    let rows = resources::pools(&rados).map_err(|e| Failure::from(anyhow!(e)))?;
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
