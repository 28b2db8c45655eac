//! `rookery fs`: CephFS subvolumes (requests to the supervisor's control API) and mounts on this host
//! (done here: they act on this host's kernel).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_files::mount::{self, MountRequest};
use rookery_files::subvolume::SubvolumeInfo;
use rookery_files::FileError;
use rookery_orchestrator::Layout;

use crate::api::{self, Body, Client, Refusal};
use crate::control::{CreateSubvolume, ErrorBody, Resize};
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct FsArgs {
    #[command(subcommand)]
    pub command: FsCommand,
}

#[derive(Subcommand)]
pub enum FsCommand {
    /// Subvolumes: directories with a size limit, the unit a workload mounts.
    ///
    /// Example: rookery fs subvolume create myfs app1 --size 10Gi
    #[command(subcommand)]
    Subvolume(SubvolumeCommand),
    /// Mount a filesystem, or one subvolume of it (FS:SUBVOLUME), at an existing directory.
    ///
    /// Example: rookery fs mount myfs:app1 /mnt/app1
    Mount {
        /// FS or FS:SUBVOLUME.
        source: String,
        path: PathBuf,
        #[arg(long)]
        read_only: bool,
    },
    /// Unmount by path (or by FS:SUBVOLUME when it is mounted once).
    ///
    /// Example: rookery fs unmount /mnt/app1
    Unmount { target: String },
    /// This host's CephFS mounts.
    ///
    /// Example: rookery fs mounts -o json
    Mounts,
}

#[derive(Subcommand)]
pub enum SubvolumeCommand {
    /// Example: rookery fs subvolume create myfs app1 --size 10Gi
    Create {
        fs: String,
        name: String,
        /// The quota: writes beyond it fail.
        #[arg(long)]
        size: String,
    },
    /// Example: rookery fs subvolume list myfs
    List { fs: String },
    /// Example: rookery fs subvolume info myfs app1
    Info { fs: String, name: String },
    /// Change the quota (refused below what is stored).
    ///
    /// Example: rookery fs subvolume resize myfs app1 --size 20Gi
    Resize {
        fs: String,
        name: String,
        #[arg(long)]
        size: String,
    },
    /// Remove a subvolume and its files (refused while mounted here).
    ///
    /// Example: rookery fs subvolume rm myfs app1
    Rm { fs: String, name: String },
}

fn failure(e: FileError) -> Failure {
    if e.is_bad_request() {
        Failure::bad_input(format!("{e}; nothing was changed"))
    } else {
        Failure::from(anyhow!(e))
    }
}

/// The API's error as the CLI words it: 4xx is a refusal of the request (exit 2), its field worded as
/// the option that sets it (names are positional, which the message already names).
fn api_failure(status: u16, e: ErrorBody) -> Failure {
    if (400..500).contains(&status) {
        let prefix = match e.field.as_deref() {
            Some("size") => "--size: ",
            _ => "",
        };
        Failure::bad_input(format!("{prefix}{}; nothing was changed", e.message))
    } else {
        Failure::from(anyhow!(e.message))
    }
}

fn subvolumes_path(fs: &str) -> String {
    format!("/v1/filesystems/{}/subvolumes", api::enc(fs))
}

fn subvolume_path(fs: &str, name: &str) -> String {
    format!("{}/{}", subvolumes_path(fs), api::enc(name))
}

/// A quota change or removal waits on the MDS; a slow one is not a failure.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);

fn print_json(v: &impl serde::Serialize) -> CmdResult {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Failure::from(anyhow!(e)))?
    );
    Ok(())
}

fn human(b: u64) -> String {
    rookery_orchestrator::preflight::human(b)
}

fn show(info: &SubvolumeInfo, mounts: &[mount::FsMount], fs: &str) -> String {
    let here: Vec<String> = mounts
        .iter()
        .filter(|m| m.fs == fs && m.subvolume.as_deref() == Some(info.name.as_str()))
        .map(|m| m.path.display().to_string())
        .collect();
    format!(
        "{:<20} {:>10} {:>10}  {:<24} {}{}",
        info.name,
        human(info.used_bytes),
        info.quota_bytes.map_or("none".into(), human),
        if here.is_empty() {
            "-".to_string()
        } else {
            here.join(",")
        },
        info.path,
        info.claim
            .as_ref()
            .map(|c| format!("  (claim {c})"))
            .unwrap_or_default()
    )
}

