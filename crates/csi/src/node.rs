//! The CSI node service for RBD: stage = `rookery volume mount` at the staging path (the same attach code:
//! rbd-fuse -> loop with direct I/O -> format only when blank -> mount), publish = a bind mount (read-only
//! when asked), unstage = `rookery volume unmount`. Every step is idempotent.

use std::path::{Path, PathBuf};

use rookery_volumes::mounts;
use rookery_volumes::records::Records;
use tonic::Status;

use crate::ids::VolumeId;
use crate::pb;
use crate::{ceph_status, Driver};

fn cpath(p: &Path) -> Result<std::ffi::CString, Status> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| Status::invalid_argument(format!("{} contains a NUL byte", p.display())))
}

fn sys(what: &str, rc: i32) -> Result<(), Status> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Status::internal(format!(
            "{what}: {}",
            std::io::Error::last_os_error()
        )))
    }
}

fn bind(src: &Path, dst: &Path, read_only: bool) -> Result<(), Status> {
    let (s, d) = (cpath(src)?, cpath(dst)?);
    // SAFETY: valid NUL-terminated paths; a bind mount needs no type or data.
    sys("bind mount", unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    })?;
    if read_only {
        // A bind mount takes read-only only on a remount of itself.
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
        // SAFETY: as above.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                d.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            // SAFETY: as above; undo the writable bind so nothing is left half-done.
            unsafe { libc::umount2(d.as_ptr(), 0) };
            return sys("read-only remount", rc);
        }
    }
    Ok(())
}

/// The size of the block device at `path` (the file a raw volume is published as), from its device number.
fn device_size(path: &Path) -> Option<u64> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let sectors: u64 = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/size"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(sectors * 512)
}

/// Whether `a` and `b` are the same block device.
fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.rdev() != 0 && x.rdev() == y.rdev(),
        _ => false,
    }
}

fn is_block(cap: &pb::VolumeCapability) -> bool {
    matches!(
        cap.access_type,
        Some(pb::volume_capability::AccessType::Block(_))
    )
}

fn read_only_mode(cap: &pb::VolumeCapability) -> bool {
    use pb::volume_capability::access_mode::Mode;
    cap.access_mode.as_ref().is_some_and(|m| {
        matches!(
            m.mode(),
            Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly
        )
    })
}

fn required<'a>(what: &str, v: &'a str) -> Result<&'a str, Status> {
    if v.is_empty() {
        Err(Status::invalid_argument(format!("{what} is required")))
    } else {
        Ok(v)
    }
}

