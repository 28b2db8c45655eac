//! Which of a host's devices may become OSDs, and for every other one the plain reason why not: a pure
//! decision over the platform's device facts (`rookery_platform::devices`) and the cluster's selection,
//! in Rook's terms (`useAllDevices`, `deviceFilter`, `devicePathFilter`, `devices[]`).
//!
//! The rule that matters most: nothing that holds data is ever taken. A device is taken only when it is
//! selected, blank (no partition table, filesystem, LVM, LUKS, swap or BlueStore label), not mounted, not
//! held, not open exclusively, writable, large enough, and not the loop device of a volume someone uses.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use rookery_platform::devices::{Device, DeviceKind, Signature};
use serde::{Deserialize, Serialize};

/// BlueStore on less than this leaves too little room once its DB and WAL take theirs; ceph-volume
/// refuses devices under 5 GiB too.
pub const MIN_OSD_BYTES: u64 = 5 << 30;

/// One host's selection as the spec words it (filters as text): the cluster-wide settings, or a node's
/// own merged over them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectionSpec {
    pub use_all_devices: bool,
    pub device_filter: Option<String>,
    pub device_path_filter: Option<String>,
    /// Named devices with their own device class, if any.
    pub devices: Vec<(String, Option<String>)>,
    /// The device class of every OSD this selection makes (Ceph guesses hdd or ssd when unset).
    pub device_class: Option<String>,
}

impl SelectionSpec {
    /// Whether it selects anything at all.
    pub fn is_empty(&self) -> bool {
        !self.use_all_devices
            && self.device_filter.is_none()
            && self.device_path_filter.is_none()
            && self.devices.is_empty()
    }

    /// The selection to decide by; the spec's filters were checked when it was loaded, so one that does
    /// not compile selects nothing.
    pub fn compile(&self, allow_loop_devices: bool) -> Selection {
        let regex = |f: &Option<String>| f.as_deref().and_then(|f| Regex::new(f).ok());
        Selection {
            use_all_devices: self.use_all_devices,
            allow_loop_devices,
            device_filter: regex(&self.device_filter),
            device_path_filter: regex(&self.device_path_filter),
            devices: self.devices.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// The class an OSD on `d` gets: its devices[] entry's, else the selection's.
    pub fn class_of(&self, d: &Device) -> Option<String> {
        self.devices
            .iter()
            .find(|(n, _)| names(n, d))
            .and_then(|(_, c)| c.clone())
            .or_else(|| self.device_class.clone())
    }
}

/// Whether `name` (a kernel name, a path or a stable name) is device `d`.
fn names(name: &str, d: &Device) -> bool {
    name == d.name
        || std::path::Path::new(name) == d.path
        || d.links.iter().any(|l| std::path::Path::new(name) == l)
}

/// Which devices the cluster asks for, as Rook's `spec.storage` names them.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub use_all_devices: bool,
    /// The host lets `useAllDevices` take blank loop devices (Rook's ROOK_CEPH_ALLOW_LOOP_DEVICES).
    pub allow_loop_devices: bool,
    /// Matched against the device's kernel name (`^sd[b-d]`).
    pub device_filter: Option<Regex>,
    /// Matched against its path and its /dev/disk/by-* names.
    pub device_path_filter: Option<Regex>,
    /// Named devices: a kernel name (`vdb`), a path (`/dev/vdb`) or a stable name (`/dev/disk/by-id/...`).
    pub devices: Vec<String>,
}

impl Selection {
    fn named(&self, d: &Device) -> bool {
        self.devices.iter().any(|n| names(n, d))
    }

    /// The named devices that are not among `devices`.
    pub fn missing<'a>(&'a self, devices: &[Device]) -> Vec<&'a str> {
        self.devices
            .iter()
            .filter(|n| !devices.iter().any(|d| names(n, d)))
            .map(String::as_str)
            .collect()
    }

    fn filtered(&self, d: &Device) -> bool {
        self.device_filter
            .as_ref()
            .is_some_and(|f| f.is_match(&d.name))
            || self.device_path_filter.as_ref().is_some_and(|f| {
                f.is_match(&d.path.to_string_lossy())
                    || d.links.iter().any(|l| f.is_match(&l.to_string_lossy()))
            })
    }
}

