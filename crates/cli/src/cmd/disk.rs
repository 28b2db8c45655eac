//! `rookery disk list|plan`: this host's block devices, and which of them a device selection would turn
//! into OSDs, with the reason for every one it would not. Both only read: nothing is opened for writing.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use regex::Regex;
use rookery_orchestrator::disks::{self, Known, Selection, Verdict};
use rookery_orchestrator::state::HostPolicy;
use rookery_orchestrator::{ClusterState, Layout};
use rookery_platform::devices::{self, Device, Signature};
use serde_json::json;

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct DiskArgs {
    #[command(subcommand)]
    pub command: DiskCommand,
}

#[derive(Subcommand)]
pub enum DiskCommand {
    /// Every block device of this host: size, model or backing file, partitions, what it holds, mounts,
    /// holders, and the OSD of this cluster it serves.
    ///
    /// Example: rookery disk list -o json
    List,
    /// Dry run: which devices a selection (Rook's spec.storage terms; without flags, the cluster's own
    /// spec) would turn into OSDs, and for every other device the reason. Changes nothing.
    ///
    /// Example: rookery disk plan
    /// Example: rookery disk plan --use-all-devices
    /// Example: rookery disk plan --device-filter '^loop[3-5]$'
    Plan(SelectionArgs),
}

#[derive(Args)]
pub struct SelectionArgs {
    /// Every blank, unused disk (spec.storage.useAllDevices); loop devices and partitions only when named
    /// or matched.
    #[arg(long)]
    pub use_all_devices: bool,
    /// A regular expression on device names (spec.storage.deviceFilter), e.g. '^sd[b-d]'.
    #[arg(long)]
    pub device_filter: Option<String>,
    /// A regular expression on device paths and their /dev/disk/by-* names (spec.storage.devicePathFilter).
    #[arg(long)]
    pub device_path_filter: Option<String>,
    /// A device by name, path or stable name (spec.storage.devices[].name); repeat for several.
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// Let --use-all-devices take blank loop devices (as `rookery up --allow-loop-devices` does).
    #[arg(long)]
    pub allow_loop_devices: bool,
}

fn regex(flag: &str, value: &Option<String>) -> Result<Option<Regex>, Failure> {
    value
        .as_deref()
        .map(|v| {
            Regex::new(v).map_err(|e| {
                Failure::bad_input(format!(
                    "{flag} {v:?} is not a regular expression: {e}; e.g. {flag} '^sd[b-d]$'"
                ))
            })
        })
        .transpose()
}

impl SelectionArgs {
    fn given(&self) -> bool {
        self.use_all_devices
            || self.device_filter.is_some()
            || self.device_path_filter.is_some()
            || !self.devices.is_empty()
    }

    /// The flags' selection; without flags, the one the cluster's saved spec gives this host.
    fn selection(&self, layout: &Layout, host: &str) -> Result<Selection, Failure> {
        let allow_loop_devices =
            self.allow_loop_devices || HostPolicy::load(layout).allow_loop_devices;
        if self.given() {
            return Ok(Selection {
                use_all_devices: self.use_all_devices,
                allow_loop_devices,
                device_filter: regex("--device-filter", &self.device_filter)?,
                device_path_filter: regex("--device-path-filter", &self.device_path_filter)?,
                devices: self.devices.clone(),
            });
        }
        if !layout.spec().exists() {
            return Err(Failure::bad_input(format!(
                "{} holds no cluster spec to take the selection from; give one, e.g. --use-all-devices or --device-filter '^loop[3-5]$'",
                layout.root.display()
            )));
        }
        let (_, _, desired) = super::load_spec(None, layout)?;
        Ok(desired.devices.for_host(host).compile(allow_loop_devices))
    }
}

/// What this data dir's cluster owns on this host: its fsid, its OSDs, its volumes' loop devices.
fn known(layout: &Layout) -> Result<Known, Failure> {
    let state = ClusterState::load(layout).map_err(|e| Failure::from(anyhow!(e)))?;
    Known::of(layout, state.as_ref())
        .map_err(|e| Failure::from(anyhow!("reading this cluster's volume mounts: {e}")))
}

