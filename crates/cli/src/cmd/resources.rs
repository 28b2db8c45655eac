//! `rookery apply -f`, `rookery delete -f` and `rookery get`: Rook resources on a running cluster, as
//! requests to the supervisor's control API.
//!
//! The cluster's saved spec (`spec.yaml`) is the set of resources; apply and delete edit that set, and the
//! supervisor reconciles to it. Deleting a pool also removes it from Ceph, refused while volumes live in it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use rookery_orchestrator::resources::{self, Deleted, PoolRow, ResourceError};
use rookery_orchestrator::Layout;
use serde_json::json;

use crate::api::{self, Body, Client};
use crate::control::{ApplyResult, ErrorBody};
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

/// The CLI's words for a resource error found here (validating a spec before `up`, reading the saved one).
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
        _ => e.to_string(),
    };
    if e.is_bad_input() {
        Failure::bad_input(message)
    } else {
        Failure::from(anyhow!(message))
    }
}

/// The CLI's words for the API's refusal of an apply or delete of `origin`: the API names the documents
/// "the request body"; the CLI names its file, and the command or option that clears a blocker.
fn api_failure(origin: &str, status: u16, error: ErrorBody) -> Failure {
    let message = match error.message.strip_prefix(REQUEST_BODY) {
        Some(rest) => format!("{origin}{rest}"),
        None => error.message.clone(),
    };
    let message = match error.code.as_str() {
        "cluster_delete_refused" => "deleting the CephCluster destroys all its data; that is `rookery down --purge --yes-really-destroy-data`".into(),
        "other_cluster" => format!("{message}; use that cluster's --data-dir"),
        "port_in_use" | "program_missing" => format!("{message}; nothing was changed"),
        "reconcile_blocked" | "not_reconciled" | "not_yaml" => message,
        code => match how_to_unblock(code) {
            Some(how) => format!("{message} ({how}); nothing was changed"),
            None if status == 400 => {
                message.replacen(" is not valid:", " is not valid; nothing was changed:", 1)
            }
            None => message,
        },
    };
    api::plain(status, ErrorBody { message, ..error })
}

/// How the API names the documents it was sent.
const REQUEST_BODY: &str = "the request body";

fn read_file(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", file.display())))
}

/// The saved resources, validated.
pub fn saved_resources(layout: &Layout) -> Result<rookery_spec::Resources, Failure> {
    resources::saved_resources(layout).map_err(resource_failure)
}

/// An apply waits for the supervisor's reconcile (up to 180 s on its side).
const APPLY_TIMEOUT: Duration = Duration::from_secs(240);
/// A delete waits for the supervisor to drop the documents, then removes pools, buckets and keys.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);

pub fn apply(layout: &Layout, args: &FileArgs, output: Output) -> CmdResult {
    let text = read_file(&args.file)?;
    apply_text(layout, &text, &args.file.display().to_string(), output)
}

/// Applies resources given as text through the supervisor, which validates them with the whole spec,
/// saves and reconciles; shows the keys of users made now (the only time they are printed without
/// `--show-secret`).
pub fn apply_text(layout: &Layout, text: &str, origin: &str, output: Output) -> CmdResult {
    let client = Client::new(layout)?;
    let applied: ApplyResult = client
        .send(
            "POST",
            "/v1/resources",
            Some(Body::yaml(text)),
            APPLY_TIMEOUT,
        )
        .map_err(|r| r.word(|status, e| api_failure(origin, status, e)))?;
    match output {
        Output::Json => {
            // `blocked` stays for scripts written against earlier versions: a blocked apply now fails.
            let no_blockers: [&str; 0] = [];
            println!(
                "{}",
                json!({"applied": applied.applied, "reconciled": applied.reconciled, "blocked": no_blockers, "new_users": applied.new_users})
            )
        }
        Output::Text => {
            for n in &applied.applied {
                println!("{n} applied");
            }
            for u in &applied.new_users {
                println!("user {} of object store {}:", u.user, u.store);
                println!("  access key  {}", u.access_key);
                println!("  secret key  {}", u.secret_key);
                println!(
                    "  (shown once; `rookery object user show {} --show-secret` shows it again)",
                    u.user
                );
            }
            for s in &applied.object_stores {
                println!("object store {}: S3 endpoint {}", s.store, s.endpoint);
            }
        }
    }
    Ok(())
}