/// What the cluster knows of its own: its fsid, its OSDs by BlueStore uuid, the loop devices of its
/// volumes (their mount records) by device path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Known {
    pub fsid: Option<String>,
    pub osds: BTreeMap<String, u32>,
    pub volume_loops: BTreeMap<String, String>,
    /// Devices freed by `osd rm` (paths), and devices promised to an `osd replace`: left alone.
    pub released: std::collections::BTreeSet<String>,
    pub promised: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// It would become an OSD.
    Take,
    /// It is an OSD of this cluster already.
    Osd {
        id: Option<u32>,
    },
    Skip {
        reason: Reason,
    },
}

/// Why a device is not taken, each worded for a person in `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    NotSelected,
    LoopNotNamed,
    PartitionNotNamed,
    Virtual,
    HasPartitions { partitions: Vec<String> },
    PartitionTable { table: String },
    Filesystem { fstype: String },
    Lvm,
    Luks,
    Swap,
    OtherCluster { fsid: Option<String> },
    Mounted { at: String },
    Held { by: Vec<String> },
    Busy,
    VolumeLoop { volume: String },
    FuseBacked { file: String },
    ReadOnly,
    TooSmall { size_bytes: u64, min_bytes: u64 },
    Unreadable { error: String },
    Released,
    Promised,
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotSelected => {
                write!(
                    f,
                    "not selected: useAllDevices is off and no filter or devices[] entry names it"
                )
            }
            Reason::LoopNotNamed => write!(
                f,
                "a loop device: taken only when devices[] names it, a filter matches it, or the host allows loop devices (rookery up --allow-loop-devices)"
            ),
            Reason::PartitionNotNamed => write!(
                f,
                "a partition: taken only when devices[] names it or a filter matches it"
            ),
            Reason::Virtual => write!(
                f,
                "a virtual device (device-mapper, md, rbd, nbd or zram): made of other devices"
            ),
            Reason::HasPartitions { partitions } => {
                write!(f, "has partitions ({})", partitions.join(", "))
            }
            Reason::PartitionTable { table } => write!(f, "has a partition table ({table})"),
            Reason::Filesystem { fstype } => write!(f, "holds an {fstype} filesystem"),
            Reason::Lvm => write!(f, "an LVM physical volume"),
            Reason::Luks => write!(f, "LUKS-encrypted"),
            Reason::Swap => write!(f, "swap space"),
            Reason::OtherCluster { fsid: Some(fsid) } => {
                write!(f, "belongs to another Ceph cluster (fsid {fsid})")
            }
            Reason::OtherCluster { fsid: None } => {
                write!(f, "holds a BlueStore OSD of a cluster it does not name")
            }
            Reason::Mounted { at } => write!(f, "mounted at {at}"),
            Reason::Held { by } => write!(f, "in use by {}", by.join(", ")),
            Reason::Busy => write!(f, "open exclusively by another program"),
            Reason::VolumeLoop { volume } => write!(f, "the loop device of volume {volume}"),
            Reason::FuseBacked { file } => write!(
                f,
                "a loop device over {file}, a file on FUSE (a mounted volume's, most likely)"
            ),
            Reason::ReadOnly => write!(f, "read-only"),
            Reason::TooSmall {
                size_bytes,
                min_bytes,
            } => write!(f, "{}, need at least {}", gib(*size_bytes), gib(*min_bytes)),
            Reason::Unreadable { error } => write!(f, "could not read its first bytes: {error}"),
            Reason::Released => write!(
                f,
                "freed by `rookery osd rm` or `osd replace`; `rookery disk add DEVICE` makes it an OSD again"
            ),
            Reason::Promised => write!(f, "the new device of an `rookery osd replace` under way"),
        }
    }
}

