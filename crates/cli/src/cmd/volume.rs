//! `rookery volume`: block volumes (RBD images), managed by the supervisor through its control API, and
//! mounted on this host here (librbd and the kernel of the host the command runs on).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_orchestrator::Layout;
use rookery_volumes::manage::{self, VolumeInfo};
use rookery_volumes::{MountRequest, VolumeError};

use crate::api::{self, Body, Client, Refusal};
use crate::control::{
    CloneVolume, CreateSnapshot, CreateVolume, ErrorBody, ResizeVolume, Resized, SnapshotCreated,
};
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct VolumeArgs {
    /// The pool (default: replicapool). A volume may also be named POOL/NAME; a pool given both ways
    /// must be the same.
    #[arg(long, global = true)]
    pub pool: Option<String>,
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    ///
    /// Example: rookery volume create data1 --size 10Gi --fs ext4
    Create {
        name: String,
        /// Size, such as 10Gi, 1.5Gi or 500Mi (a fraction rounds up to a whole byte).
        #[arg(long)]
        size: String,
        /// Filesystem made on first mount: ext4, xfs, or none (raw block).
        #[arg(long, default_value = "ext4")]
        fs: String,
        /// Keep the data in this erasure-coded pool (the volume's metadata stays in --pool).
        #[arg(long)]
        data_pool: Option<String>,
        /// Allow a size above the pool's quota (never above what its OSDs can hold): writes stop when
        /// the pool is full, and `rookery status` warns.
        #[arg(long)]
        over_commit: bool,
    },
    /// List volumes with size, usage, snapshots and where they are mounted.
    ///
    /// Example: rookery volume list -o json
    List,
    /// Everything about one volume.
    ///
    /// Example: rookery volume info data1
    Info { name: String },
    /// Grow a volume (and its filesystem, when mounted here). Shrinking is refused.
    ///
    /// Example: rookery volume resize data1 --size 20Gi
    Resize {
        name: String,
        #[arg(long)]
        size: String,
        /// Allow a size above the pool's quota (never above what its OSDs can hold).
        #[arg(long)]
        over_commit: bool,
    },
    /// Snapshots of a volume.
    ///
    /// Example: rookery volume snapshot create data1 before-upgrade
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// A new volume from a snapshot (NAME@SNAPSHOT), sharing its data until written.
    ///
    /// Example: rookery volume clone data1@before-upgrade data1-copy --flatten
    Clone {
        snapshot: String,
        new_name: String,
        /// Copy all data now, so the clone no longer depends on the snapshot.
        #[arg(long)]
        flatten: bool,
    },
    /// Copy a clone's shared data so it no longer depends on its parent snapshot.
    ///
    /// Example: rookery volume flatten data1-copy
    Flatten { name: String },
    /// Remove a volume (refused while mounted, or while it has snapshots or clones).
    ///
    /// Example: rookery volume rm data1
    Rm { name: String },
    /// Mount a volume at PATH (formats it first only if it is blank).
    ///
    /// Example: rookery volume mount data1 /mnt/data1
    Mount {
        name: String,
        path: PathBuf,
        #[arg(long)]
        read_only: bool,
    },
    /// Unmount by volume name or mount path.
    ///
    /// Example: rookery volume unmount /mnt/data1
    Unmount { target: String },
}

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Example: rookery volume snapshot create data1 snap1
    Create { name: String, snapshot: String },
    /// Example: rookery volume snapshot list data1
    List { name: String },
    /// Example: rookery volume snapshot rm data1 snap1
    Rm { name: String, snapshot: String },
}

/// The CLI option that sets a request field the library names; names are positional arguments, which
/// the message already names.
fn flag(field: &str) -> Option<String> {
    match field {
        "name" | "snapshot" => None,
        "dataPool" => Some("--data-pool".into()),
        other => Some(format!("--{other}")),
    }
}

fn failure(e: VolumeError) -> Failure {
    if let Some(field) = e.field() {
        refusal(Some(field), &e.message())
    } else if e.is_bad_request() {
        refusal(None, &e.to_string())
    } else {
        Failure::from(anyhow!(e))
    }
}

/// A refusal that changed nothing, with the field worded as the option that sets it.
fn refusal(field: Option<&str>, message: &str) -> Failure {
    let prefix = field
        .and_then(flag)
        .map(|f| format!("{f}: "))
        .unwrap_or_default();
    Failure::bad_input(format!("{prefix}{message}; nothing was changed"))
}

