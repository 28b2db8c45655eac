//! Mount and unmount: FUSE server (librbd AIO) -> loop (direct I/O) -> filesystem, and back in the reverse
//! order.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rookery_ceph::rbd::Image;
use rookery_ceph::{IoCtx, Rados};

use crate::format::{decide_format, FormatDecision, FormatFacts, Signature};
use crate::holder::{self, Holder};
use crate::records::{MountRecord, Records};
use crate::{loopdev, mapper, mounts, tools, VolumeError, META_FS};

#[derive(Debug, Clone)]
pub struct MountRequest {
    pub pool: String,
    pub volume: String,
    pub path: PathBuf,
    pub read_only: bool,
    /// The cluster's ceph.conf (for the FUSE server) and data dir (records, FUSE mount points).
    pub conf: PathBuf,
    /// Who the FUSE server acts as.
    pub identity: rookery_ceph::Identity,
    pub data_dir: PathBuf,
    /// Map only: the loop device is the result (raw block use); no filesystem is looked for, made or
    /// mounted, and `path` only names the record.
    pub raw: bool,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn errno_is(e: &rookery_ceph::CephError, errno: i32) -> bool {
    e.errno() == Some(-errno)
}

pub fn open_pool<'a>(rados: &'a Rados, pool: &str) -> Result<IoCtx<'a>, VolumeError> {
    rados.ioctx(pool).map_err(|e| {
        if errno_is(&e, libc::ENOENT) {
            VolumeError::NotFound(format!(
                "pool {pool:?} does not exist; `rookery status` lists the pools"
            ))
        } else {
            e.into()
        }
    })
}

pub fn open_image<'a>(
    io: &'a IoCtx<'a>,
    pool: &str,
    volume: &str,
) -> Result<Image<'a>, VolumeError> {
    Image::open(io, volume).map_err(|e| {
        if errno_is(&e, libc::ENOENT) {
            VolumeError::NotFound(format!(
                "there is no volume {volume:?} in pool {pool:?}; `rookery volume list` shows them"
            ))
        } else {
            e.into()
        }
    })
}

/// The RADOS object that records a volume's holders. Kept apart from the image so claims never touch the
/// image's header, whose exclusive lock belongs to the data path (the FUSE server).
pub(crate) fn holders_object(volume: &str) -> String {
    format!("rookery.volume.{volume}")
}

/// Serialises claims on one volume across processes and hosts: a RADOS lock that expires by itself, so a
/// claimer that crashes cannot block the volume for long.
pub(crate) struct ClaimLock<'a> {
    io: &'a IoCtx<'a>,
    oid: String,
    cookie: String,
    /// False once the object is removed: the lock went with it, and unlocking would be a wasted round trip.
    held: bool,
}

impl<'a> ClaimLock<'a> {
    pub(crate) fn take(io: &'a IoCtx<'a>, volume: &str) -> Result<ClaimLock<'a>, VolumeError> {
        let oid = holders_object(volume);
        let cookie = format!("{}-{}", std::process::id(), now_unix());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // Long enough for every call made under it, each bounded by the client's 10 s op timeout.
            match io.lock_exclusive(&oid, "claim", &cookie, Duration::from_secs(120)) {
                Ok(()) => {
                    return Ok(ClaimLock {
                        io,
                        oid,
                        cookie,
                        held: true,
                    })
                }
                Err(e)
                    if (errno_is(&e, libc::EBUSY) || errno_is(&e, libc::EEXIST))
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl ClaimLock<'_> {
    /// Removes the volume's holder object, which ends the lock too (for a volume that is gone).
    pub(crate) fn remove_object(mut self, volume: &str) {
        if let Err(e) = crate::index::forget(self.io, volume) {
            tracing::warn!(volume, error = %e, "the volume's index records stay behind");
        }
        if self.io.remove(&self.oid).is_ok() {
            self.held = false;
        }
    }
}

impl Drop for ClaimLock<'_> {
    fn drop(&mut self) {
        if self.held {
            let _ = self.io.unlock(&self.oid, "claim", &self.cookie);
        }
    }
}