impl Known {
    /// What the cluster in `layout` owns on this host: its fsid, its OSDs, its volumes' loop devices.
    pub fn of(
        layout: &crate::Layout,
        state: Option<&crate::ClusterState>,
    ) -> std::io::Result<Known> {
        let mut known = Known::default();
        if let Some(state) = state {
            known.fsid = Some(state.fsid.clone());
            known.osds = state
                .osds
                .iter()
                .filter_map(|o| Some((o.uuid.clone(), o.id?)))
                .collect();
        }
        known.volume_loops = rookery_volumes::records::Records::read(&layout.root)?
            .into_iter()
            .map(|r| {
                (
                    r.loop_device.to_string_lossy().into_owned(),
                    format!("{}/{}", r.pool, r.volume),
                )
            })
            .collect();
        let requests = crate::osd_requests::OsdRequests::load(layout);
        known.released = requests
            .released
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        known.promised = requests
            .requests
            .iter()
            .filter_map(|q| q.replace_with.as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        Ok(known)
    }
}

/// One device's verdict, with the facts a person reads it by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DevicePlan {
    pub name: String,
    pub path: String,
    pub size_bytes: u64,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The reason in words, for skipped devices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The verdict of every device, in the inventory's order.
pub fn plan(devices: &[Device], selection: &Selection, known: &Known) -> Vec<DevicePlan> {
    devices
        .iter()
        .map(|d| {
            let verdict = verdict(d, selection, known);
            DevicePlan {
                name: d.name.clone(),
                path: d.path.to_string_lossy().into_owned(),
                size_bytes: d.size_bytes,
                why: match &verdict {
                    Verdict::Skip { reason } => Some(reason.to_string()),
                    _ => None,
                },
                verdict,
            }
        })
        .collect()
}

fn skip(reason: Reason) -> Verdict {
    Verdict::Skip { reason }
}

/// One device: who uses it and what it holds first (those reasons protect data and hold whatever the
/// spec says), then whether the spec selects it, then whether it can serve as an OSD.
pub fn verdict(d: &Device, selection: &Selection, known: &Known) -> Verdict {
    let path = d.path.to_string_lossy();
    if let Some(volume) = known.volume_loops.get(path.as_ref()) {
        return skip(Reason::VolumeLoop {
            volume: volume.clone(),
        });
    }
    if let Some(file) = &d.backing_file {
        if d.backing_fstype
            .as_deref()
            .is_some_and(|t| t == "fuse" || t.starts_with("fuse."))
        {
            return skip(Reason::FuseBacked {
                file: file.to_string_lossy().into_owned(),
            });
        }
    }
    if let Some(at) = d.mounts.first() {
        return skip(Reason::Mounted {
            at: at.to_string_lossy().into_owned(),
        });
    }
    if !d.holders.is_empty() {
        return skip(Reason::Held {
            by: d.holders.clone(),
        });
    }
    match &d.signature {
        Some(Signature::Bluestore {
            osd_uuid,
            cluster_fsid,
        }) => {
            let ours = known.fsid.is_some() && cluster_fsid == &known.fsid;
            return if ours {
                Verdict::Osd {
                    id: known.osds.get(osd_uuid).copied(),
                }
            } else {
                skip(Reason::OtherCluster {
                    fsid: cluster_fsid.clone(),
                })
            };
        }
        Some(Signature::PartitionTable { table }) => {
            return skip(if d.partitions.is_empty() {
                Reason::PartitionTable {
                    table: table.clone(),
                }
            } else {
                Reason::HasPartitions {
                    partitions: d.partitions.clone(),
                }
            })
        }
        Some(Signature::Filesystem { fstype }) => {
            return skip(Reason::Filesystem {
                fstype: fstype.clone(),
            })
        }
        Some(Signature::LvmPhysicalVolume) => return skip(Reason::Lvm),
        Some(Signature::Luks) => return skip(Reason::Luks),
        Some(Signature::Swap) => return skip(Reason::Swap),
        None => {}
    }
    if !d.partitions.is_empty() {
        return skip(Reason::HasPartitions {
            partitions: d.partitions.clone(),
        });
    }
    if d.busy {
        return skip(Reason::Busy);
    }
    if let Some(error) = &d.probe_error {
        return skip(Reason::Unreadable {
            error: error.clone(),
        });
    }
    if known.promised.contains(path.as_ref()) {
        return skip(Reason::Promised);
    }
    if known.released.contains(path.as_ref()) {
        return skip(Reason::Released);
    }
    let explicit = selection.named(d) || selection.filtered(d);
    match d.kind {
        DeviceKind::Virtual if !explicit => return skip(Reason::Virtual),
        DeviceKind::Loop
            if !(explicit || selection.use_all_devices && selection.allow_loop_devices) =>
        {
            return skip(Reason::LoopNotNamed)
        }
        DeviceKind::Partition if !explicit => return skip(Reason::PartitionNotNamed),
        DeviceKind::Disk if !explicit && !selection.use_all_devices => {
            return skip(Reason::NotSelected)
        }
        _ => {}
    }
    if d.read_only {
        return skip(Reason::ReadOnly);
    }
    if d.size_bytes < MIN_OSD_BYTES {
        return skip(Reason::TooSmall {
            size_bytes: d.size_bytes,
            min_bytes: MIN_OSD_BYTES,
        });
    }
    Verdict::Take
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A blank device of `gib` GiB at /dev/NAME, for the tests of what is made of devices.
    pub(crate) fn device(name: &str, kind: DeviceKind, gib: u64) -> Device {
        Device {
            name: name.into(),
            path: PathBuf::from(format!("/dev/{name}")),
            links: vec![],
            kind,
            size_bytes: gib << 30,
            read_only: false,
            rotational: false,
            model: None,
            backing_file: None,
            backing_fstype: None,
            partitions: vec![],
            holders: vec![],
            mounts: vec![],
            signature: None,
            probe_error: None,
            busy: false,
        }
    }

    fn all() -> Selection {
        Selection {
            use_all_devices: true,
            ..Default::default()
        }
    }

    fn why(d: &Device, s: &Selection, k: &Known) -> String {
        match verdict(d, s, k) {
            Verdict::Skip { reason } => reason.to_string(),
            v => format!("{v:?}"),
        }
    }

    #[test]
    fn a_blank_disk_is_taken_when_all_devices_are_used() {
        let d = device("vdb", DeviceKind::Disk, 20);
        assert_eq!(verdict(&d, &all(), &Known::default()), Verdict::Take);
        assert_eq!(
            why(&d, &Selection::default(), &Known::default()),
            "not selected: useAllDevices is off and no filter or devices[] entry names it"
        );
    }

    #[test]
    fn anything_holding_data_is_skipped_with_its_reason() {
        let k = Known::default();
        let mut d = device("vdb", DeviceKind::Disk, 20);
        d.signature = Some(Signature::PartitionTable {
            table: "gpt".into(),
        });
        assert_eq!(why(&d, &all(), &k), "has a partition table (gpt)");
        d.partitions = vec!["vdb1".into()];
        assert_eq!(why(&d, &all(), &k), "has partitions (vdb1)");
        let mut d = device("vdc", DeviceKind::Disk, 20);
        d.signature = Some(Signature::Filesystem {
            fstype: "ext4".into(),
        });
        assert_eq!(why(&d, &all(), &k), "holds an ext4 filesystem");
        let mut d = device("vdd", DeviceKind::Disk, 20);
        d.mounts = vec![PathBuf::from("/srv")];
        assert_eq!(why(&d, &all(), &k), "mounted at /srv");
        let mut d = device("vde", DeviceKind::Disk, 20);
        d.holders = vec!["dm-0".into()];
        assert_eq!(why(&d, &all(), &k), "in use by dm-0");
        let mut d = device("vdf", DeviceKind::Disk, 20);
        d.read_only = true;
        assert_eq!(why(&d, &all(), &k), "read-only");
        let d = device("vdg", DeviceKind::Disk, 3);
        assert_eq!(why(&d, &all(), &k), "3.0 GiB, need at least 5.0 GiB");
        let mut d = device("vdh", DeviceKind::Disk, 20);
        d.signature = Some(Signature::Bluestore {
            osd_uuid: "u".into(),
            cluster_fsid: Some("other".into()),
        });
        assert_eq!(
            why(&d, &all(), &k),
            "belongs to another Ceph cluster (fsid other)"
        );
    }

    #[test]
    fn loop_devices_with_use_all_devices_only_where_the_host_allows_them() {
        let d = device("loop5", DeviceKind::Loop, 10);
        let spec = SelectionSpec {
            use_all_devices: true,
            devices: vec![("vdb".into(), Some("nvme".into()))],
            device_class: Some("ssd".into()),
            ..Default::default()
        };
        let k = Known::default();
        assert!(why(&d, &spec.compile(false), &k).contains("--allow-loop-devices"));
        assert_eq!(verdict(&d, &spec.compile(true), &k), Verdict::Take);
        assert_eq!(spec.class_of(&d).as_deref(), Some("ssd"));
        let vdb = device("vdb", DeviceKind::Disk, 10);
        assert_eq!(spec.class_of(&vdb).as_deref(), Some("nvme"));
        assert_eq!(
            spec.compile(false).missing(std::slice::from_ref(&d)),
            ["vdb"],
            "a named device that is not there"
        );
        assert!(spec.compile(false).missing(&[d, vdb]).is_empty());
    }

    #[test]
    fn a_named_device_with_data_is_still_skipped() {
        let mut d = device("vdb", DeviceKind::Disk, 20);
        d.signature = Some(Signature::Filesystem {
            fstype: "xfs".into(),
        });
        let s = Selection {
            devices: vec!["/dev/vdb".into()],
            ..Default::default()
        };
        assert_eq!(why(&d, &s, &Known::default()), "holds an xfs filesystem");
    }

    #[test]
    fn loop_devices_only_when_named_or_matched_and_never_a_volumes() {
        let d = device("loop3", DeviceKind::Loop, 10);
        assert!(why(&d, &all(), &Known::default()).starts_with("a loop device"));
        let named = Selection {
            devices: vec!["loop3".into()],
            ..Default::default()
        };
        assert_eq!(verdict(&d, &named, &Known::default()), Verdict::Take);
        let filtered = Selection {
            device_filter: Some(Regex::new("^loop[0-9]+$").unwrap()),
            ..Default::default()
        };
        assert_eq!(verdict(&d, &filtered, &Known::default()), Verdict::Take);
        let k = Known {
            volume_loops: [("/dev/loop3".to_string(), "replicapool/db".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            why(&d, &named, &k),
            "the loop device of volume replicapool/db"
        );
        let mut fuse = device("loop4", DeviceKind::Loop, 10);
        fuse.backing_file = Some(PathBuf::from("/var/lib/rookery-csi/fuse/x/vol"));
        fuse.backing_fstype = Some("fuse".into());
        assert!(why(&fuse, &filtered, &Known::default()).contains("a file on FUSE"));
    }

    #[test]
    fn path_filters_match_stable_names() {
        let mut d = device("vdb", DeviceKind::Disk, 20);
        d.links = vec![PathBuf::from("/dev/disk/by-path/virtio-pci-0000:00:05.0")];
        let s = Selection {
            device_path_filter: Some(Regex::new("^/dev/disk/by-path/virtio-pci-").unwrap()),
            ..Default::default()
        };
        assert_eq!(verdict(&d, &s, &Known::default()), Verdict::Take);
    }

    #[test]
    fn this_clusters_osd_is_recognised() {
        let mut d = device("vdb", DeviceKind::Disk, 20);
        d.signature = Some(Signature::Bluestore {
            osd_uuid: "u1".into(),
            cluster_fsid: Some("ours".into()),
        });
        let k = Known {
            fsid: Some("ours".into()),
            osds: [("u1".to_string(), 4)].into(),
            ..Default::default()
        };
        assert_eq!(verdict(&d, &all(), &k), Verdict::Osd { id: Some(4) });
    }
}