/// The API's error as the CLI words a volume error: 4xx is a refusal of the request (exit 2).
fn api_failure(status: u16, e: ErrorBody) -> Failure {
    if (400..500).contains(&status) {
        refusal(e.field.as_deref(), &e.message)
    } else {
        Failure::from(anyhow!(e.message))
    }
}

/// `POOL/NAME`, or `NAME` in the --pool pool (replicapool when not given). A name with more than one
/// '/', or whose pool part is not a pool name, is refused as such rather than looked up.
fn split<'a>(pool: Option<&'a str>, name: &'a str) -> Result<(&'a str, &'a str), Failure> {
    let Some((named, volume)) = name.split_once('/') else {
        return Ok((pool.unwrap_or(manage::DEFAULT_POOL), name));
    };
    let pool_name = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    if !pool_name(named) || volume.contains('/') {
        return Err(refusal(
            None,
            &format!("{name:?} is not a volume name: use NAME, or POOL/NAME with a pool's name before the one '/'"),
        ));
    }
    if let Some(given) = pool.filter(|p| *p != named) {
        return Err(refusal(
            None,
            &format!("{name:?} names pool {named} but --pool says {given}: name the pool once"),
        ));
    }
    Ok((named, volume))
}

/// The API path of a volume.
fn volume_path(pool: &str, name: &str) -> String {
    format!("/v1/volumes/{}/{}", api::enc(pool), api::enc(name))
}

fn print_json(v: &impl serde::Serialize) -> CmdResult {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Failure::from(anyhow!(e)))?
    );
    Ok(())
}

fn done(output: Output, what: serde_json::Value, text: String) -> CmdResult {
    match output {
        Output::Json => print_json(&what),
        Output::Text => {
            println!("{text}");
            Ok(())
        }
    }
}

/// Growing a filesystem and freezing mounts for a snapshot take a while on a busy host.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(180);

/// Flattening copies the whole volume's data.
const FLATTEN_TIMEOUT: Duration = Duration::from_secs(3600);

