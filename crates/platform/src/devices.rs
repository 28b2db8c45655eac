//! This host's block devices as facts: size, kind, model or backing file, partitions, what is written at
//! their start (a partition table, a filesystem, a BlueStore label with its cluster), where they are
//! mounted, what holds them. Read from /sys, /proc/self/mountinfo and the devices' first bytes, never
//! written. Whether a device may become an OSD is the orchestrator's decision (`orchestrator::disks`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the probe reads of a device's start: enough for every signature below (btrfs's lies at 64 KiB).
const PROBE_BYTES: usize = 68 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Disk,
    Partition,
    Loop,
    /// Device-mapper, md RAID, rbd, nbd, zram, ram: made of or by other things.
    Virtual,
}

/// What a device's first bytes say it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Signature {
    PartitionTable {
        table: String,
    },
    Filesystem {
        fstype: String,
    },
    /// A BlueStore OSD: its own id (`osd_uuid`) and the cluster's fsid when the label names it.
    Bluestore {
        osd_uuid: String,
        cluster_fsid: Option<String>,
    },
    LvmPhysicalVolume,
    Luks,
    Swap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    /// The kernel's name: `vdb`, `loop3`, `vdb1`.
    pub name: String,
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Its stable names under /dev/disk/by-id and /dev/disk/by-path.
    #[schema(value_type = Vec<String>)]
    pub links: Vec<PathBuf>,
    pub kind: DeviceKind,
    pub size_bytes: u64,
    pub read_only: bool,
    pub rotational: bool,
    pub model: Option<String>,
    /// A loop device's file; `(deleted)` at its end when the file is gone.
    #[schema(value_type = Option<String>)]
    pub backing_file: Option<PathBuf>,
    /// The filesystem type the backing file lives on (`fuse`, `ext4`), for loop devices.
    pub backing_fstype: Option<String>,
    pub partitions: Vec<String>,
    /// Devices built on it (device-mapper, md), its own or its partitions'.
    pub holders: Vec<String>,
    /// Where it or one of its partitions is mounted.
    #[schema(value_type = Vec<String>)]
    pub mounts: Vec<PathBuf>,
    /// What its first bytes hold; None when blank or unreadable (see `probe_error`).
    pub signature: Option<Signature>,
    pub probe_error: Option<String>,
    /// Another opener holds it exclusively (a mount, a holder, an OSD): opening it with O_EXCL failed.
    pub busy: bool,
}

/// Every block device of this host with a size, except RAM disks and unattached loop devices; disks'
/// partitions are listed under their disk and on their own.
pub fn inventory() -> Vec<Device> {
    let mut devices = inventory_at(Path::new("/sys/block"), Path::new("/dev"), &mounts());
    for dir in ["/dev/disk/by-id", "/dev/disk/by-path"] {
        for link in names_in(Path::new(dir)) {
            let link = Path::new(dir).join(link);
            if let Ok(target) = std::fs::canonicalize(&link) {
                if let Some(d) = devices.iter_mut().find(|d| d.path == target) {
                    d.links.push(link);
                }
            }
        }
    }
    devices
}

/// One mounted filesystem of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the device it is on.
    pub dev: String,
    pub point: PathBuf,
    pub fstype: String,
}

/// This process's mounts and, where it can see them, those of the host's init (pid 1): in a container
/// (rookery's agent runs with the host's pid namespace) a device mounted on the host counts as mounted
/// too. Empty when /proc cannot be read.
pub fn mounts() -> Vec<Mount> {
    let mut all = Vec::new();
    for source in ["/proc/self/mountinfo", "/proc/1/mountinfo"] {
        for m in std::fs::read_to_string(source)
            .map(|t| parse_mountinfo(&t))
            .unwrap_or_default()
        {
            if !all.contains(&m) {
                all.push(m);
            }
        }
    }
    all
}

/// The lines of mountinfo: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let dev = fields.get(2)?.to_string();
            let point = PathBuf::from(unescape_mount_path(fields.get(4)?));
            let fstype = after.split(' ').next()?.to_string();
            Some(Mount { dev, point, fstype })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