pub fn run(layout: &Layout, args: &DiskArgs, output: Output) -> CmdResult {
    let inventory = devices::inventory();
    let known = known(layout)?;
    match &args.command {
        DiskCommand::List => {
            let osd_of = |d: &Device| match disks::verdict(d, &Selection::default(), &known) {
                Verdict::Osd { id } => {
                    Some(id.map_or("osd (id unknown)".into(), |i| format!("osd.{i}")))
                }
                _ => None,
            };
            match output {
                Output::Json => {
                    let list: Vec<_> = inventory
                        .iter()
                        .map(|d| json!({"device": d, "osd": osd_of(d)}))
                        .collect();
                    println!("{}", json!(list));
                }
                Output::Text => {
                    println!(
                        "{:<10} {:>9} {:<9} {:<28} {:<26} USE",
                        "DEVICE", "SIZE", "KIND", "MODEL/BACKING FILE", "HOLDS"
                    );
                    for d in &inventory {
                        let source = d
                            .backing_file
                            .as_ref()
                            .map(|f| f.to_string_lossy().into_owned())
                            .or_else(|| d.model.clone())
                            .unwrap_or_else(|| "-".into());
                        let mut uses: Vec<String> = Vec::new();
                        uses.extend(osd_of(d));
                        uses.extend(
                            d.mounts
                                .iter()
                                .map(|m| format!("mounted at {}", m.display())),
                        );
                        uses.extend(d.holders.iter().map(|h| format!("held by {h}")));
                        if d.busy && uses.is_empty() {
                            uses.push("open exclusively".into());
                        }
                        if !d.partitions.is_empty() {
                            uses.push(format!("partitions {}", d.partitions.join(",")));
                        }
                        println!(
                            "{:<10} {:>9} {:<9} {:<28} {:<26} {}",
                            d.name,
                            size(d.size_bytes),
                            format!("{:?}", d.kind).to_lowercase(),
                            shorten(&source, 28),
                            holds(d),
                            if uses.is_empty() {
                                "-".into()
                            } else {
                                uses.join("; ")
                            }
                        );
                    }
                }
            }
        }
        DiskCommand::Plan(selection) => {
            let platform = rookery_platform::local::LocalPlatform::new(&layout.root);
            let host = crate::home_host(&platform)?;
            let selection = selection.selection(layout, &host.name)?;
            let plan = disks::plan(&inventory, &selection, &known);
            match output {
                Output::Json => println!("{}", json!(plan)),
                Output::Text => {
                    for p in &plan {
                        let what = match &p.verdict {
                            Verdict::Take => "would become an OSD".to_string(),
                            Verdict::Osd { id: Some(id) } => format!("osd.{id} of this cluster"),
                            Verdict::Osd { id: None } => "an OSD of this cluster".to_string(),
                            Verdict::Skip { .. } => {
                                format!("skipped: {}", p.why.clone().unwrap_or_default())
                            }
                        };
                        println!("{:<10} {:>9}  {what}", p.name, size(p.size_bytes));
                    }
                    let taken = plan.iter().filter(|p| p.verdict == Verdict::Take).count();
                    println!(
                        "{taken} device(s) would become OSDs (minimum size {}); nothing was changed",
                        size(disks::MIN_OSD_BYTES)
                    );
                }
            }
        }
    }
    Ok(())
}

fn holds(d: &Device) -> String {
    match &d.signature {
        None if d.probe_error.is_some() => "unreadable".into(),
        None => "-".into(),
        Some(Signature::PartitionTable { table }) => format!("{table} partition table"),
        Some(Signature::Filesystem { fstype }) => format!("{fstype} filesystem"),
        Some(Signature::Bluestore { cluster_fsid, .. }) => match cluster_fsid {
            Some(f) => format!("bluestore ({})", &f[..f.len().min(8)]),
            None => "bluestore".into(),
        },
        Some(Signature::LvmPhysicalVolume) => "LVM physical volume".into(),
        Some(Signature::Luks) => "LUKS".into(),
        Some(Signature::Swap) => "swap".into(),
    }
}

fn size(bytes: u64) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1}G")
    } else {
        format!("{:.0}M", bytes as f64 / (1u64 << 20) as f64)
    }
}

fn shorten(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        s.to_string()
    } else {
        let tail: String = s.chars().skip(n - (width - 1)).collect();
        format!("…{tail}")
    }
}
