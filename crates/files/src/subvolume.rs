//! Subvolumes: `fs subvolume create|ls|info|resize|rm` of the mgr's volumes module, called natively, with
//! their metadata, snapshots and clones (what the CSI driver keeps its records in and copies from).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rookery_ceph::commands::{self, subvolume};
use rookery_ceph::Rados;
use serde::{Deserialize, Serialize};

use crate::{invalid, FileError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SubvolumeInfo {
    pub name: String,
    /// Path inside the filesystem, what a mount of the subvolume roots at.
    pub path: String,
    /// None: no quota.
    pub quota_bytes: Option<u64>,
    pub used_bytes: u64,
    pub created: String,
    /// Kubernetes names recorded by the CSI driver, when it made the subvolume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// Usable: not a clone still being copied.
    #[serde(skip)]
    pub complete: bool,
}

/// The metadata key of the claim a CSI-made subvolume serves.
const META_CLAIM: &str = "csi.storage.k8s.io/pvc/name";
/// A quota as people write it (`10Gi`, `500Mi`); zero is refused.
pub fn parse_size(text: &str) -> Result<u64, FileError> {
    let q =
        rookery_spec::Quantity::parse(text.trim()).map_err(|e| invalid("size", e.to_string()))?;
    if q.0 == 0 {
        return Err(invalid(
            "size",
            "a subvolume needs a size above zero, such as 1Gi",
        ));
    }
    Ok(q.0)
}

/// Subvolume names: what the volumes module accepts and is safe in paths and records.
pub fn check_name(name: &str) -> Result<(), FileError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '-', '_'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid("name", format!(
            "{name:?} is not a valid subvolume name; use 1 to 100 letters, digits, '-', '_' and '.', starting with a letter or digit"
        )))
    }
}

fn is_errno(e: &rookery_ceph::CephError, errno: i32) -> bool {
    e.errno() == Some(-errno)
}

/// The filesystem must exist: a clear error instead of the volumes module's "volume does not exist".
fn check_fs(r: &Rados, fs: &str) -> Result<(), FileError> {
    let found = commands::fs::ls(r)?.iter().any(|f| f.name == fs);
    if found {
        Ok(())
    } else {
        Err(FileError::NotFound(format!(
            "there is no filesystem {fs:?}; `rookery status` lists them, `rookery apply -f` creates one"
        )))
    }
}

/// What the module answers ENOENT for, said properly: the filesystem or else the subvolume is missing.
fn missing(r: &Rados, fs: &str, name: &str) -> FileError {
    match check_fs(r, fs) {
        Ok(()) => FileError::NotFound(format!(
            "there is no subvolume {name} in {fs}; `rookery fs subvolume list {fs}` shows them"
        )),
        Err(e) => e,
    }
}

pub fn names(r: &Rados, fs: &str) -> Result<Vec<String>, FileError> {
    check_fs(r, fs)?;
    Ok(subvolume::ls(r, fs)?)
}

pub fn create(r: &Rados, fs: &str, name: &str, size: u64) -> Result<SubvolumeInfo, FileError> {
    check_name(name)?;
    if size == 0 {
        return Err(invalid(
            "size",
            "a subvolume needs a size above zero, such as 1Gi",
        ));
    }
    if names(r, fs)?.iter().any(|n| n == name) {
        return Err(FileError::Exists(format!(
            "subvolume {name} already exists in {fs}; choose another name, or `rookery fs subvolume resize`"
        )));
    }
    ensure(r, fs, name, size)?;
    info(r, fs, name)
}

/// Makes the subvolume with a quota of `size` bytes, or keeps the one of that name (the module's create
/// is idempotent), so a retried request finishes what a crashed one began.
pub fn ensure(r: &Rados, fs: &str, name: &str, size: u64) -> Result<(), FileError> {
    check_name(name)?;
    Ok(subvolume::create(r, fs, name, size)?)
}