pub fn run(layout: &Layout, args: &VolumeArgs, output: Output) -> CmdResult {
    let p = args.pool.as_deref();
    let client = Client::new(layout)?;
    let word = |r: Refusal| r.word(api_failure);
    match &args.command {
        VolumeCommand::Create {
            name,
            size,
            fs,
            data_pool,
            over_commit,
        } => {
            let (pool, name) = split(p, name)?;
            let req = CreateVolume {
                name: name.to_string(),
                pool: pool.to_string(),
                size: size.clone(),
                fs: fs.clone(),
                data_pool: data_pool.clone(),
                over_commit: *over_commit,
            };
            let info: VolumeInfo = client
                .send(
                    "POST",
                    "/v1/volumes",
                    Some(Body::json(&req)?),
                    CHANGE_TIMEOUT,
                )
                .map_err(word)?;
            done(
                output,
                serde_json::json!({"created": name, "pool": pool, "size_bytes": info.size_bytes}),
                format!("created volume {pool}/{name} ({size}, {fs} on first mount)"),
            )
        }
        VolumeCommand::List => {
            let list: Vec<VolumeInfo> = client
                .get(&format!(
                    "/v1/volumes?pool={}",
                    api::enc(p.unwrap_or(manage::DEFAULT_POOL))
                ))
                .map_err(word)?;
            match output {
                Output::Json => print_json(&list),
                Output::Text => {
                    print!("{}", table(&list));
                    Ok(())
                }
            }
        }
        VolumeCommand::Info { name } => {
            let (pool, name) = split(p, name)?;
            let info: VolumeInfo = client.get(&volume_path(pool, name)).map_err(word)?;
            match output {
                Output::Json => print_json(&info),
                Output::Text => {
                    print!("{}", describe(&info));
                    Ok(())
                }
            }
        }
        VolumeCommand::Resize {
            name,
            size,
            over_commit,
        } => {
            let (pool, name) = split(p, name)?;
            let req = ResizeVolume {
                size: size.clone(),
                over_commit: *over_commit,
            };
            let resized: Resized = client
                .send(
                    "POST",
                    &format!("{}/resize", volume_path(pool, name)),
                    Some(Body::json(&req)?),
                    CHANGE_TIMEOUT,
                )
                .map_err(word)?;
            for note in &resized.notes {
                eprintln!("note: {note}");
            }
            done(
                output,
                serde_json::json!({"resized": name, "size_bytes": resized.volume.size_bytes}),
                format!("volume {pool}/{name} is now {size}"),
            )
        }
        VolumeCommand::Snapshot(SnapshotCommand::Create { name, snapshot }) => {
            let (pool, name) = split(p, name)?;
            let req = CreateSnapshot {
                name: snapshot.clone(),
            };
            let created: SnapshotCreated = client
                .send(
                    "POST",
                    &format!("{}/snapshots", volume_path(pool, name)),
                    Some(Body::json(&req)?),
                    CHANGE_TIMEOUT,
                )
                .map_err(word)?;
            for path in &created.frozen {
                eprintln!(
                    "note: {} was frozen while the snapshot was taken",
                    path.display()
                );
            }
            done(
                output,
                serde_json::json!({"snapshot": format!("{name}@{snapshot}")}),
                format!("created snapshot {pool}/{name}@{snapshot}"),
            )
        }
        VolumeCommand::Snapshot(SnapshotCommand::List { name }) => {
            let (pool, name) = split(p, name)?;
            let info: VolumeInfo = client.get(&volume_path(pool, name)).map_err(word)?;
            match output {
                Output::Json => print_json(&info.snapshots),
                Output::Text => {
                    for s in &info.snapshots {
                        println!(
                            "{name}@{}  {}",
                            s.name,
                            rookery_orchestrator::preflight::human(s.size_bytes)
                        );
                    }
                    Ok(())
                }
            }
        }
        VolumeCommand::Snapshot(SnapshotCommand::Rm { name, snapshot }) => {
            let (pool, name) = split(p, name)?;
            client
                .send::<()>(
                    "DELETE",
                    &format!(
                        "{}/snapshots/{}",
                        volume_path(pool, name),
                        api::enc(snapshot)
                    ),
                    None,
                    CHANGE_TIMEOUT,
                )
                .map_err(word)?;
            done(
                output,
                serde_json::json!({"removed": format!("{name}@{snapshot}")}),
                format!("removed snapshot {pool}/{name}@{snapshot}"),
            )
        }
        VolumeCommand::Rm { name } => {
            let (pool, name) = split(p, name)?;
            client
                .send::<()>("DELETE", &volume_path(pool, name), None, CHANGE_TIMEOUT)
                .map_err(word)?;
            done(
                output,
                serde_json::json!({"removed": name}),
                format!("removed volume {pool}/{name}"),
            )
        }
        VolumeCommand::Clone {
            snapshot,
            new_name,
            flatten,
        } => {
            let (source, snap) = snapshot.split_once('@').ok_or_else(|| {
                Failure::bad_input(format!(
                    "{snapshot:?} names no snapshot; write it as VOLUME@SNAPSHOT"
                ))
            })?;
            let (pool, name) = split(p, source)?;
            let req = CloneVolume {
                snapshot: snap.to_string(),
                name: new_name.clone(),
                flatten: *flatten,
            };
            client
                .send::<VolumeInfo>(
                    "POST",
                    &format!("{}/clone", volume_path(pool, name)),
                    Some(Body::json(&req)?),
                    if *flatten {
                        FLATTEN_TIMEOUT
                    } else {
                        CHANGE_TIMEOUT
                    },
                )
                .map_err(word)?;
            done(
                output,
                serde_json::json!({"created": new_name, "from": snapshot}),
                format!(
                    "created volume {pool}/{new_name} from {name}@{snap}{}",
                    if *flatten { " (flattened)" } else { "" }
                ),
            )
        }
        VolumeCommand::Flatten { name } => {
            let (pool, name) = split(p, name)?;
            client
                .send::<VolumeInfo>(
                    "POST",
                    &format!("{}/flatten", volume_path(pool, name)),
                    None,
                    FLATTEN_TIMEOUT,
                )
                .map_err(word)?;
            done(
                output,
                serde_json::json!({"flattened": name}),
                format!("volume {pool}/{name} no longer depends on its parent"),
            )
        }
        VolumeCommand::Mount { .. } | VolumeCommand::Unmount { .. } => {
            run_here(layout, args, output)
        }
    }
}