impl Driver {
    fn volume_exists(&self, id: &VolumeId) -> Result<bool, Status> {
        let Ok(io) = self.rados.ioctx(&id.pool) else {
            return Ok(false);
        };
        let found = match rookery_ceph::rbd::Image::open_read_only(&io, &id.image) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(false),
            Err(e) => Err(ceph_status(&e)),
        };
        found
    }

    /// This host's record of a mount at `path`.
    fn record_at(
        &self,
        path: &Path,
    ) -> Result<Option<rookery_volumes::records::MountRecord>, Status> {
        let records = Records::open(&self.data_dir).map_err(|e| Status::internal(e.to_string()))?;
        Ok(records.find_path(path).map(|i| records.list[i].clone()))
    }

    pub(crate) fn stage(
        &self,
        req: pb::NodeStageVolumeRequest,
    ) -> Result<pb::NodeStageVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        let staging = PathBuf::from(required("staging_target_path", &req.staging_target_path)?);
        let cap = req
            .volume_capability
            .clone()
            .ok_or_else(|| Status::invalid_argument("volume_capability is required"))?;
        self.supports(std::slice::from_ref(&cap))?;
        let id = VolumeId::parse(&req.volume_id)
            .ok_or_else(|| Status::not_found(format!("no volume {:?}", req.volume_id)))?;
        let _busy = self.inflight.claim(&id.to_string())?;
        if !self.volume_exists(&id)? {
            return Err(Status::not_found(format!("no volume {id}")));
        }
        std::fs::create_dir_all(&staging)
            .map_err(|e| Status::internal(format!("{}: {e}", staging.display())))?;
        let read_only = read_only_mode(&cap);
        if let Some(r) = self.record_at(&staging)? {
            if r.pool == id.pool && r.volume == id.image && r.alive() {
                if r.read_only != read_only {
                    return Err(Status::already_exists(format!(
                        "{id} is staged at {} with another access mode",
                        staging.display()
                    )));
                }
                return Ok(pb::NodeStageVolumeResponse {});
            }
        }
        if mounts::is_mount_point(&staging) {
            return Err(Status::already_exists(format!(
                "{} is already a mount point of something else",
                staging.display()
            )));
        }
        let request = rookery_volumes::MountRequest {
            pool: id.pool.clone(),
            volume: id.image.clone(),
            path: staging,
            read_only,
            conf: self.conf.clone(),
            data_dir: self.data_dir.clone(),
            raw: is_block(&cap),
        };
        rookery_volumes::mount(&self.rados, &request).map_err(|e| {
            if e.is_bad_request() {
                Status::failed_precondition(e.to_string())
            } else {
                Status::internal(e.to_string())
            }
        })?;
        Ok(pb::NodeStageVolumeResponse {})
    }

    pub(crate) fn unstage(
        &self,
        req: pb::NodeUnstageVolumeRequest,
    ) -> Result<pb::NodeUnstageVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        let staging = required("staging_target_path", &req.staging_target_path)?;
        if let Some(id) = VolumeId::parse(&req.volume_id) {
            let _busy = self.inflight.claim(&id.to_string())?;
        }
        if self.record_at(Path::new(staging))?.is_none() {
            return Ok(pb::NodeUnstageVolumeResponse {});
        }
        rookery_volumes::unmount(&self.rados, &self.data_dir, staging)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(pb::NodeUnstageVolumeResponse {})
    }

    pub(crate) fn publish(
        &self,
        req: pb::NodePublishVolumeRequest,
    ) -> Result<pb::NodePublishVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        let staging = PathBuf::from(required("staging_target_path", &req.staging_target_path)?);
        let target = PathBuf::from(required("target_path", &req.target_path)?);
        let cap = req
            .volume_capability
            .clone()
            .ok_or_else(|| Status::invalid_argument("volume_capability is required"))?;
        self.supports(std::slice::from_ref(&cap))?;
        let id = VolumeId::parse(&req.volume_id)
            .ok_or_else(|| Status::not_found(format!("no volume {:?}", req.volume_id)))?;
        let staged = match self.config.kind {
            crate::Kind::Rbd => self
                .record_at(&staging)?
                .is_some_and(|r| r.pool == id.pool && r.volume == id.image && r.alive()),
            crate::Kind::CephFs => self.fs_staged(&id, &staging)?,
        };
        if !staged {
            if self.config.kind == crate::Kind::Rbd && !self.volume_exists(&id)? {
                return Err(Status::not_found(format!("no volume {id}")));
            }
            return Err(Status::failed_precondition(format!(
                "{id} is not staged at {}; call NodeStageVolume first",
                staging.display()
            )));
        }
        let read_only = req.readonly || read_only_mode(&cap);
        if is_block(&cap) {
            return self.publish_block(&staging, &target, read_only);
        }
        if let Some(m) = mounts::mounted_at(&target) {
            let here = mounts::mounted_at(&staging);
            if here.is_some_and(|s| s.source == m.source) {
                return Ok(pb::NodePublishVolumeResponse {});
            }
            return Err(Status::already_exists(format!(
                "{} is already a mount point of {}",
                target.display(),
                m.source
            )));
        }
        std::fs::create_dir_all(&target)
            .map_err(|e| Status::internal(format!("{}: {e}", target.display())))?;
        bind(&staging, &target, read_only)?;
        Ok(pb::NodePublishVolumeResponse {})
    }

    /// A raw block volume is published as its device node: the staged loop device bind-mounted onto a file
    /// at the target path.
    fn publish_block(
        &self,
        staging: &Path,
        target: &Path,
        read_only: bool,
    ) -> Result<pb::NodePublishVolumeResponse, Status> {
        let rec = self
            .record_at(staging)?
            .ok_or_else(|| Status::failed_precondition("the volume is not staged"))?;
        if rec.fstype != "none" {
            return Err(Status::failed_precondition(format!(
                "{} is staged as a filesystem; unstage it and stage it as a block volume",
                staging.display()
            )));
        }
        if let Some(m) = mounts::mounted_at(target) {
            if same_device(target, &rec.loop_device) {
                return Ok(pb::NodePublishVolumeResponse {});
            }
            return Err(Status::already_exists(format!(
                "{} is already a mount point of {}",
                target.display(),
                m.source
            )));
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Status::internal(format!("{}: {e}", dir.display())))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(target)
            .map_err(|e| Status::internal(format!("{}: {e}", target.display())))?;
        bind(&rec.loop_device, target, read_only)?;
        Ok(pb::NodePublishVolumeResponse {})
    }

    pub(crate) fn unpublish(
        &self,
        req: pb::NodeUnpublishVolumeRequest,
    ) -> Result<pb::NodeUnpublishVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        let target = PathBuf::from(required("target_path", &req.target_path)?);
        if mounts::is_mount_point(&target) {
            mounts::unmount(&target).map_err(|e| Status::internal(e.to_string()))?;
        }
        let removed = if target.is_dir() {
            std::fs::remove_dir(&target)
        } else {
            std::fs::remove_file(&target)
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Status::internal(format!("{}: {e}", target.display()))),
        }
        Ok(pb::NodeUnpublishVolumeResponse {})
    }

    pub(crate) fn stats(
        &self,
        req: pb::NodeGetVolumeStatsRequest,
    ) -> Result<pb::NodeGetVolumeStatsResponse, Status> {
        required("volume_id", &req.volume_id)?;
        let path = PathBuf::from(required("volume_path", &req.volume_path)?);
        if !path.exists() {
            return Err(Status::not_found(format!(
                "{} does not exist",
                path.display()
            )));
        }
        if !path.is_dir() {
            // A block volume: its size, and whether the device is still there.
            let size = device_size(&path);
            return Ok(pb::NodeGetVolumeStatsResponse {
                usage: vec![pb::VolumeUsage {
                    available: 0,
                    total: size.unwrap_or(0) as i64,
                    used: 0,
                    unit: pb::volume_usage::Unit::Bytes as i32,
                }],
                volume_condition: Some(pb::VolumeCondition {
                    abnormal: size.is_none(),
                    message: if size.is_some() {
                        "the device answers".into()
                    } else {
                        format!("{} is no longer a device of this volume", path.display())
                    },
                }),
            });
        }
        let c = cpath(&path)?;
        // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
        let mounted = mounts::is_mount_point(&path);
        let (abnormal, message) = if rc != 0 {
            (
                true,
                format!("statvfs failed: {}", std::io::Error::last_os_error()),
            )
        } else if !mounted {
            (true, format!("{} is not mounted", path.display()))
        } else {
            (false, "mounted and answering".to_string())
        };
        let frsize = s.f_frsize;
        let usage = if rc == 0 {
            vec![
                pb::VolumeUsage {
                    available: (s.f_bavail * frsize) as i64,
                    total: (s.f_blocks * frsize) as i64,
                    used: (s.f_blocks.saturating_sub(s.f_bfree) * frsize) as i64,
                    unit: pb::volume_usage::Unit::Bytes as i32,
                },
                pb::VolumeUsage {
                    available: s.f_favail as i64,
                    total: s.f_files as i64,
                    used: s.f_files.saturating_sub(s.f_ffree) as i64,
                    unit: pb::volume_usage::Unit::Inodes as i32,
                },
            ]
        } else {
            vec![]
        };
        Ok(pb::NodeGetVolumeStatsResponse {
            usage,
            volume_condition: Some(pb::VolumeCondition { abnormal, message }),
        })
    }

    pub(crate) fn node_expand(
        &self,
        req: pb::NodeExpandVolumeRequest,
    ) -> Result<pb::NodeExpandVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        required("volume_path", &req.volume_path)?;
        let id = VolumeId::parse(&req.volume_id)
            .ok_or_else(|| Status::not_found(format!("no volume {:?}", req.volume_id)))?;
        let _busy = self.inflight.claim(&id.to_string())?;
        let io = self
            .rados
            .ioctx(&id.pool)
            .map_err(|_| Status::not_found(format!("no volume {id}")))?;
        let image = rookery_ceph::rbd::Image::open_read_only(&io, &id.image)
            .map_err(|_| Status::not_found(format!("no volume {id}")))?;
        let size = image.size().map_err(|e| ceph_status(&e))?;
        drop(image);
        let records = Records::open(&self.data_dir).map_err(|e| Status::internal(e.to_string()))?;
        for m in records
            .list
            .iter()
            .filter(|m| m.pool == id.pool && m.volume == id.image && m.alive())
        {
            // The FUSE file shows the new size on its next stat; then the loop device and filesystem grow.
            let file = m.fuse_dir.join(&m.volume);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::fs::metadata(&file).map(|md| md.len()).unwrap_or(0) < size
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            rookery_volumes::loopdev::refresh_capacity(&m.loop_device)
                .map_err(|e| Status::internal(e.to_string()))?;
            if !m.read_only && m.fstype != "none" {
                rookery_volumes::tools::grow(&m.loop_device, &m.path, &m.fstype)
                    .map_err(|e| Status::internal(e.to_string()))?;
            }
        }
        Ok(pb::NodeExpandVolumeResponse {
            capacity_bytes: size as i64,
        })
    }
}