pub fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The filesystem type `path` lives on: that of the longest mount point above it.
pub fn fstype_of(path: &Path, mounts: &[Mount]) -> Option<String> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.point))
        .max_by_key(|m| m.point.as_os_str().len())
        .map(|m| m.fstype.clone())
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn kind_of(name: &str) -> Option<DeviceKind> {
    if name.starts_with("ram") {
        return None;
    }
    if name.starts_with("loop") {
        return Some(DeviceKind::Loop);
    }
    let virtual_prefixes = ["dm-", "md", "rbd", "nbd", "zram", "sr", "fd"];
    if virtual_prefixes.iter().any(|p| name.starts_with(p)) {
        return Some(DeviceKind::Virtual);
    }
    Some(DeviceKind::Disk)
}

fn inventory_at(sys_block: &Path, dev: &Path, mounts: &[Mount]) -> Vec<Device> {
    let mut by_dev: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for m in mounts {
        by_dev
            .entry(m.dev.clone())
            .or_default()
            .push(m.point.clone());
    }
    let mut out = Vec::new();
    for name in names_in(sys_block) {
        let Some(kind) = kind_of(&name) else { continue };
        let sys = sys_block.join(&name);
        let size_bytes = read_trimmed(&sys.join("size"))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            * 512;
        if size_bytes == 0 {
            // Unattached loop devices, empty card readers, ejected media.
            continue;
        }
        let backing_file = (kind == DeviceKind::Loop)
            .then(|| read_trimmed(&sys.join("loop/backing_file")).map(PathBuf::from))
            .flatten();
        let partitions: Vec<String> = names_in(&sys)
            .into_iter()
            .filter(|p| p.starts_with(&name) && sys.join(p).join("partition").exists())
            .collect();
        let parts = partitions.clone();
        let mut holders = names_in(&sys.join("holders"));
        let mut mount_points = read_trimmed(&sys.join("dev"))
            .and_then(|d| by_dev.get(&d).cloned())
            .unwrap_or_default();
        for p in &partitions {
            holders.extend(names_in(&sys.join(p).join("holders")));
            if let Some(points) =
                read_trimmed(&sys.join(p).join("dev")).and_then(|d| by_dev.get(&d))
            {
                mount_points.extend(points.iter().cloned());
            }
        }
        let path = dev.join(&name);
        let (signature, probe_error) = match probe(&path) {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e.to_string())),
        };
        out.push(Device {
            backing_fstype: backing_file.as_deref().and_then(|f| fstype_of(f, mounts)),
            busy: is_busy(&path),
            model: read_trimmed(&sys.join("device/model")),
            read_only: read_trimmed(&sys.join("ro")).as_deref() == Some("1"),
            rotational: read_trimmed(&sys.join("queue/rotational")).as_deref() == Some("1"),
            name,
            path,
            links: Vec::new(),
            kind,
            size_bytes,
            backing_file,
            partitions,
            holders,
            mounts: mount_points,
            signature,
            probe_error,
        });
        for p in &parts {
            out.extend(partition(&sys.join(p), p, dev, &by_dev));
        }
    }
    out
}

/// A disk's partition as a device of its own (listed after its disk).
fn partition(
    sys: &Path,
    name: &str,
    dev: &Path,
    by_dev: &BTreeMap<String, Vec<PathBuf>>,
) -> Option<Device> {
    let size_bytes = read_trimmed(&sys.join("size"))?.parse::<u64>().ok()? * 512;
    let path = dev.join(name);
    let (signature, probe_error) = match probe(&path) {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e.to_string())),
    };
    Some(Device {
        name: name.to_string(),
        links: Vec::new(),
        kind: DeviceKind::Partition,
        size_bytes,
        read_only: read_trimmed(&sys.join("ro")).as_deref() == Some("1"),
        rotational: false,
        model: None,
        backing_file: None,
        backing_fstype: None,
        partitions: Vec::new(),
        holders: names_in(&sys.join("holders")),
        mounts: read_trimmed(&sys.join("dev"))
            .and_then(|d| by_dev.get(&d).cloned())
            .unwrap_or_default(),
        signature,
        probe_error,
        busy: is_busy(&path),
        path,
    })
}