pub(crate) fn read_holders(io: &IoCtx, volume: &str) -> Result<Vec<Holder>, VolumeError> {
    // Records are in the pool's index; older versions kept them in the lock object's data.
    let stored = match crate::index::holders_raw(io, volume)? {
        Some(bytes) => Ok(bytes),
        None => io.read_all(&holders_object(volume)),
    };
    match stored {
        Ok(bytes) if bytes.is_empty() => Ok(Vec::new()),
        // An unreadable list must not read as "nobody holds it": that would allow a second writer.
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            VolumeError::Other(format!(
                "the holder record of volume {volume} (key holders.{volume} of {}) cannot be read ({e}); mounting or removing it is refused until it is fixed",
                crate::index::OBJECT
            ))
        }),
        Err(e) if errno_is(&e, libc::ENOENT) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

fn write_holders(io: &IoCtx, volume: &str, holders: &[Holder]) -> Result<(), VolumeError> {
    let text = serde_json::to_vec(holders).map_err(|e| VolumeError::Other(e.to_string()))?;
    crate::index::set_holders(io, volume, &text)
}

pub(crate) fn fuse_serves(pid: u32) -> bool {
    rookery_platform::proc::is_alive(pid)
        && rookery_platform::proc::cmdline(pid).is_some_and(|c| crate::fuse::is_server(&c, None))
}

/// Takes the volume for `new`, releasing holders that are gone. Err(Busy) names the live holder.
fn claim(
    io: &IoCtx,
    image: &Image,
    volume: &str,
    new: Holder,
) -> Result<Vec<(Holder, String)>, VolumeError> {
    let _lock = ClaimLock::take(io, volume)?;
    let here = holder::this_host();
    let existing = read_holders(io, volume)?;
    // Our own handle and our new FUSE server each watch the image; a third watcher is another client.
    let watched = !existing.is_empty() && image.watchers()? > 2;
    let outcome = holder::claim(existing, new, |h| {
        holder::liveness(h, &here, fuse_serves, watched)
    })
    .map_err(|msg| VolumeError::Busy(format!("volume {volume}: {msg}")))?;
    write_holders(io, volume, &outcome.holders)?;
    // With no live holder besides us, whoever still holds the image's exclusive lock is a client that died
    // (its watch lingers for 30 s): take the lock away now, which also blocklists it.
    if !outcome.released.is_empty() && outcome.holders.len() == 1 {
        for (mode, owner) in image.lock_owners()? {
            tracing::warn!(%owner, "breaking the image lock of a holder that is gone");
            image.break_lock(mode, &owner)?;
        }
    }
    Ok(outcome.released)
}

/// Removes this host's holder entries for `pid` (or every dead one of this host).
fn release(io: &IoCtx, volume: &str, pid: u32) -> Result<(), VolumeError> {
    let _lock = ClaimLock::take(io, volume)?;
    let here = holder::this_host();
    let holders: Vec<Holder> = read_holders(io, volume)?
        .into_iter()
        .filter(|h| !(h.host == here.0 && (h.pid == pid || !fuse_serves(h.pid))))
        .collect();
    write_holders(io, volume, &holders)
}

fn path_tag(path: &Path) -> String {
    // FNV-1a of the mount path: a short, stable name for the FUSE mount point of this mount.
    let h = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{h:016x}")
}

