//! Subvolumes: `fs subvolume create|ls|info|resize|rm` of the mgr's volumes module, called natively.

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
}

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
    subvolume::create(r, fs, name, size)?;
    info(r, fs, name)
}

pub fn info(r: &Rados, fs: &str, name: &str) -> Result<SubvolumeInfo, FileError> {
    check_name(name)?;
    let v = match subvolume::info(r, fs, name) {
        Ok(v) => v,
        Err(e) if is_errno(&e, libc::ENOENT) => {
            check_fs(r, fs)?;
            return Err(FileError::NotFound(format!(
                "there is no subvolume {name} in {fs}; `rookery fs subvolume list {fs}` shows them"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let claim = subvolume::metadata_ls(r, fs, name)
        .ok()
        .and_then(|mut m| m.remove("csi.storage.k8s.io/pvc/name"));
    Ok(SubvolumeInfo {
        name: name.to_string(),
        path: v.path,
        quota_bytes: v.bytes_quota,
        used_bytes: v.bytes_used,
        created: v.created_at,
        claim,
    })
}

pub fn list(r: &Rados, fs: &str) -> Result<Vec<SubvolumeInfo>, FileError> {
    let mut out = Vec::new();
    for n in names(r, fs)? {
        out.push(info(r, fs, &n)?);
    }
    Ok(out)
}

/// Sets the quota; shrinking below what is stored is refused with the numbers.
pub fn resize(r: &Rados, fs: &str, name: &str, size: u64) -> Result<SubvolumeInfo, FileError> {
    let now = info(r, fs, name)?;
    if size == 0 {
        return Err(invalid(
            "size",
            "a subvolume needs a size above zero, such as 2Gi",
        ));
    }
    if size < now.used_bytes {
        return Err(invalid("size", format!(
            "subvolume {name} holds {} bytes, more than {size}; delete files first or choose a larger size",
            now.used_bytes
        )));
    }
    subvolume::resize(r, fs, name, size, true)?;
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

/// Removes a subvolume and its data. The caller checks mounts first (they are this host's records).
pub fn remove(r: &Rados, fs: &str, name: &str) -> Result<(), FileError> {
    info(r, fs, name)?;
    subvolume::rm(r, fs, name)?;
    Ok(())
}