pub fn run(layout: &Layout, args: &FsArgs, output: Output) -> CmdResult {
    match &args.command {
        FsCommand::Subvolume(cmd) => subvolume_cmd(layout, cmd, output),
        FsCommand::Mount {
            source,
            path,
            read_only,
        } => {
            let rados = super::connect(layout)?;
            let (fs, sub) = match source.split_once(':') {
                Some((f, s)) => (f.to_string(), Some(s.to_string())),
                None => (source.clone(), None),
            };
            let m = mount::mount(
                &rados,
                &MountRequest {
                    fs,
                    subvolume: sub,
                    path: path.clone(),
                    read_only: *read_only,
                    conf: layout.conf(),
                    identity: rookery_ceph::Identity::admin(),
                    data_dir: layout.root.clone(),
                },
            )
            .map_err(failure)?;
            match output {
                Output::Json => print_json(&m),
                Output::Text => {
                    println!(
                        "{} mounted at {}{}",
                        m.source(),
                        m.path.display(),
                        if m.read_only { " (read-only)" } else { "" }
                    );
                    Ok(())
                }
            }
        }
        FsCommand::Unmount { target } => {
            let m = mount::unmount(&layout.root, target).map_err(failure)?;
            match output {
                Output::Json => print_json(&m),
                Output::Text => {
                    println!("{} unmounted from {}", m.source(), m.path.display());
                    Ok(())
                }
            }
        }
        FsCommand::Mounts => {
            let list = mount::list(&layout.root).map_err(failure)?;
            match output {
                Output::Json => print_json(&list),
                Output::Text => {
                    for m in list {
                        println!(
                            "{:<24} {}{}{}",
                            m.source(),
                            m.path.display(),
                            if m.read_only { " (read-only)" } else { "" },
                            if m.suspended {
                                " (unmounted by `down`; `up` mounts it again)"
                            } else {
                                ""
                            }
                        );
                    }
                    Ok(())
                }
            }
        }
    }
}

fn subvolume_cmd(layout: &Layout, cmd: &SubvolumeCommand, output: Output) -> CmdResult {
    let client = Client::new(layout)?;
    // This host's mounts, read here only to show where each subvolume is mounted.
    let mounts = mount::list(&layout.root).unwrap_or_default();
    let word = |r: Refusal| r.word(api_failure);
    let one = |info: SubvolumeInfo, fs: &str, verb: &str| -> CmdResult {
        match output {
            Output::Json => print_json(&info),
            Output::Text => {
                if !verb.is_empty() {
                    println!("subvolume {} {verb}", info.name);
                }
                println!("{}", show(&info, &mounts, fs));
                Ok(())
            }
        }
    };
    match cmd {
        SubvolumeCommand::Create { fs, name, size } => {
            let req = CreateSubvolume {
                name: name.clone(),
                size: size.clone(),
            };
            let info = client
                .send(
                    "POST",
                    &subvolumes_path(fs),
                    Some(Body::json(&req)?),
                    CHANGE_TIMEOUT,
                )
                .map_err(word)?;
            one(info, fs, "created")
        }
        SubvolumeCommand::Info { fs, name } => {
            let info = client.get(&subvolume_path(fs, name)).map_err(word)?;
            one(info, fs, "")
        }
        SubvolumeCommand::Resize { fs, name, size } => {
            let req = Resize { size: size.clone() };
            let info = client
                .send(
                    "POST",
                    &format!("{}/resize", subvolume_path(fs, name)),
                    Some(Body::json(&req)?),
                    CHANGE_TIMEOUT,
                )
                .map_err(word)?;
            one(info, fs, "resized")
        }
        SubvolumeCommand::List { fs } => {
            let list: Vec<SubvolumeInfo> = client.get(&subvolumes_path(fs)).map_err(word)?;
            match output {
                Output::Json => print_json(&list),
                Output::Text => {
                    println!(
                        "{:<20} {:>10} {:>10}  {:<24} PATH",
                        "NAME", "USED", "QUOTA", "MOUNTED AT"
                    );
                    for info in &list {
                        println!("{}", show(info, &mounts, fs));
                    }
                    Ok(())
                }
            }
        }
        SubvolumeCommand::Rm { fs, name } => {
            client
                .send::<()>("DELETE", &subvolume_path(fs, name), None, CHANGE_TIMEOUT)
                .map_err(word)?;
            match output {
                Output::Json => print_json(&serde_json::json!({"removed": name, "fs": fs})),
                Output::Text => {
                    println!("subvolume {name} removed from {fs}");
                    Ok(())
                }
            }
        }
    }
}
