//! This host's record of the mounts rookery made, in the cluster's data dir. It is what `unmount`, `down`
//! and `up` work from, and what lets a restarted host find and clear what a dead mount left behind.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MountRecord {
    pub pool: String,
    pub volume: String,
    #[schema(value_type = String)]
    pub path: PathBuf,
    pub read_only: bool,
    pub fstype: String,
    #[schema(value_type = String)]
    pub loop_device: PathBuf,
    /// Where the FUSE server serves the image file.
    #[schema(value_type = String)]
    pub fuse_dir: PathBuf,
    pub fuse_pid: u32,
    pub since_unix: u64,
    /// Unmounted by `rookery down`, to be mounted again by `rookery up`.
    #[serde(default)]
    pub remount: bool,
}

impl MountRecord {
    /// The mount works: not waiting for a remount, and its FUSE server still serves the image.
    pub fn alive(&self) -> bool {
        !self.remount && self.fuse_alive()
    }

    /// This record's FUSE server runs: the pid is alive and serves this record's FUSE directory (a reused
    /// pid, even another server, does not count).
    pub fn fuse_alive(&self) -> bool {
        rookery_platform::proc::is_alive(self.fuse_pid)
            && rookery_platform::proc::cmdline(self.fuse_pid)
                .is_some_and(|c| crate::fuse::is_server(&c, Some(&self.fuse_dir)))
    }
}

/// The record file, locked for the life of the value so concurrent CLI calls do not lose updates.
pub struct Records {
    path: PathBuf,
    _lock: File,
    pub list: Vec<MountRecord>,
}

impl Records {
    pub fn dir(data_dir: &Path) -> PathBuf {
        data_dir.join("volumes")
    }

    pub fn open(data_dir: &Path) -> std::io::Result<Records> {
        let dir = Self::dir(data_dir);
        std::fs::create_dir_all(&dir)?;
        let lock = File::create(dir.join("mounts.lock"))?;
        // SAFETY: flock on an fd we own; blocks until other rookery processes are done.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let path = dir.join("mounts.json");
        let list = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(Records {
            path,
            _lock: lock,
            list,
        })
    }

    /// The records as they are now, without the lock and without making the folder: for commands that
    /// only look (saves are atomic renames, so a read never sees half a file).
    pub fn read(data_dir: &Path) -> std::io::Result<Vec<MountRecord>> {
        let path = Self::dir(data_dir).join("mounts.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(&self.list).map_err(std::io::Error::other)?;
        rookery_ceph::conf::write_atomic(&self.path, &text, 0o600)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    pub fn find_path(&self, path: &Path) -> Option<usize> {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.list
            .iter()
            .position(|r| r.path == canon || r.path == path)
    }
}