/// Whether another opener holds the device exclusively: the kernel refuses O_EXCL with EBUSY while it
/// is mounted, held by device-mapper or md, or opened O_EXCL by a daemon.
fn is_busy(path: &Path) -> bool {
    matches!(open_exclusive(path, false), Err(ClaimError::Busy { .. }))
}

/// Why a device may not get a new OSD after all.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("{device} is in use (mounted, held or open exclusively by another program)")]
    Busy { device: String },
    #[error("{device} is not blank any more: it holds {holds}")]
    NotBlank { device: String, holds: String },
    #[error("{device}: {source}")]
    Io {
        device: String,
        #[source]
        source: std::io::Error,
    },
}

/// Opens a device exclusively (O_EXCL): refused while it is mounted, held or opened so by another.
fn open_exclusive(path: &Path, write: bool) -> Result<File, ClaimError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| {
            let device = path.display().to_string();
            match source.raw_os_error() {
                Some(libc::EBUSY) => ClaimError::Busy { device },
                _ => ClaimError::Io { device, source },
            }
        })
}

/// Checks, again and now, with the device opened exclusively (so not mounted or held), that it is
/// blank, or holds the BlueStore label of `own_uuid` (an OSD whose making was interrupted). Checked at
/// the last moment: a device seen blank a few seconds ago may have been formatted since. The device is
/// released before returning: ceph-osd opens it exclusively itself.
pub fn check_blank(path: &Path, own_uuid: &str) -> Result<(), ClaimError> {
    let device = path.display().to_string();
    let _held = open_exclusive(path, false)?;
    match probe(path).map_err(|source| ClaimError::Io {
        device: device.clone(),
        source,
    })? {
        None => Ok(()),
        Some(Signature::Bluestore { osd_uuid, .. }) if osd_uuid == own_uuid => Ok(()),
        Some(other) => Err(ClaimError::NotBlank {
            device,
            holds: format!("{other:?}"),
        }),
    }
}

/// Where BlueStore keeps its label: the first block, and (Ceph 18 and later) copies at 1, 10, 100 and
/// 1000 GiB.
const LABEL_OFFSETS: [u64; 5] = [0, 1 << 30, 10 << 30, 100 << 30, 1000 << 30];
/// What is zeroed at a device's start: the label, BlueFS's superblock and its first extents, as
/// `ceph-volume lvm zap` does.
const WIPE_START: u64 = 10 << 20;

/// Makes a removed OSD's device blank again, only if its BlueStore label names `osd_uuid` (so nothing
/// else is ever wiped).
pub fn wipe_osd_label(path: &Path, osd_uuid: &str) -> Result<(), ClaimError> {
    let device = path.display().to_string();
    match probe(path).map_err(|source| ClaimError::Io {
        device: device.clone(),
        source,
    })? {
        Some(Signature::Bluestore { osd_uuid: u, .. }) if u == osd_uuid => wipe(path),
        None => Ok(()),
        Some(other) => Err(ClaimError::NotBlank {
            device,
            holds: format!("{other:?}, not the label of OSD {osd_uuid}"),
        }),
    }
}

