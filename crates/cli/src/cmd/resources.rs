//! `rookery apply -f`, `rookery delete -f` and `rookery get`: Rook resources on a running cluster.
//!
//! The cluster's saved spec (`spec.yaml`) is the set of resources; apply and delete edit that set, and the
//! supervisor reconciles to it. Deleting a pool also removes it from Ceph, refused while volumes live in it.

use rookery_platform::local::THIS_HOST_ADDRESS;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use rookery_ceph::Target;
use rookery_orchestrator::report::ClusterReport;
use rookery_orchestrator::resources::{self, Apply, ResourceError};
use rookery_orchestrator::Layout;
use rookery_platform::local::LocalPlatform;
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

fn edited_spec(
    layout: &Layout,
    text: &str,
    origin: &str,
    remove: bool,
) -> Result<(String, Vec<Value>), Failure> {
    resources::edited_spec(layout, text, origin, remove).map_err(resource_failure)
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

fn save(layout: &Layout, text: &str) -> Result<(), Failure> {
    resources::save(layout, text).map_err(resource_failure)
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

fn delete_pool(rados: &rookery_ceph::Rados, pool: &str) -> Result<(), Failure> {
    match rados.command_status(
        Target::Mon,
        json!({"prefix": "osd pool delete", "pool": pool, "pool2": pool, "yes_i_really_really_mean_it": true}),
    ) {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(()),
        Err(e) => Err(Failure::from(anyhow!(e))),
    }
}

fn remove_auth(rados: &rookery_ceph::Rados, entity: &str) {
    let _ = rados.command_status(Target::Mon, json!({"prefix": "auth rm", "entity": entity}));
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

/// Deletes the resources given as text; refusals (volumes, subvolumes, mounts, buckets) change nothing.
pub fn delete_text(
    layout: &Layout,
    text: &str,
    origin: &str,
    yes_delete_buckets: bool,
    output: Output,
) -> CmdResult {
    let current = saved_resources(layout)?;
    // A store's users go first (their buckets are the user's data); say so instead of a validation error.
    let given = super::load_spec_text(text, origin, false)?;
    for st in &given.object_stores {
        let name = &st.metadata.name;
        let users: Vec<&str> = current
            .object_users
            .iter()
            .filter(|u| &u.spec.store == name)
            .filter(|u| {
                !given
                    .object_users
                    .iter()
                    .any(|g| g.metadata.name == u.metadata.name)
            })
            .map(|u| u.metadata.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(Failure::bad_input(format!(
                "object store {name} still has users: {}; remove them first (`rookery object user rm NAME`) or add their documents to the file; nothing was changed",
                users.join(", ")
            )));
        }
    }
    let (merged, gone) = edited_spec(layout, text, origin, true)?;
    let of = |kind: &str| -> Vec<String> {
        gone.iter()
            .filter(|d| key(d).0 == kind)
            .map(|d| key(d).1)
            .collect()
    };
    let pools: Vec<String> = gone
        .iter()
        .filter(|d| key(d).0 == "CephBlockPool")
        .map(|d| {
            d.get("spec")
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| key(d).1)
        })
        .collect();
    let rados = super::connect(layout)?;
    // Every refusal comes before anything changes.
    for pool in &pools {
        if let Ok(io) = rados.ioctx(pool) {
            let volumes = rookery_ceph::rbd::list(&io).map_err(|e| Failure::from(anyhow!(e)))?;
            if !volumes.is_empty() {
                return Err(Failure::bad_input(format!(
                    "pool {pool} still holds volumes: {}; remove them first (`rookery volume rm NAME --pool {pool}`); nothing was changed",
                    volumes.join(", ")
                )));
            }
        }
    }
    let filesystems: Vec<&rookery_spec::CephFilesystem> = current
        .filesystems
        .iter()
        .filter(|f| of("CephFilesystem").contains(&f.metadata.name))
        .collect();
    let mounts = rookery_files::mount::list(&layout.root).unwrap_or_default();
    for fs in &filesystems {
        let name = &fs.metadata.name;
        let here: Vec<String> = mounts
            .iter()
            .filter(|m| &m.fs == name)
            .map(|m| m.path.display().to_string())
            .collect();
        if !here.is_empty() {
            return Err(Failure::bad_input(format!(
                "filesystem {name} is mounted at {}; unmount it first (`rookery fs unmount PATH`); nothing was changed",
                here.join(", ")
            )));
        }
        if !fs.spec.preserve_filesystem_on_delete {
            let subs = rookery_files::subvolume::names(&rados, name).unwrap_or_default();
            if !subs.is_empty() {
                return Err(Failure::bad_input(format!(
                    "filesystem {name} still has subvolumes: {}; remove them first (`rookery fs subvolume rm {name} NAME`); nothing was changed",
                    subs.join(", ")
                )));
            }
        }
    }
    // Users of deleted stores, and deleted users: their buckets go only with --yes-delete-buckets.
    let users: Vec<&rookery_spec::CephObjectStoreUser> = current
        .object_users
        .iter()
        .filter(|u| of("CephObjectStoreUser").contains(&u.metadata.name))
        .collect();
    let stores: Vec<&rookery_spec::CephObjectStore> = current
        .object_stores
        .iter()
        .filter(|s| of("CephObjectStore").contains(&s.metadata.name))
        .collect();
    let mut buckets: Vec<(String, String)> = Vec::new();
    for u in &users {
        if let Ok(admin) = store_admin(layout, &current, &u.spec.store) {
            let names = admin
                .buckets(&u.metadata.name)
                .map_err(|e| Failure::from(anyhow!(e)))?;
            buckets.extend(names.into_iter().map(|b| (u.spec.store.clone(), b)));
        }
    }
    for st in &stores {
        if let Ok(admin) = store_admin(layout, &current, &st.metadata.name) {
            let names = admin.buckets("").unwrap_or_default();
            buckets.extend(names.into_iter().map(|b| (st.metadata.name.clone(), b)));
        }
    }
    buckets.sort();
    buckets.dedup();
    if !buckets.is_empty() && !yes_delete_buckets {
        let list: Vec<String> = buckets
            .iter()
            .map(|(s, b)| format!("{b} (in {s})"))
            .collect();
        return Err(Failure::bad_input(format!(
            "buckets would be deleted with it: {}; delete them first (`rookery object bucket rm`), or add --yes-delete-buckets; nothing was changed",
            list.join(", ")
        )));
    }
    for u in &users {
        let admin = store_admin(layout, &current, &u.spec.store).ok();
        if let Some(admin) = admin {
            admin
                .remove_user(&u.metadata.name, true)
                .map_err(|e| Failure::from(anyhow!(e)))?;
        }
    }
    save(layout, &merged)?;
    // Only once the supervisor reconciles to the spec without them can it no longer recreate them (and
    // it has stopped the MDS daemons and gateways they had).
    wait_reconciled(layout, &merged, Duration::from_secs(60))?;
    for u in &users {
        let _ = std::fs::remove_file(layout.rgw_user(&u.spec.store, &u.metadata.name));
    }
    for pool in &pools {
        delete_pool(&rados, pool)?;
    }
    let mut deleted_pools = pools.clone();
    for fs in &filesystems {
        let name = &fs.metadata.name;
        if !fs.spec.preserve_filesystem_on_delete {
            let _ =
                rados.command_status(Target::Mon, json!({"prefix": "fs fail", "fs_name": name}));
            match rados.command_status(
                Target::Mon,
                json!({"prefix": "fs rm", "fs_name": name, "yes_i_really_mean_it": true}),
            ) {
                Ok(_) => {}
                Err(e) if e.errno() == Some(-libc::ENOENT) => {}
                Err(e) => return Err(Failure::from(anyhow!(e))),
            }
            if !fs.spec.preserve_pools_on_delete {
                let mut names = vec![fs.metadata_pool_name()];
                names.extend(fs.data_pool_names());
                for p in names {
                    delete_pool(&rados, &p)?;
                    deleted_pools.push(p);
                }
            }
        }
        let letters = (fs.spec.metadata_server.active_count * 2) as usize;
        for i in 0..letters.max(26) {
            let id = format!("{name}-{}", char::from(b'a' + (i % 26) as u8));
            let dir = layout.mds_data(&id);
            if dir.exists() {
                remove_auth(&rados, &format!("mds.{id}"));
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    let remaining_stores = current.object_stores.len() - stores.len();
    for st in &stores {
        let name = &st.metadata.name;
        if yes_delete_buckets {
            if let Ok(admin) = store_admin(layout, &current, name) {
                for (_, b) in buckets.iter().filter(|(s, _)| s == name) {
                    let _ = admin.remove_bucket(b, true);
                }
            }
        }
        if !st.spec.preserve_pools_on_delete {
            let mut names = st.metadata_pool_names();
            names.push(st.data_pool_name());
            for p in names {
                if p == ".rgw.root" && remaining_stores > 0 {
                    continue;
                }
                delete_pool(&rados, &p)?;
                deleted_pools.push(p);
            }
        }
        remove_auth(&rados, &format!("client.rgw.{name}"));
        let _ = std::fs::remove_file(layout.rgw_keyring(name));
        let _ = std::fs::remove_dir_all(layout.rgw_dir(name));
    }
    let names: Vec<String> = gone
        .iter()
        .map(|d| format!("{}/{}", key(d).0, key(d).1))
        .collect();
    match output {
        Output::Json => println!(
            "{}",
            json!({"deleted": names, "deleted_pools": deleted_pools, "deleted_buckets": buckets.iter().map(|(_, b)| b).collect::<Vec<_>>()})
        ),
        Output::Text => {
            for n in &names {
                println!("{n} deleted");
            }
            if !deleted_pools.is_empty() {
                println!("pools deleted: {}", deleted_pools.join(", "));
            }
        }
    }
    Ok(())
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