/// What acts on this host's kernel (mount, unmount) runs here, with a librados connection of its own.
fn run_here(layout: &Layout, args: &VolumeArgs, output: Output) -> CmdResult {
    let rados = super::connect(layout)?;
    let data = &layout.root;
    let p = args.pool.as_deref();
    match &args.command {
        VolumeCommand::Mount {
            name,
            path,
            read_only,
        } => {
            let (pool, name) = split(p, name)?;
            let req = MountRequest {
                pool: pool.to_string(),
                volume: name.to_string(),
                path: path.clone(),
                read_only: *read_only,
                conf: layout.conf(),
                identity: rookery_ceph::Identity::admin(),
                data_dir: data.clone(),
                raw: false,
            };
            let rec = rookery_volumes::mount(&rados, &req).map_err(failure)?;
            done(
                output,
                serde_json::to_value(&rec).unwrap_or_default(),
                format!(
                    "mounted {pool}/{name} ({}) at {}{} via {}",
                    rec.fstype,
                    rec.path.display(),
                    if rec.read_only { " read-only" } else { "" },
                    rec.loop_device.display()
                ),
            )
        }
        VolumeCommand::Unmount { target } => {
            let recs = rookery_volumes::unmount(&rados, data, target).map_err(failure)?;
            let paths: Vec<String> = recs.iter().map(|r| r.path.display().to_string()).collect();
            done(
                output,
                serde_json::json!({"unmounted": paths}),
                format!("unmounted {}", paths.join(", ")),
            )
        }
        _ => Err(Failure::from(anyhow!(
            "this volume command is served by the supervisor"
        ))),
    }
}

fn table(list: &[VolumeInfo]) -> String {
    let h = rookery_orchestrator::preflight::human;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<20} {:<12} {:>10} {:>10} {:>5} {:<24} {:<24} HOLDER",
        "NAME", "POOL", "SIZE", "USED", "SNAPS", "MOUNTED AT", "CLAIM"
    );
    for v in list {
        let at: Vec<String> = v
            .mounts
            .iter()
            .map(|m| m.path.display().to_string())
            .collect();
        let holders: Vec<String> = v
            .holders
            .iter()
            .map(|x| format!("{}:{}", x.host, x.pid))
            .collect();
        let _ = writeln!(
            o,
            "{:<20} {:<12} {:>10} {:>10} {:>5} {:<24} {:<24} {}",
            v.name,
            v.pool,
            h(v.size_bytes),
            h(v.used_bytes),
            v.snapshots.len(),
            if at.is_empty() {
                "-".into()
            } else {
                at.join(",")
            },
            v.claim.as_deref().unwrap_or("-"),
            if holders.is_empty() {
                "-".into()
            } else {
                holders.join(",")
            }
        );
    }
    o
}

fn describe(v: &VolumeInfo) -> String {
    let h = rookery_orchestrator::preflight::human;
    let mut o = String::new();
    let _ = writeln!(o, "volume    {}/{}", v.pool, v.name);
    let _ = writeln!(
        o,
        "size      {} ({} used)",
        h(v.size_bytes),
        h(v.used_bytes)
    );
    let _ = writeln!(o, "fs        {}", v.fs);
    if let Some(c) = &v.claim {
        let _ = writeln!(o, "claim     {c} (made by the CSI driver)");
    }
    let _ = writeln!(o, "features  {}", v.features.join(", "));
    if let Some(p) = &v.parent {
        let _ = writeln!(o, "parent    {p}");
    }
    for s in &v.snapshots {
        let _ = writeln!(o, "snapshot  {} ({})", s.name, h(s.size_bytes));
    }
    for x in &v.holders {
        let _ = writeln!(o, "holder    {x}");
    }
    for m in &v.mounts {
        let _ = writeln!(
            o,
            "mounted   {} via {}{}",
            m.path.display(),
            m.loop_device.display(),
            if m.alive() {
                ""
            } else {
                " (its process is gone: the next mount clears it)"
            }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_named_once_and_a_path_is_not_a_name() {
        assert_eq!(split(None, "data1").unwrap(), ("replicapool", "data1"));
        assert_eq!(split(Some("fast"), "data1").unwrap(), ("fast", "data1"));
        assert_eq!(split(None, "fast/data1").unwrap(), ("fast", "data1"));
        assert_eq!(
            split(Some("fast"), "fast/data1").unwrap(),
            ("fast", "data1")
        );
        for bad in ["../x", "./x", "/x", "a/b/c", "po ol/x"] {
            let f = split(None, bad).unwrap_err();
            assert!(
                f.message.contains("is not a volume name"),
                "{bad}: {}",
                f.message
            );
        }
        let f = split(Some("slow"), "fast/data1").unwrap_err();
        assert!(f.message.contains("--pool says slow"), "{}", f.message);
    }
}