/// Erases what makes a device look used: its first 10 MiB (partition table, filesystem superblocks,
/// LVM and LUKS headers, BlueStore's label and BlueFS), every BlueStore label copy, and its last MiB
/// (GPT's backup table). Opened exclusively, so a mounted or held device is refused. Only ever called
/// for a device the user named for wiping, or an OSD of ours by its label.
pub fn wipe(path: &Path) -> Result<(), ClaimError> {
    use std::io::{Seek, SeekFrom, Write};
    let device = path.display().to_string();
    let io = |source| ClaimError::Io {
        device: device.clone(),
        source,
    };
    let mut f = open_exclusive(path, true)?;
    let size = f.seek(SeekFrom::End(0)).map_err(io)?;
    let zeros = vec![0u8; 1 << 20];
    let mut zero = |from: u64, len: u64| -> std::io::Result<()> {
        let end = (from + len).min(size);
        let mut at = from;
        while at < end {
            let n = (end - at).min(zeros.len() as u64);
            f.seek(SeekFrom::Start(at))?;
            f.write_all(&zeros[..n as usize])?;
            at += n;
        }
        Ok(())
    };
    zero(0, WIPE_START).map_err(io)?;
    for offset in LABEL_OFFSETS.into_iter().filter(|o| *o >= WIPE_START) {
        zero(offset, 4096).map_err(io)?;
    }
    zero(size.saturating_sub(1 << 20), 1 << 20).map_err(io)?;
    f.sync_all().map_err(io)
}

/// The device whose BlueStore label names OSD `osd_uuid`, among `devices`.
pub fn find_osd(devices: &[Device], osd_uuid: &str) -> Option<PathBuf> {
    devices.iter().find_map(|d| match &d.signature {
        Some(Signature::Bluestore { osd_uuid: u, .. }) if u == osd_uuid => Some(d.path.clone()),
        _ => None,
    })
}

/// Reads the device's first bytes (read-only) and names what they hold.
fn probe(path: &Path) -> std::io::Result<Option<Signature>> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; PROBE_BYTES];
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(signature(&buf))
}

fn at(buf: &[u8], offset: usize, magic: &[u8]) -> bool {
    buf.get(offset..offset + magic.len()) == Some(magic)
}

