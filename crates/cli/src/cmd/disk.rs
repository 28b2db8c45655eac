//! `rookery disk list|plan`: this host's block devices, and which of them a device selection would turn
//! into OSDs, with the reason for every one it would not. Both only read: nothing is opened for writing.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use regex::Regex;
use rookery_orchestrator::disks::{self, Known, Reason, Selection, Verdict};
use rookery_orchestrator::osd_requests::OsdRequests;
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
    ///
    /// Example: rookery disk plan --use-all-devices
    ///
    /// Example: rookery disk plan --device-filter '^loop[3-5]$'
    Plan(SelectionArgs),
    /// Make one device an OSD now: it joins spec.storage.devices[] (unless the spec selects it already)
    /// and the supervisor makes the OSD. A device that holds anything (a filesystem, a partition table,
    /// another cluster's OSD) is refused unless --wipe names that same device; a device in use (mounted,
    /// held, a volume's) is refused always.
    ///
    /// Example: rookery disk add /dev/loop7
    ///
    /// Example: rookery disk add /dev/vdc --wipe /dev/vdc
    Add {
        /// The device: a kernel name (vdc), a path (/dev/vdc) or a stable name (/dev/disk/by-id/...).
        device: String,
        /// Erase what the device holds first (its partition table, filesystem or old OSD are lost):
        /// repeat the device's name here to confirm.
        #[arg(long, value_name = "DEVICE")]
        wipe: Option<String>,
        /// Return once the spec is applied instead of waiting for the OSD to run.
        #[arg(long)]
        no_wait: bool,
    },
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

/// Whether what a device holds may be erased at the user's word: data nobody uses right now. Anything
/// in use (mounted, held, open, a volume's loop device) never is.
fn wipeable(reason: &Reason) -> bool {
    matches!(
        reason,
        Reason::PartitionTable { .. }
            | Reason::HasPartitions { .. }
            | Reason::Filesystem { .. }
            | Reason::Lvm
            | Reason::Luks
            | Reason::Swap
            | Reason::OtherCluster { .. }
    )
}

fn find<'a>(inventory: &'a [Device], name: &str) -> Option<&'a Device> {
    inventory.iter().find(|d| {
        d.name == name
            || d.path == std::path::Path::new(name)
            || d.links.iter().any(|l| l == std::path::Path::new(name))
    })
}