pub fn delete(layout: &Layout, args: &DeleteArgs, output: Output) -> CmdResult {
    let text = read_file(&args.file.file)?;
    let origin = args.file.file.display().to_string();
    delete_text(layout, &text, &origin, args.yes_delete_buckets, output)
}

/// Deletes the resources given as text through the supervisor: the orchestrator plans the teardown and
/// names what blocks it (volumes, subvolumes, mounts, users, buckets), in which case nothing changes.
pub fn delete_text(
    layout: &Layout,
    text: &str,
    origin: &str,
    yes_delete_buckets: bool,
    output: Output,
) -> CmdResult {
    let client = Client::new(layout)?;
    let path = if yes_delete_buckets {
        "/v1/resources/delete?yesDeleteBuckets=true"
    } else {
        "/v1/resources/delete"
    };
    let done: Deleted = client
        .send("POST", path, Some(Body::yaml(text)), DELETE_TIMEOUT)
        .map_err(|r| r.word(|status, e| api_failure(origin, status, e)))?;
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

/// The commands that clear a blocker (by the API's code, `Blocker::code`), for the terminal.
fn how_to_unblock(code: &str) -> Option<&'static str> {
    Some(match code {
        "store_has_users" => "`rookery object user rm NAME`, or add their documents to the file",
        "pool_has_volumes" => "`rookery volume rm POOL/NAME`",
        "filesystem_mounted" => "`rookery fs unmount PATH`",
        "filesystem_has_subvolumes" => "`rookery fs subvolume rm FS NAME`",
        "buckets_would_be_deleted" => "`rookery object bucket rm`, or add --yes-delete-buckets",
        _ => return None,
    })
}

pub fn get(layout: &Layout, args: &GetArgs, output: Output) -> CmdResult {
    match args.kind {
        Kind::Pools => get_pools(layout, output),
    }
}

fn get_pools(layout: &Layout, output: Output) -> CmdResult {
    let rows: Vec<PoolRow> = Client::new(layout)?
        .get("/v1/pools")
        .map_err(|r| r.word(api::plain))?;
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

/// Changes the saved CephCluster's `spec.storage` (as JSON, so every other field stays as written) and
/// applies it through the supervisor, which validates it with the whole spec, saves and reconciles.
pub fn edit_storage(
    layout: &Layout,
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> CmdResult {
    let docs = rookery_orchestrator::resources::saved_docs(layout)
        .map_err(|e| Failure::from(anyhow::anyhow!(e)))?;
    let Some(mut cluster) = docs
        .into_iter()
        .find(|d| d.get("kind").and_then(|k| k.as_str()) == Some("CephCluster"))
        .and_then(|d| serde_json::to_value(d).ok())
    else {
        return Err(Failure::bad_input("the saved spec has no CephCluster"));
    };
    let storage = cluster
        .get_mut("spec")
        .and_then(|s| s.as_object_mut())
        .map(|s| s.entry("storage").or_insert_with(|| json!({})));
    let Some(storage) = storage.and_then(|s| s.as_object_mut()) else {
        return Err(Failure::bad_input("the saved CephCluster has no spec"));
    };
    change(storage);
    let text = serde_yaml::to_string(&cluster).map_err(|e| Failure::from(anyhow::anyhow!(e)))?;
    let _: ApplyResult = Client::new(layout)?
        .send(
            "POST",
            "/v1/resources",
            Some(Body::yaml(&text)),
            APPLY_TIMEOUT,
        )
        .map_err(|r| r.word(api::plain))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, message: &str) -> ErrorBody {
        ErrorBody {
            code: code.into(),
            field: None,
            message: message.into(),
        }
    }

    #[test]
    fn api_refusals_name_the_file_and_the_command_that_clears_them() {
        let f = api_failure(
            "pool.yaml",
            400,
            body(
                "invalid_spec",
                "the request body is not valid:\nspec.replicated.size: too big. use 3",
            ),
        );
        assert_eq!(f.code, 2);
        assert!(
            f.message
                .starts_with("pool.yaml is not valid; nothing was changed:\nspec.replicated.size"),
            "{}",
            f.message
        );
        let f = api_failure(
            "pool.yaml",
            409,
            body("pool_has_volumes", "pool fast still holds volumes: pv"),
        );
        assert_eq!(f.code, 2);
        assert!(
            f.message.contains("`rookery volume rm POOL/NAME`"),
            "{}",
            f.message
        );
        let f = api_failure("pool.yaml", 503, body("ceph_unavailable", "no mon answers"));
        assert_eq!((f.code, f.message.as_str()), (1, "no mon answers"));
    }
}
