//! `rookery apply -f`, `rookery delete -f` and `rookery get`: Rook resources on a running cluster.
//!
//! The cluster's saved spec (`spec.yaml`) is the set of resources; apply and delete edit that set, and the
//! supervisor reconciles to it. Deleting a pool also removes it from Ceph, refused while volumes live in it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use rookery_ceph::types::{Df, OsdDump};
use rookery_ceph::Target;
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

/// Validates `file` and the cluster's spec with it applied (or removed), returning the new spec text.
fn edited_spec(
    layout: &Layout,
    file: &Path,
    remove: bool,
) -> Result<(String, Vec<Value>), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", file.display())))?;
    let given = super::load_spec_text(&text, &file.display().to_string(), false)?;
    drop(given);
    let saved = std::fs::read_to_string(layout.spec()).map_err(|_| {
        Failure::bad_input(format!(
            "{} holds no cluster; run `rookery up` first",
            layout.root.display()
        ))
    })?;
    let mut docs = documents(&saved)?;
    let new = documents(&text)?;
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
                    "{} describes cluster {:?}, but this data dir holds {:?}; use that cluster's --data-dir",
                    file.display(),
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
    let (merged, new) = edited_spec(layout, &args.file, false)?;
    save(layout, &merged)?;
    let names: Vec<String> = new
        .iter()
        .map(|d| format!("{}/{}", key(d).0, key(d).1))
        .collect();
    let report = wait_reconciled(layout, &merged, Duration::from_secs(120))?;
    let blocked = report
        .as_ref()
        .and_then(|r| r.reconcile.as_ref())
        .map(|i| i.blocked.clone())
        .unwrap_or_default();
    match output {
        Output::Json => println!(
            "{}",
            json!({"applied": names, "reconciled": report.is_some(), "blocked": blocked})
        ),
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

pub fn delete(layout: &Layout, args: &FileArgs, output: Output) -> CmdResult {
    let (merged, gone) = edited_spec(layout, &args.file, true)?;
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
    save(layout, &merged)?;
    // Only once the supervisor reconciles to the spec without the pool can it no longer recreate it.
    wait_reconciled(layout, &merged, Duration::from_secs(60))?;
    for pool in &pools {
        match rados.command_status(
            Target::Mon,
            json!({"prefix": "osd pool delete", "pool": pool, "pool2": pool, "yes_i_really_really_mean_it": true}),
        ) {
            Ok(_) => {}
            Err(e) if e.errno() == Some(-libc::ENOENT) => {}
            Err(e) => return Err(Failure::from(anyhow!(e))),
        }
    }
    match output {
        Output::Json => println!("{}", json!({"deleted_pools": pools})),
        Output::Text => {
            for p in &pools {
                println!("CephBlockPool {p} deleted");
            }
        }
    }
    Ok(())
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
    let dump: OsdDump = rados
        .command(Target::Mon, json!({"prefix": "osd dump"}))
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let df: Df = rados
        .command(Target::Mon, json!({"prefix": "df"}))
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let rules: Vec<rookery_ceph::types::CrushRule> = rados
        .command(Target::Mon, json!({"prefix": "osd crush rule dump"}))
        .map_err(|e| Failure::from(anyhow!(e)))?;
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
