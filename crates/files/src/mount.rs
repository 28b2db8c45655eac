//! CephFS mounts by ceph-fuse: start it detached (mounts outlive the command), wait until the kernel shows
//! the mount, record it; unmount and wait for ceph-fuse to leave. Records live in `<data>/files/` under a
//! lock, so `down` can unmount everything and `up` can mount it again.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rookery_ceph::Rados;
use rookery_volumes::mounts;
use serde::{Deserialize, Serialize};

use crate::{bad, subvolume, FileError};

const FUSE_TYPE: &str = "fuse.ceph-fuse";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FsMount {
    pub fs: String,
    pub subvolume: Option<String>,
    /// The directory inside the filesystem that is mounted.
    pub root: String,
    pub path: PathBuf,
    pub read_only: bool,
    pub pid: u32,
    /// Unmounted by `rookery down`; `rookery up` mounts it again.
    #[serde(default)]
    pub suspended: bool,
}

impl FsMount {
    /// `fs` or `fs:subvolume`, as the user names it.
    pub fn source(&self) -> String {
        match &self.subvolume {
            Some(s) => format!("{}:{s}", self.fs),
            None => self.fs.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MountRequest {
    pub fs: String,
    pub subvolume: Option<String>,
    pub path: PathBuf,
    pub read_only: bool,
    pub conf: PathBuf,
    /// Who ceph-fuse acts as.
    pub identity: rookery_ceph::Identity,
    pub data_dir: PathBuf,
}

/// The record file, locked while the value lives.
pub struct Records {
    path: PathBuf,
    _lock: File,
    pub list: Vec<FsMount>,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> FileError {
    FileError::Io(format!("{what}: {e}"))
}

impl Records {
    pub fn open(data_dir: &Path) -> Result<Records, FileError> {
        let dir = data_dir.join("files");
        std::fs::create_dir_all(&dir).map_err(|e| io_err("creating the records folder", e))?;
        let lock = File::create(dir.join("mounts.lock")).map_err(|e| io_err("locking", e))?;
        // SAFETY: flock on an fd we own; blocks until other rookery processes are done.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_err("locking", std::io::Error::last_os_error()));
        }
        let path = dir.join("mounts.json");
        let list = match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|e| io_err(&path.display().to_string(), e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path.display().to_string(), e)),
        };
        Ok(Records {
            path,
            _lock: lock,
            list,
        })
    }

    pub fn save(&self) -> Result<(), FileError> {
        let text = serde_json::to_vec_pretty(&self.list).map_err(|e| io_err("records", e))?;
        rookery_ceph::conf::write_atomic(&self.path, &text, 0o600)
            .map_err(|e| io_err("saving the records", e))
    }
}

/// Whether `pid` is a ceph-fuse serving `path` (a reused pid does not count).
pub fn serving(pid: u32, path: &Path) -> bool {
    let target = path.display().to_string();
    rookery_platform::proc::cmdline(pid)
        .is_some_and(|c| c.first().is_some_and(|p| p.ends_with("ceph-fuse")) && c.contains(&target))
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Drops records whose ceph-fuse is gone (killed, or the host restarted), lazily unmounting what is left
/// of them, so they block nothing. Suspended records stay for `up`.
fn clear_dead(records: &mut Records) {
    records.list.retain(|m| {
        if m.suspended || serving(m.pid, &m.path) {
            return true;
        }
        if mounts::mounted_at(&m.path).is_some_and(|e| e.fstype == FUSE_TYPE) {
            lazy_unmount(&m.path);
        }
        false
    });
}

fn lazy_unmount(path: &Path) {
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
        // SAFETY: valid NUL-terminated path. Nothing answers behind a dead FUSE mount, so detach it.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(4)..].join("\n")
}

/// Starts ceph-fuse for `root` of `fs` at `path` and waits until the mount is there.
fn start(req: &MountRequest, root: &str, path: &Path) -> Result<u32, FileError> {
    let exe = rookery_ceph::tools::find_program("ceph-fuse").ok_or_else(|| {
        bad("ceph-fuse is not installed; install it with: apt-get install -y ceph-fuse")
    })?;
    let tag = req.subvolume.clone().unwrap_or_else(|| "root".into());
    // A CSI node plugin's data dir starts empty: the log folder may not be there yet.
    std::fs::create_dir_all(req.data_dir.join("log"))
        .map_err(|e| io_err("creating the ceph-fuse log folder", e))?;
    let log = req
        .data_dir
        .join("log")
        .join(format!("ceph-fuse.{}.{tag}.log", req.fs));
    // Appended to, so that the platform's log rotation can empty it in place (logs.rs).
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(
            req.data_dir
                .join("log")
                .join(format!("ceph-fuse.{}.{tag}.stdout", req.fs)),
        )
        .map_err(|e| io_err("creating the ceph-fuse log", e))?;
    let err = out
        .try_clone()
        .map_err(|e| io_err("creating the ceph-fuse log", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--conf").arg(&req.conf).args([
        "--id",
        &req.identity.user,
        "--client_fs",
        &req.fs,
        "-r",
        root,
    ]);
    if let Some(key_file) = &req.identity.key_file {
        cmd.arg("--keyfile").arg(key_file);
    }
    cmd.arg("--log-file").arg(&log).arg(path).arg("-f");
    if req.read_only {
        cmd.args(["-o", "ro"]);
    }
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    rookery_platform::proc::detach(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| io_err("starting ceph-fuse", e))?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if mounts::mounted_at(path).is_some_and(|e| e.fstype == FUSE_TYPE) {
            // ceph-fuse keeps running; init reaps it once this command exits.
            return Ok(pid);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(FileError::Io(format!(
                "ceph-fuse exited ({status}) before mounting {}: {}",
                path.display(),
                log_tail(&log)
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FileError::Io(format!(
                "ceph-fuse did not mount {} within 20 s; see {}",
                path.display(),
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mounts a filesystem (or one subvolume of it) at an existing, unused directory.
pub fn mount(r: &Rados, req: &MountRequest) -> Result<FsMount, FileError> {
    let meta = std::fs::metadata(&req.path).map_err(|_| {
        bad(format!(
            "the mount point {} does not exist; create it first (mkdir -p {})",
            req.path.display(),
            req.path.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(bad(format!("{} is not a directory", req.path.display())));
    }
    let path = canonical(&req.path);
    let root = match &req.subvolume {
        Some(s) => subvolume::info(r, &req.fs, s)?.path,
        None => {
            subvolume::names(r, &req.fs)?;
            "/".to_string()
        }
    };
    let mut records = Records::open(&req.data_dir)?;
    clear_dead(&mut records);
    if let Some(m) = mounts::mounted_at(&path) {
        return Err(bad(format!(
            "{} is already a mount point ({} {}); unmount it or choose another directory",
            path.display(),
            m.fstype,
            m.source
        )));
    }
    records.list.retain(|m| m.path != path);
    let pid = start(req, &root, &path)?;
    let record = FsMount {
        fs: req.fs.clone(),
        subvolume: req.subvolume.clone(),
        root,
        path,
        read_only: req.read_only,
        pid,
        suspended: false,
    };
    records.list.push(record.clone());
    records.save()?;
    Ok(record)
}

/// Unmounts and waits until ceph-fuse has left (it flushes dirty data first).
fn teardown(m: &FsMount) -> Result<(), FileError> {
    if mounts::mounted_at(&m.path).is_some_and(|e| e.fstype == FUSE_TYPE) {
        mounts::unmount(&m.path).map_err(|e| bad(e.to_string()))?;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while serving(m.pid, &m.path) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if serving(m.pid, &m.path) {
        rookery_platform::proc::terminate(m.pid, Duration::from_secs(5));
    }
    Ok(())
}

/// Unmounts the mount at `path`, or the only mount of `fs[:subvolume]`.
pub fn unmount(data_dir: &Path, what: &str) -> Result<FsMount, FileError> {
    let mut records = Records::open(data_dir)?;
    let target = canonical(Path::new(what));
    let matches: Vec<usize> = records
        .list
        .iter()
        .enumerate()
        .filter(|(_, m)| m.path == target || m.source() == what)
        .map(|(i, _)| i)
        .collect();
    let i = match matches.as_slice() {
        [i] => *i,
        [] => {
            return Err(bad(format!(
                "nothing of rookery's is mounted at or from {what}; `rookery fs mounts` lists the mounts"
            )))
        }
        many => {
            let paths: Vec<String> = many
                .iter()
                .map(|i| records.list[*i].path.display().to_string())
                .collect();
            return Err(bad(format!(
                "{what} is mounted at {}; name the path to unmount",
                paths.join(", ")
            )));
        }
    };
    let m = records.list[i].clone();
    if !m.suspended {
        teardown(&m)?;
    }
    records.list.remove(i);
    records.save()?;
    Ok(m)
}

/// This host's mounts (dead ones cleared first).
pub fn list(data_dir: &Path) -> Result<Vec<FsMount>, FileError> {
    let mut records = Records::open(data_dir)?;
    clear_dead(&mut records);
    records.save()?;
    Ok(records.list)
}

/// Unmounts every live mount (before the cluster stops). With `keep`, marks them for `resume_all`;
/// without, forgets them (the cluster is being purged).
pub fn suspend_all(data_dir: &Path, keep: bool) -> Result<Vec<FsMount>, FileError> {
    let mut records = Records::open(data_dir)?;
    let mut done = Vec::new();
    for m in records.list.iter_mut().filter(|m| !m.suspended) {
        if serving(m.pid, &m.path) {
            teardown(m)?;
        } else if mounts::mounted_at(&m.path).is_some_and(|e| e.fstype == FUSE_TYPE) {
            lazy_unmount(&m.path);
        }
        m.suspended = true;
        done.push(m.clone());
    }
    if !keep {
        records.list.clear();
    }
    records.save()?;
    Ok(done)
}

/// A mount `resume_all` tried to restore, and how that went.
pub type Resumed = (FsMount, Result<(), FileError>);

/// Mounts again what `suspend_all` unmounted, and what a host restart took away; one result per mount.
pub fn resume_all(
    conf: &Path,
    identity: &rookery_ceph::Identity,
    data_dir: &Path,
) -> Result<Vec<Resumed>, FileError> {
    let mut records = Records::open(data_dir)?;
    let mut done = Vec::new();
    for m in records.list.iter_mut() {
        if !m.suspended && serving(m.pid, &m.path) {
            continue;
        }
        if mounts::mounted_at(&m.path).is_some_and(|e| e.fstype == FUSE_TYPE) {
            lazy_unmount(&m.path);
        }
        let req = MountRequest {
            fs: m.fs.clone(),
            subvolume: m.subvolume.clone(),
            path: m.path.clone(),
            read_only: m.read_only,
            conf: conf.to_path_buf(),
            identity: identity.clone(),
            data_dir: data_dir.to_path_buf(),
        };
        // A subvolume's path never changes, so the recorded root is used as is.
        let result = start(&req, &m.root, &m.path).map(|pid| {
            m.pid = pid;
            m.suspended = false;
        });
        done.push((m.clone(), result));
    }
    records.save()?;
    Ok(done)
}