fn add(
    layout: &Layout,
    inventory: &[Device],
    mut known: Known,
    device: &str,
    wipe: Option<&str>,
    no_wait: bool,
    output: Output,
) -> CmdResult {
    let Some(d) = find(inventory, device) else {
        let file = std::path::Path::new(device).is_file();
        return Err(Failure::bad_input(if file {
            format!("{device} is a regular file, not a block device; OSDs on files are spec.storage.osdFiles (count, size) in the data dir. Nothing was changed")
        } else {
            format!("{device}: no such block device on this host; `rookery disk list` shows them. Nothing was changed")
        }));
    };
    if let Some(w) = wipe {
        if find(inventory, w).map(|x| &x.path) != Some(&d.path) {
            return Err(Failure::bad_input(format!(
                "--wipe {w} does not name {device} ({}); to erase {device}, repeat its name: --wipe {device}. Nothing was changed",
                d.path.display()
            )));
        }
    }
    known.released.remove(d.path.to_string_lossy().as_ref());
    let selection = Selection {
        devices: vec![d.path.to_string_lossy().into_owned()],
        ..Default::default()
    };
    match disks::verdict(d, &selection, &known) {
        Verdict::Take => {}
        Verdict::Osd { id } => {
            println!(
                "{} is {} already; nothing to do",
                d.path.display(),
                id.map_or("an OSD of this cluster".into(), |i| format!("osd.{i}"))
            );
            return Ok(());
        }
        Verdict::Skip { reason } if wipeable(&reason) && wipe.is_some() => {
            devices::wipe(&d.path)
                .map_err(|e| Failure::from(anyhow!("wiping {}: {e}", d.path.display())))?;
            eprintln!("{} wiped (it {reason})", d.path.display());
            let again = devices::inventory();
            let verdict = find(&again, device).map(|x| disks::verdict(x, &selection, &known));
            if let Some(Verdict::Skip { reason }) = verdict {
                return Err(Failure::bad_input(format!(
                    "{} still cannot become an OSD after the wipe: {reason}",
                    d.path.display()
                )));
            }
        }
        Verdict::Skip { reason } if wipeable(&reason) => {
            return Err(Failure::bad_input(format!(
                "{} {reason}; nothing was changed. To erase it and make it an OSD: rookery disk add {device} --wipe {device}",
                d.path.display()
            )));
        }
        Verdict::Skip { reason } => {
            return Err(Failure::bad_input(format!(
                "{} cannot become an OSD: {reason}. Nothing was changed",
                d.path.display()
            )));
        }
    }
    let path = d.path.to_string_lossy().into_owned();
    let uuids_before: Vec<String> = ClusterState::load(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .map(|s| s.osds.into_iter().map(|o| o.uuid).collect())
        .unwrap_or_default();
    let unreleased = path.clone();
    OsdRequests::update(layout, move |q| {
        q.released.retain(|p| p.to_string_lossy() != unreleased)
    })
    .map_err(|e| Failure::from(anyhow!(e)))?;
    add_to_spec(layout, &path, &known)?;
    if no_wait {
        println!("{path} is in the spec; the supervisor makes the OSD (`rookery status`)");
        return Ok(());
    }
    let client = crate::api::Client::new(layout)?;
    let started = std::time::Instant::now();
    loop {
        let state = ClusterState::load(layout).map_err(|e| Failure::from(anyhow!(e)))?;
        let record = state.as_ref().and_then(|s| {
            s.osds
                .iter()
                .find(|o| {
                    !uuids_before.contains(&o.uuid)
                        && o.device.as_deref() == Some(std::path::Path::new(&path))
                })
                .cloned()
        });
        let ready = record.as_ref().and_then(|r| r.id).filter(|id| {
            let report: Option<rookery_orchestrator::report::ClusterReport> =
                client.get("/v1/status").ok();
            report
                .and_then(|r| r.ceph)
                .is_some_and(|c| c.osds.iter().any(|o| o.id == *id && o.up))
        });
        if let Some(id) = ready {
            match output {
                Output::Json => println!("{}", json!({"device": path, "osd": id})),
                Output::Text => println!("{path} is osd.{id}"),
            }
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            return Err(Failure::from(anyhow!(
                "{path} is in the spec but no OSD runs on it after 120 s; `rookery status` says why"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// Adds `device` to the saved CephCluster's spec.storage.devices[] through the supervisor, unless the
/// spec's own selection takes it already.
fn add_to_spec(layout: &Layout, device: &str, known: &Known) -> CmdResult {
    let platform = rookery_orchestrator::state::HostPolicy::load(layout).platform(layout);
    let host = crate::home_host(&platform)?;
    let (_, _, desired) = super::load_spec(None, layout)?;
    // Read again: a wipe may have changed what the device holds.
    let inventory = devices::inventory();
    let allow = HostPolicy::load(layout).allow_loop_devices;
    let spec_takes = find(&inventory, device).is_some_and(|d| {
        disks::verdict(
            d,
            &desired.devices.for_host(&host.name).compile(allow),
            known,
        ) == Verdict::Take
    });
    if spec_takes {
        return Ok(());
    }
    super::resources::edit_storage(layout, |storage| {
        let list = storage.entry("devices").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(json!({"name": device}));
        }
    })?;
    Ok(())
}

pub fn run(layout: &Layout, args: &DiskArgs, output: Output) -> CmdResult {
    let inventory = devices::inventory();
    let known = known(layout)?;
    match &args.command {
        DiskCommand::Add {
            device,
            wipe,
            no_wait,
        } => {
            return add(
                layout,
                &inventory,
                known,
                device,
                wipe.as_deref(),
                *no_wait,
                output,
            )
        }
        DiskCommand::List => {
            let osd_of = |d: &Device| match disks::verdict(d, &Selection::default(), &known) {
                Verdict::Osd { id } => {
                    Some(id.map_or("osd (id unknown)".into(), |i| format!("osd.{i}")))
                }
                _ => None,
            };
            // The cluster's OSD files, listed after the devices.
            let files: Vec<(String, u64, String)> = ClusterState::load(layout)
                .ok()
                .flatten()
                .map(|s| {
                    s.osds
                        .iter()
                        .filter(|o| o.device.is_none())
                        .filter_map(|o| {
                            let block = o.block.as_ref()?;
                            let size = std::fs::metadata(block).map_or(0, |m| m.len());
                            let osd =
                                o.id.map_or("osd (unfinished)".into(), |i| format!("osd.{i}"));
                            Some((block.display().to_string(), size, osd))
                        })
                        .collect()
                })
                .unwrap_or_default();
            match output {
                Output::Json => {
                    let mut list: Vec<_> = inventory
                        .iter()
                        .map(|d| json!({"device": d, "osd": osd_of(d)}))
                        .collect();
                    list.extend(files.iter().map(|(path, size, osd)| {
                        json!({"file": {"path": path, "size_bytes": size}, "osd": osd})
                    }));
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
                    for (path, size_bytes, osd) in &files {
                        println!(
                            "{:<10} {:>9} {:<9} {:<28} {:<26} {osd}",
                            "(file)",
                            size(*size_bytes),
                            "file",
                            shorten(path, 28),
                            "bluestore"
                        );
                    }
                }
            }
        }
        DiskCommand::Plan(selection) => {
            let platform = rookery_orchestrator::state::HostPolicy::load(layout).platform(layout);
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