fn le_u32(buf: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        buf.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

/// What the first bytes of a device hold, the way blkid would name it; None when none is recognised.
pub fn signature(buf: &[u8]) -> Option<Signature> {
    let fs = |t: &str| {
        Some(Signature::Filesystem {
            fstype: t.to_string(),
        })
    };
    if at(buf, 0, b"bluestore block device\n") {
        return Some(bluestore_label(buf));
    }
    if at(buf, 0, b"LUKS\xba\xbe") {
        return Some(Signature::Luks);
    }
    if at(buf, 512, b"LABELONE") && at(buf, 512 + 24, b"LVM2 001") {
        return Some(Signature::LvmPhysicalVolume);
    }
    if at(buf, 512, b"EFI PART") || at(buf, 4096, b"EFI PART") {
        return Some(Signature::PartitionTable {
            table: "gpt".into(),
        });
    }
    if at(buf, 0, b"XFSB") {
        return fs("xfs");
    }
    if at(buf, 1024 + 56, &[0x53, 0xEF]) {
        // The superblock's feature words: extents mean ext4, a journal ext3.
        let compat = le_u32(buf, 1024 + 0x5C).unwrap_or(0);
        let incompat = le_u32(buf, 1024 + 0x60).unwrap_or(0);
        return fs(if incompat & 0x40 != 0 {
            "ext4"
        } else if compat & 0x4 != 0 {
            "ext3"
        } else {
            "ext2"
        });
    }
    if at(buf, 65536 + 64, b"_BHRfS_M") {
        return fs("btrfs");
    }
    if at(buf, 4096 - 10, b"SWAPSPACE2") || at(buf, 4096 - 10, b"SWAP-SPACE") {
        return Some(Signature::Swap);
    }
    if at(buf, 3, b"NTFS    ") {
        return fs("ntfs");
    }
    if at(buf, 54, b"FAT") || at(buf, 82, b"FAT32") {
        return fs("vfat");
    }
    if at(buf, 510, &[0x55, 0xAA]) {
        // An MBR: four 16-byte entries at 446; a partition type byte (offset 4) that is not 0 marks one.
        let used = (0..4).any(|i| buf.get(446 + i * 16 + 4).is_some_and(|t| *t != 0));
        if used {
            return Some(Signature::PartitionTable {
                table: "dos".into(),
            });
        }
    }
    None
}

/// BlueStore's label: "bluestore block device\n<osd uuid>\n", then an encoded struct whose meta map
/// holds `ceph_fsid` as length-prefixed strings.
fn bluestore_label(buf: &[u8]) -> Signature {
    let head = b"bluestore block device\n".len();
    let osd_uuid = buf
        .get(head..head + 36)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let label = &buf[..buf.len().min(4096)];
    let key = b"ceph_fsid";
    let cluster_fsid = label
        .windows(key.len())
        .position(|w| w == key)
        .and_then(|i| {
            let start = i + key.len();
            let len = le_u32(label, start)? as usize;
            let value = label.get(start + 4..start + 4 + len)?;
            (len == 36).then(|| String::from_utf8_lossy(value).into_owned())
        });
    Signature::Bluestore {
        osd_uuid,
        cluster_fsid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> Vec<u8> {
        vec![0u8; PROBE_BYTES]
    }

    #[test]
    fn signatures_are_named() {
        assert_eq!(signature(&blank()), None);
        let mut gpt = blank();
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(
            signature(&gpt),
            Some(Signature::PartitionTable {
                table: "gpt".into()
            })
        );
        let mut ext4 = blank();
        ext4[1024 + 56] = 0x53;
        ext4[1024 + 57] = 0xEF;
        ext4[1024 + 0x60] = 0x40;
        assert_eq!(
            signature(&ext4),
            Some(Signature::Filesystem {
                fstype: "ext4".into()
            })
        );
        let mut xfs = blank();
        xfs[..4].copy_from_slice(b"XFSB");
        assert_eq!(
            signature(&xfs),
            Some(Signature::Filesystem {
                fstype: "xfs".into()
            })
        );
        let mut mbr = blank();
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        assert_eq!(signature(&mbr), None, "a boot signature alone is no table");
        mbr[446 + 4] = 0x83;
        assert_eq!(
            signature(&mbr),
            Some(Signature::PartitionTable {
                table: "dos".into()
            })
        );
        let mut swap = blank();
        swap[4086..4096].copy_from_slice(b"SWAPSPACE2");
        assert_eq!(signature(&swap), Some(Signature::Swap));
    }

    #[test]
    fn bluestore_label_names_its_cluster() {
        let mut b = blank();
        let uuid = "0b8e0d44-6a41-4a55-9b0c-1b2f6f3b7e11";
        let fsid = "5e7e2c35-55a5-4b4e-8e4f-0a6d3d1f2c90";
        let mut label = b"bluestore block device\n".to_vec();
        label.extend_from_slice(uuid.as_bytes());
        label.push(b'\n');
        label.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        label.extend_from_slice(&9u32.to_le_bytes());
        label.extend_from_slice(b"ceph_fsid");
        label.extend_from_slice(&36u32.to_le_bytes());
        label.extend_from_slice(fsid.as_bytes());
        b[..label.len()].copy_from_slice(&label);
        // The key's own length prefix precedes it; the value's follows it.
        assert_eq!(
            signature(&b),
            Some(Signature::Bluestore {
                osd_uuid: uuid.into(),
                cluster_fsid: Some(fsid.into())
            })
        );
    }

    #[test]
    fn mountinfo_is_read() {
        let text = "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - ext4 /dev/vdb rw\n\
                    40 35 0:50 / /run/x rw shared:2 - fuse.rookery rookery rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].dev, "98:0");
        assert_eq!(m[0].point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[1].fstype, "fuse.rookery");
        assert_eq!(
            fstype_of(Path::new("/run/x/vol"), &m).as_deref(),
            Some("fuse.rookery")
        );
        assert_eq!(fstype_of(Path::new("/srv"), &m), None);
    }

    #[test]
    fn this_hosts_inventory_reads() {
        // Whatever this host has: every listed device has a size and a /dev path.
        for d in inventory() {
            assert!(d.size_bytes > 0 && d.path.starts_with("/dev"), "{d:?}");
        }
    }
}
