//! Quiescing the filesystems of a volume mounted on this host while a snapshot is taken, so the snapshot
//! holds everything written before it (what an application saw as written sits in the page cache, and
//! with the FUSE server's write-back cache, in librbd's memory too). FIFREEZE writes all of it out and
//! holds new writes until FITHAW; a snapshot taken in between is consistent, not merely crash-consistent.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::records::Records;
use crate::VolumeError;

/// `_IOWR('X', 119, int)` and `_IOWR('X', 120, int)` from linux/fs.h.
const FIFREEZE: libc::c_ulong = 0xC004_5877;
const FITHAW: libc::c_ulong = 0xC004_5878;

/// The filesystems this value froze; they are thawed when it is dropped, whatever happened meanwhile.
#[derive(Default)]
pub struct Frozen {
    mounts: Vec<(PathBuf, File)>,
}

impl Frozen {
    /// Thaws them now; returns the mount points that were frozen.
    pub fn thaw(mut self) -> Vec<PathBuf> {
        self.thaw_all()
    }

    fn thaw_all(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.mounts)
            .into_iter()
            .map(|(path, dir)| {
                if let Err(e) = ioctl(&dir, FITHAW) {
                    tracing::error!(path = %path.display(), error = %e, "could not thaw a frozen filesystem; run `fsfreeze -u` on it");
                }
                path
            })
            .collect()
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.thaw_all();
    }
}

fn ioctl(dir: &File, request: libc::c_ulong) -> std::io::Result<()> {
    // SAFETY: FIFREEZE/FITHAW take no argument memory; the fd is open for the call.
    if unsafe { libc::ioctl(dir.as_raw_fd(), request, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Freezes every live read-write filesystem mount of `pool/volume` that rookery made on this host.
/// A filesystem that cannot be frozen (one frozen already by someone else, say) is synced instead and
/// left as it is.
pub fn freeze_mounts(data_dir: &Path, pool: &str, volume: &str) -> Result<Frozen, VolumeError> {
    let targets: Vec<PathBuf> = {
        let records = Records::open(data_dir)?;
        records
            .list
            .iter()
            .filter(|r| r.pool == pool && r.volume == volume)
            .filter(|r| !r.read_only && r.fstype != "none" && r.alive())
            .map(|r| r.path.clone())
            .collect()
    };
    let mut frozen = Frozen::default();
    for path in targets {
        let dir = File::open(&path)?;
        match ioctl(&dir, FIFREEZE) {
            Ok(()) => frozen.mounts.push((path, dir)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not freeze; syncing instead");
                // SAFETY: syncfs on an fd we own.
                if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
                    return Err(std::io::Error::last_os_error().into());
                }
            }
        }
    }
    Ok(frozen)
}

/// Takes snapshot `snap` of `pool/volume` with its read-write mounts on this host frozen around it, so it
/// holds every write made before it; returns the paths that were frozen.
pub fn snapshot_consistent(
    rados: &rookery_ceph::Rados,
    data_dir: &Path,
    pool: &str,
    volume: &str,
    snap: &str,
) -> Result<Vec<PathBuf>, VolumeError> {
    let frozen = freeze_mounts(data_dir, pool, volume)?;
    let created = crate::manage::snapshot_create(rados, pool, volume, snap);
    let quiesced = frozen.thaw();
    created.map(|()| quiesced)
}

/// Thaws `path` if it is frozen: a rookery process killed between freeze and thaw leaves its writers
/// waiting, and unmounting is where that gets noticed. Not frozen (EINVAL) is the usual answer.
pub fn thaw_leftover(path: &Path) {
    if let Ok(dir) = File::open(path) {
        if ioctl(&dir, FITHAW).is_ok() {
            tracing::warn!(path = %path.display(), "thawed a filesystem left frozen");
        }
    }
}