/// [`ensure`] with the data in `pool`, one of the filesystem's data pools (a StorageClass's `pool`).
pub fn ensure_in_pool(
    r: &Rados,
    fs: &str,
    name: &str,
    size: u64,
    pool: &str,
) -> Result<(), FileError> {
    check_name(name)?;
    Ok(subvolume::create_in_pool(r, fs, name, size, pool)?)
}

/// The subvolume, None when there is none of that name (or no such filesystem). Its metadata (`claim`)
/// is not read: [`metadata`] is a second call.
pub fn find(r: &Rados, fs: &str, name: &str) -> Result<Option<SubvolumeInfo>, FileError> {
    check_name(name)?;
    let v = match subvolume::info(r, fs, name) {
        Ok(v) => v,
        Err(e) if is_errno(&e, libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(SubvolumeInfo {
        name: name.to_string(),
        path: v.path,
        quota_bytes: v.bytes_quota,
        used_bytes: v.bytes_used,
        created: v.created_at,
        claim: None,
        complete: v.state == "complete",
    }))
}

pub fn info(r: &Rados, fs: &str, name: &str) -> Result<SubvolumeInfo, FileError> {
    let mut v = find(r, fs, name)?.ok_or_else(|| missing(r, fs, name))?;
    v.claim = metadata(r, fs, name)
        .ok()
        .and_then(|mut m| m.remove(META_CLAIM));
    Ok(v)
}

pub fn list(r: &Rados, fs: &str) -> Result<Vec<SubvolumeInfo>, FileError> {
    let mut out = Vec::new();
    for n in names(r, fs)? {
        out.push(info(r, fs, &n)?);
    }
    Ok(out)
}

/// Every metadata key and value of the subvolume.
pub fn metadata(r: &Rados, fs: &str, name: &str) -> Result<BTreeMap<String, String>, FileError> {
    Ok(subvolume::metadata_ls(r, fs, name)?)
}

pub fn set_metadata(
    r: &Rados,
    fs: &str,
    name: &str,
    pairs: &[(&str, &str)],
) -> Result<(), FileError> {
    for (key, value) in pairs {
        subvolume::metadata_set(r, fs, name, key, value)?;
    }
    Ok(())
}

/// Sets the quota. With `no_shrink`, a size below what is stored is refused with the numbers; without
/// it, a quota below the data is set (a clone made larger than asked is brought to the asked size).
pub fn resize(
    r: &Rados,
    fs: &str,
    name: &str,
    size: u64,
    no_shrink: bool,
) -> Result<SubvolumeInfo, FileError> {
    let now = info(r, fs, name)?;
    if size == 0 {
        return Err(invalid(
            "size",
            "a subvolume needs a size above zero, such as 2Gi",
        ));
    }
    if no_shrink && size < now.used_bytes {
        return Err(invalid("size", format!(
            "subvolume {name} holds {} bytes, more than {size}; delete files first or choose a larger size",
            now.used_bytes
        )));
    }
    subvolume::resize(r, fs, name, size, no_shrink)?;
    info(r, fs, name)
}

/// Removes a subvolume and its data, refused while this host (whose mount records are in `data_dir`)
/// has it mounted.
pub fn remove_unmounted(
    r: &Rados,
    data_dir: &std::path::Path,
    fs: &str,
    name: &str,
) -> Result<(), FileError> {
    let here: Vec<String> = crate::mount::list(data_dir)?
        .iter()
        .filter(|m| m.fs == fs && m.subvolume.as_deref() == Some(name))
        .map(|m| m.path.display().to_string())
        .collect();
    if !here.is_empty() {
        return Err(FileError::InUse(format!(
            "subvolume {name} is mounted at {}; unmount it first (`rookery fs unmount PATH`)",
            here.join(", ")
        )));
    }
    remove(r, fs, name)
}

/// Removes a subvolume and its data; refused while it has snapshots. The caller checks mounts first (they
/// are this host's records).
pub fn remove(r: &Rados, fs: &str, name: &str) -> Result<(), FileError> {
    check_name(name)?;
    match subvolume::rm(r, fs, name) {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::ENOENT) => Err(missing(r, fs, name)),
        Err(e) if is_errno(&e, libc::ENOTEMPTY) || e.to_string().contains("snapshot") => {
            Err(FileError::BadRequest(format!(
                "subvolume {name} in {fs} has snapshots; delete them first"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn snapshots(r: &Rados, fs: &str, name: &str) -> Result<Vec<String>, FileError> {
    Ok(subvolume::snapshot_ls(r, fs, name)?)
}

/// Takes a snapshot; one of that name already there is kept.
pub fn snapshot_create(r: &Rados, fs: &str, name: &str, snap: &str) -> Result<(), FileError> {
    match subvolume::snapshot_create(r, fs, name, snap) {
        Err(e) if !is_errno(&e, libc::EEXIST) => Err(e.into()),
        _ => Ok(()),
    }
}

pub fn snapshot_remove(r: &Rados, fs: &str, name: &str, snap: &str) -> Result<(), FileError> {
    match subvolume::snapshot_rm(r, fs, name, snap, false) {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::ENOENT) => Err(FileError::NotFound(format!(
            "subvolume {name} in {fs} has no snapshot {snap}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// When the snapshot was taken: the module's `created_at`, `YYYY-MM-DD HH:MM:SS.ffffff` in UTC.
pub fn snapshot_created(r: &Rados, fs: &str, name: &str, snap: &str) -> Result<String, FileError> {
    Ok(subvolume::snapshot_info(r, fs, name, snap)?.created_at)
}

/// Where a clone's data comes from.
pub enum CloneSource<'a> {
    Snapshot {
        subvolume: &'a str,
        snap: &'a str,
    },
    /// A subvolume as it is now, through the snapshot `temporary`, removed once the copy is done. Its
    /// name should be the same on a retry, so a crashed attempt's snapshot is reused.
    Subvolume {
        subvolume: &'a str,
        temporary: &'a str,
    },
}

/// Clones into the new subvolume `target` and waits up to `wait` for the mgr's background copy. A clone
/// into `target` already begun is waited for, not started again.
pub fn clone(
    r: &Rados,
    fs: &str,
    from: &CloneSource,
    target: &str,
    wait: Duration,
) -> Result<(), FileError> {
    check_name(target)?;
    match *from {
        CloneSource::Snapshot { subvolume, snap } => start_clone(r, fs, subvolume, snap, target)?,
        CloneSource::Subvolume {
            subvolume,
            temporary,
        } => {
            if find(r, fs, subvolume)?.is_none() {
                return Err(missing(r, fs, subvolume));
            }
            snapshot_create(r, fs, subvolume, temporary)?;
            let started = start_clone(r, fs, subvolume, temporary, target)
                .and_then(|()| wait_clone(r, fs, target, wait));
            // Forced: the snapshot must go even while the module still counts the clone as pending.
            let _ = subvolume::snapshot_rm(r, fs, subvolume, temporary, true);
            return started;
        }
    }
    wait_clone(r, fs, target, wait)
}

fn start_clone(r: &Rados, fs: &str, sub: &str, snap: &str, target: &str) -> Result<(), FileError> {
    match subvolume::snapshot_clone(r, fs, sub, snap, target) {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
        Err(e) if is_errno(&e, libc::ENOENT) => Err(FileError::NotFound(format!(
            "snapshot {fs}/{sub}@{snap} does not exist"
        ))),
        Err(e) => Err(e.into()),
    }
}

fn wait_clone(r: &Rados, fs: &str, target: &str, wait: Duration) -> Result<(), FileError> {
    let deadline = Instant::now() + wait;
    loop {
        let s = subvolume::clone_status(r, fs, target)?;
        match s.state.as_str() {
            "complete" => return Ok(()),
            "failed" | "canceled" => {
                let why = s
                    .failure
                    .map(|f| format!(": {}", f.error_msg))
                    .unwrap_or_default();
                return Err(FileError::CloneFailed(format!(
                    "cloning into {target} {}{why}",
                    s.state
                )));
            }
            _ if Instant::now() > deadline => {
                return Err(FileError::TimedOut(format!(
                    "cloning into {target} takes over {} s; it goes on, retry later",
                    wait.as_secs()
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