/// Starts the FUSE server for one image and waits until it serves the image file.
fn start_fuse(req: &MountRequest, fuse_dir: &Path) -> Result<(u32, PathBuf), VolumeError> {
    std::fs::create_dir_all(fuse_dir)?;
    let mut cmd = tools::fuse_server_command(
        &req.conf,
        &req.identity,
        &req.pool,
        &req.volume,
        fuse_dir,
        req.read_only,
    )?;
    // A CSI node plugin's data dir starts empty: the log folder may not be there yet.
    let log_dir = req.data_dir.join("log");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| VolumeError::Other(format!("creating {}: {e}", log_dir.display())))?;
    let log_path = log_dir.join(format!("fuse.{}.{}.log", req.pool, req.volume));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| VolumeError::Other(format!("opening {}: {e}", log_path.display())))?;
    let log2 = log.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
    rookery_platform::proc::detach(&mut cmd);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let file = fuse_dir.join(&req.volume);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if mounts::is_mount_point(fuse_dir) && file.exists() {
            // The child is reaped by init once this command exits; the server keeps running.
            std::mem::forget(child);
            return Ok((pid, file));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(4).collect();
            return Err(VolumeError::Other(format!(
                "the FUSE server exited ({status}) before serving the volume: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("; ")
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    if mounts::is_mount_point(fuse_dir) {
        let _ = lazy_unmount(fuse_dir);
    }
    Err(VolumeError::Other(format!(
        "the FUSE server did not serve {} within 15 s; see {}",
        file.display(),
        log_path.display()
    )))
}

/// Whether a loop device's backing file is the record's FUSE file. The kernel names it from where the
/// reader stands: a FUSE mount made in a mount namespace that is gone since (a CSI node plugin's container,
/// restarted) is detached, and its file reads as `/<volume>`.
pub(crate) fn backs(rec: &MountRecord, backing: &Path) -> bool {
    backing.starts_with(&rec.fuse_dir) || backing == Path::new("/").join(&rec.volume)
}

/// Takes down what a mount record describes, innermost first: filesystem, loop device, FUSE. Works on the
/// remains of a mount whose FUSE server died (lazy unmounts there: nothing behind them answers any more).
/// While the filesystem of a live mount is mounted anywhere else (a bind mount into a container, say) or the
/// loop device stays in use, it stops with an error and leaves the server running: killing it then would
/// drop that filesystem's unwritten data.
/// Returns only once the server has closed the image: before the cluster stops (or the server would wait
/// for OSDs that are gone), and before anyone removes the volume or mounts it elsewhere (it is open until
/// then). Our server takes milliseconds for it, the last flush included.
pub fn teardown(rec: &MountRecord) -> Result<(), VolumeError> {
    let dead = !rec.fuse_alive();
    let ours = |m: &mounts::MountEntry| Path::new(&m.source) == rec.loop_device;
    if mounts::mounted_at(&rec.path).is_some_and(|m| ours(&m)) {
        if dead {
            lazy_unmount(&rec.path)?;
        } else {
            crate::freeze::thaw_leftover(&rec.path);
            mounts::unmount(&rec.path)?;
        }
    }
    let attached = loopdev::backing_file(&rec.loop_device).is_some_and(|b| backs(rec, &b));
    if attached && !dead {
        if let Some(other) = mounts::table().into_iter().find(|m| ours(m)) {
            return Err(VolumeError::Busy(format!(
                "volume {} is still mounted at {} (a bind mount?); unmount it there first",
                rec.volume,
                other.target.display()
            )));
        }
    }
    if attached {
        loopdev::detach(&rec.loop_device)?;
        // LOOP_CLR_FD only marks a device that is still open; it lets go once the last user closes it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while loopdev::backing_file(&rec.loop_device).is_some_and(|b| backs(rec, &b)) {
            if Instant::now() > deadline {
                if dead {
                    break;
                }
                return Err(VolumeError::Busy(format!(
                    "{} is still in use, so volume {} stays served; close what uses it and unmount again",
                    rec.loop_device.display(),
                    rec.volume
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut clean = true;
    if mounts::is_mount_point(&rec.fuse_dir) {
        // A passing user (udev probing the loop device) makes the first try fail with EBUSY.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match mounts::unmount(&rec.fuse_dir) {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline && !dead => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(_) => {
                    lazy_unmount(&rec.fuse_dir)?;
                    clean = false;
                    break;
                }
            }
        }
    }
    // Once its mount is gone the server flushes, closes the image and exits by itself (it releases the
    // image's exclusive lock). A signal before that would leave the lock to expire (30 s) instead.
    let deadline = Instant::now() + Duration::from_secs(if clean { 15 } else { 0 });
    while rec.fuse_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if rec.fuse_alive() {
        rookery_platform::proc::terminate(rec.fuse_pid, Duration::from_secs(5));
    }
    let _ = std::fs::remove_dir(&rec.fuse_dir);
    Ok(())
}

fn lazy_unmount(target: &Path) -> Result<(), VolumeError> {
    let c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| VolumeError::Other("bad path".into()))?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(VolumeError::Other(format!(
                "unmounting {}: {e}",
                target.display()
            )));
        }
    }
    Ok(())
}

/// Clears the remains of mounts whose FUSE server is gone (killed, or the host restarted), so they block
/// nothing. Returns what was cleared.
pub fn clear_dead(records: &mut Records) -> Vec<MountRecord> {
    let (dead, live): (Vec<MountRecord>, Vec<MountRecord>) = records
        .list
        .drain(..)
        .partition(|r| !r.remount && !r.alive());
    records.list = live;
    for r in &dead {
        if let Err(e) = teardown(r) {
            tracing::warn!(path = %r.path.display(), error = %e, "could not fully clear a dead mount");
        }
    }
    dead
}

/// Mounts a volume at `req.path`, formatting it first only if it is blank.
pub fn mount(rados: &Rados, req: &MountRequest) -> Result<MountRecord, VolumeError> {
    let path = std::fs::canonicalize(&req.path).map_err(|_| {
        VolumeError::BadRequest(format!(
            "mount point {} does not exist; create it first (mkdir -p)",
            req.path.display()
        ))
    })?;
    if !path.is_dir() {
        return Err(VolumeError::BadRequest(format!(
            "mount point {} is not a directory",
            path.display()
        )));
    }
    let mut records = Records::open(&req.data_dir)?;
    for r in clear_dead(&mut records) {
        tracing::info!(volume = %r.volume, path = %r.path.display(), "cleared a mount whose process was gone");
    }
    // Mounting by hand what `down` left to remount replaces that pending remount.
    records
        .list
        .retain(|r| !(r.remount && r.path == path && r.volume == req.volume));
    records.save()?;
    if let Some(m) = mounts::mounted_at(&path) {
        return Err(VolumeError::BadRequest(format!(
            "{} is already in use: {} ({}) is mounted there; choose another path or unmount it",
            path.display(),
            m.source,
            m.fstype
        )));
    }
    let mapper = mapper::best().ok_or_else(|| {
        VolumeError::Other(
            "this host offers no way to map a volume: it needs /dev/fuse and /dev/loop-control"
                .into(),
        )
    })?;
    let io = open_pool(rados, &req.pool)?;
    let image = open_image(&io, &req.pool, &req.volume)?;
    if let Some(problem) =
        mapper::incompatibility(mapper, &req.volume, &req.pool, image.features()?)
    {
        return Err(VolumeError::BadRequest(problem));
    }
    let fstype = image
        .metadata_get(META_FS)?
        .unwrap_or_else(|| "ext4".into());
    if fstype == "none" && !req.raw {
        return Err(VolumeError::BadRequest(format!(
            "volume {} is a raw block volume (made with fs none); it has no filesystem to mount",
            req.volume
        )));
    }

    let fuse_dir = crate::records::Records::dir(&req.data_dir)
        .join("fuse")
        .join(format!("{}.{}.{}", req.pool, req.volume, path_tag(&path)));
    let (fuse_pid, file) = start_fuse(req, &fuse_dir)?;
    let (host, boot_id) = holder::this_host();
    let me = Holder {
        host,
        boot_id,
        pid: fuse_pid,
        path: path.display().to_string(),
        read_only: req.read_only,
        since_unix: now_unix(),
    };
    let mut rec = MountRecord {
        pool: req.pool.clone(),
        volume: req.volume.clone(),
        path: path.clone(),
        read_only: req.read_only,
        fstype: fstype.clone(),
        loop_device: PathBuf::new(),
        fuse_dir: fuse_dir.clone(),
        fuse_pid,
        since_unix: now_unix(),
        remount: false,
    };
    let result = (|| -> Result<(), VolumeError> {
        for (h, why) in claim(&io, &image, &req.volume, me)? {
            tracing::warn!(holder = %h, %why, "released a stale holder");
        }
        rec.loop_device = loopdev::attach(&file, req.read_only)?;
        // A raw device is not even probed: what the workload wrote there is its own business.
        let signature = if req.raw {
            Signature::Blank
        } else {
            tools::probe(&rec.loop_device)?
        };
        let blank = !req.raw && signature == Signature::Blank;
        let facts = FormatFacts {
            volume: &req.volume,
            raw: req.raw,
            read_only: req.read_only,
            // Ceph's opinion costs a diff of the image; it only matters when blkid found nothing.
            allocated: if blank { image.used_bytes()? } else { 0 },
            clone: blank && image.parent()?.is_some(),
            signature,
        };
        match decide_format(&facts) {
            FormatDecision::Refuse(why) => return Err(VolumeError::BadRequest(why)),
            FormatDecision::MapOnly => {
                rec.fstype = "none".into();
                return Ok(());
            }
            FormatDecision::Format => tools::mkfs(&rec.loop_device, &fstype)?,
            FormatDecision::Mount(found) => {
                if found == "ext4" && !req.read_only {
                    let size = loopdev::size_bytes(&rec.loop_device).unwrap_or(0);
                    if tools::grow_unmounted_ext4(&rec.loop_device, size)? {
                        tracing::info!(volume = %req.volume, "grew the filesystem to the volume's size");
                    }
                }
                rec.fstype = found;
            }
        }
        mounts::mount(&rec.loop_device, &path, &rec.fstype, req.read_only)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = teardown(&MountRecord {
            fuse_pid: 0,
            ..rec.clone()
        });
        if rookery_platform::proc::is_alive(fuse_pid) {
            rookery_platform::proc::terminate(fuse_pid, Duration::from_secs(5));
        }
        if !matches!(e, VolumeError::Busy(_)) {
            let _ = release(&io, &req.volume, fuse_pid);
        }
        return Err(e);
    }
    records.list.push(rec.clone());
    if let Err(e) = records.save() {
        // Unrecorded, `down` would not know to unmount it: undo rather than leave it so.
        let _ = teardown(&rec);
        let _ = release(&io, &req.volume, fuse_pid);
        return Err(e.into());
    }
    Ok(rec)
}

/// Unmounts by mount path or by volume name (every mount of it on this host). Returns what was unmounted.
pub fn unmount(
    rados: &Rados,
    data_dir: &Path,
    target: &str,
) -> Result<Vec<MountRecord>, VolumeError> {
    let mut records = Records::open(data_dir)?;
    let matches: Vec<usize> = match records.find_path(Path::new(target)) {
        Some(i) => vec![i],
        None => records
            .list
            .iter()
            .enumerate()
            .filter(|(_, r)| r.volume == target)
            .map(|(i, _)| i)
            .collect(),
    };
    if matches.is_empty() {
        return Err(VolumeError::BadRequest(format!(
            "nothing rookery mounted is at or named {target:?}; `rookery volume list` shows the mounts"
        )));
    }
    let mut done = Vec::new();
    for i in matches.into_iter().rev() {
        let rec = records.list[i].clone();
        // A mount `down` took down has nothing left on this host; forgetting it is all there is to do.
        if !rec.remount {
            teardown(&rec)?;
        }
        if let Ok(io) = rados.ioctx(&rec.pool) {
            release(&io, &rec.volume, rec.fuse_pid)?;
        }
        records.list.remove(i);
        records.save()?;
        done.push(rec);
    }
    Ok(done)
}

/// Unmounts every volume mounted on this host before the cluster stops. With `remount`, the records stay
/// (marked) so [`resume_all`] mounts them again at the next `up`; without, they are dropped (purge).
/// `rados` may be None when the cluster no longer answers; holders are then released as stale later.
pub fn suspend_all(
    rados: Option<&Rados>,
    data_dir: &Path,
    remount: bool,
) -> Result<Vec<MountRecord>, VolumeError> {
    let mut records = Records::open(data_dir)?;
    let mut suspended = Vec::new();
    let mut keep = Vec::new();
    for rec in records.list.drain(..) {
        if rec.remount {
            if remount {
                keep.push(rec);
            }
            continue;
        }
        teardown(&rec)?;
        if let Some(r) = rados {
            if let Ok(io) = r.ioctx(&rec.pool) {
                let _ = release(&io, &rec.volume, rec.fuse_pid);
            }
        }
        suspended.push(rec.clone());
        if remount {
            keep.push(MountRecord {
                remount: true,
                ..rec
            });
        }
    }
    records.list = keep;
    records.save()?;
    Ok(suspended)
}

/// One mount that [`resume_all`] tried to restore, and how it went.
pub type Remount = (MountRecord, Result<(), VolumeError>);

/// Mounts again what [`suspend_all`] unmounted. Failures are returned per mount, and the mount stays
/// recorded for the next try.
pub fn resume_all(
    rados: &Rados,
    conf: &Path,
    identity: &rookery_ceph::Identity,
    data_dir: &Path,
) -> Result<Vec<Remount>, VolumeError> {
    let pending: Vec<MountRecord> = {
        let mut records = Records::open(data_dir)?;
        // Mounts whose FUSE server is gone without an unmount (a host restart, a kill) are restored too:
        // their leftovers are cleared and they join the ones `down` marked.
        for rec in records.list.iter_mut().filter(|r| !r.remount && !r.alive()) {
            if let Err(e) = teardown(rec) {
                tracing::warn!(path = %rec.path.display(), error = %e, "could not fully clear a dead mount");
            }
            rec.remount = true;
        }
        records.save()?;
        records.list.iter().filter(|m| m.remount).cloned().collect()
    };
    let mut out = Vec::new();
    for rec in pending {
        let req = MountRequest {
            pool: rec.pool.clone(),
            volume: rec.volume.clone(),
            path: rec.path.clone(),
            read_only: rec.read_only,
            conf: conf.to_path_buf(),
            identity: identity.clone(),
            data_dir: data_dir.to_path_buf(),
            raw: rec.fstype == "none",
        };
        let result = mount(rados, &req).map(|_| ());
        if result.is_ok() {
            if let Ok(mut r) = Records::open(data_dir) {
                r.list
                    .retain(|m| !(m.remount && m.path == rec.path && m.volume == rec.volume));
                let _ = r.save();
            }
        }
        out.push((rec, result));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_device_is_ours_through_our_fuse_dir_or_a_detached_mount_of_it() {
        let rec = MountRecord {
            pool: "p".into(),
            volume: "csi-vol-1".into(),
            path: "/k/staging".into(),
            read_only: false,
            fstype: "ext4".into(),
            loop_device: "/dev/loop3".into(),
            fuse_dir: "/d/fuse/abc".into(),
            fuse_pid: 1,
            since_unix: 0,
            remount: false,
        };
        assert!(backs(&rec, Path::new("/d/fuse/abc/csi-vol-1")));
        assert!(backs(&rec, Path::new("/csi-vol-1")));
        assert!(!backs(&rec, Path::new("/csi-vol-2")));
        assert!(!backs(&rec, Path::new("/other/csi-vol-1")));
    }
}
