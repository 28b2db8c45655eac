//! `rookery volume`: block volumes (RBD images) through librbd, and mounting them on this host.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_orchestrator::Layout;
use rookery_volumes::manage::{self, VolumeInfo};
use rookery_volumes::{MountRequest, VolumeError};

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct VolumeArgs {
    /// The pool (a volume may also be named POOL/NAME).
    #[arg(long, global = true, default_value = manage::DEFAULT_POOL)]
    pub pool: String,
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
        /// Size, such as 10Gi or 500Mi.
        #[arg(long)]
        size: String,
        /// Filesystem made on first mount: ext4, xfs, or none (raw block).
        #[arg(long, default_value = "ext4")]
        fs: String,
        /// Keep the data in this erasure-coded pool (the volume's metadata stays in --pool).
        #[arg(long)]
        data_pool: Option<String>,
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
        let prefix = flag(field).map(|f| format!("{f}: ")).unwrap_or_default();
        Failure::bad_input(format!("{prefix}{}; nothing was changed", e.message()))
    } else if e.is_bad_request() {
        Failure::bad_input(format!("{e}; nothing was changed"))
    } else {
        Failure::from(anyhow!(e))
    }
}

/// `POOL/NAME` or `NAME` in the --pool pool.
fn split<'a>(pool: &'a str, name: &'a str) -> (&'a str, &'a str) {
    name.split_once('/').unwrap_or((pool, name))
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

pub fn run(layout: &Layout, args: &VolumeArgs, output: Output) -> CmdResult {
    let rados = super::connect(layout)?;
    let data = &layout.root;
    let p = args.pool.as_str();
    match &args.command {
        VolumeCommand::Create {
            name,
            size,
            fs,
            data_pool,
        } => {
            let (pool, name) = split(p, name);
            let bytes = manage::parse_size(size).map_err(failure)?;
            manage::create_in(&rados, pool, name, bytes, fs, data_pool.as_deref())
                .map_err(failure)?;
            done(
                output,
                serde_json::json!({"created": name, "pool": pool, "size_bytes": bytes}),
                format!("created volume {pool}/{name} ({size}, {fs} on first mount)"),
            )
        }
        VolumeCommand::List => {
            let list = manage::list(&rados, data, p).map_err(failure)?;
            match output {
                Output::Json => print_json(&list),
                Output::Text => {
                    print!("{}", table(&list));
                    Ok(())
                }
            }
        }
        VolumeCommand::Info { name } => {
            let (pool, name) = split(p, name);
            let info = manage::info(&rados, data, pool, name).map_err(failure)?;
            match output {
                Output::Json => print_json(&info),
                Output::Text => {
                    print!("{}", describe(&info));
                    Ok(())
                }
            }
        }
        VolumeCommand::Resize { name, size } => {
            let (pool, name) = split(p, name);
            let bytes = manage::parse_size(size).map_err(failure)?;
            for note in manage::resize(&rados, data, pool, name, bytes).map_err(failure)? {
                eprintln!("note: {note}");
            }
            done(
                output,
                serde_json::json!({"resized": name, "size_bytes": bytes}),
                format!("volume {pool}/{name} is now {size}"),
            )
        }
        VolumeCommand::Snapshot(SnapshotCommand::Create { name, snapshot }) => {
            let (pool, name) = split(p, name);
            let quiesced =
                rookery_volumes::freeze::snapshot_consistent(&rados, data, pool, name, snapshot)
                    .map_err(failure)?;
            for path in &quiesced {
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
            let (pool, name) = split(p, name);
            let info = manage::info(&rados, data, pool, name).map_err(failure)?;
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
            let (pool, name) = split(p, name);
            manage::snapshot_remove(&rados, pool, name, snapshot).map_err(failure)?;
            done(
                output,
                serde_json::json!({"removed": format!("{name}@{snapshot}")}),
                format!("removed snapshot {pool}/{name}@{snapshot}"),
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
            let (pool, name) = split(p, source);
            manage::clone(&rados, pool, name, snap, new_name, *flatten).map_err(failure)?;
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
            let (pool, name) = split(p, name);
            manage::flatten(&rados, pool, name).map_err(failure)?;
            done(
                output,
                serde_json::json!({"flattened": name}),
                format!("volume {pool}/{name} no longer depends on its parent"),
            )
        }
        VolumeCommand::Rm { name } => {
            let (pool, name) = split(p, name);
            manage::remove(&rados, pool, name).map_err(failure)?;
            done(
                output,
                serde_json::json!({"removed": name}),
                format!("removed volume {pool}/{name}"),
            )
        }
        VolumeCommand::Mount {
            name,
            path,
            read_only,
        } => {
            let (pool, name) = split(p, name);
            let req = MountRequest {
                pool: pool.to_string(),
                volume: name.to_string(),
                path: path.clone(),
                read_only: *read_only,
                conf: layout.conf(),
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
