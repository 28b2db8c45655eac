//! The CSI node RPCs: stage and unstage are the backend's (`rookery volume mount` or `rookery fs mount` at
//! the staging path); publish is a bind mount of the staging path (read-only when asked), or of the raw
//! device onto a file for a block volume; unpublish undoes it. Every step is idempotent.

use std::path::{Path, PathBuf};

use rookery_volumes::mounts;
use tonic::Status;

use crate::ids::VolumeId;
use crate::pb;
use crate::{required, Driver};

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

pub(crate) fn is_block(cap: &pb::VolumeCapability) -> bool {
    matches!(
        cap.access_type,
        Some(pb::volume_capability::AccessType::Block(_))
    )
}

pub(crate) fn read_only_mode(cap: &pb::VolumeCapability) -> bool {
    use pb::volume_capability::access_mode::Mode;
    cap.access_mode.as_ref().is_some_and(|m| {
        matches!(
            m.mode(),
            Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly
        )
    })
}

impl Driver {
    fn node_request(
        &self,
        volume_id: &str,
        cap: &Option<pb::VolumeCapability>,
    ) -> Result<(VolumeId, pb::VolumeCapability), Status> {
        let cap = cap
            .clone()
            .ok_or_else(|| Status::invalid_argument("volume_capability is required"))?;
        self.backend.supports(std::slice::from_ref(&cap))?;
        let id = VolumeId::parse(volume_id)
            .ok_or_else(|| Status::not_found(format!("no volume {volume_id:?}")))?;
        Ok((id, cap))
    }

    pub(crate) fn stage(
        &self,
        req: pb::NodeStageVolumeRequest,
    ) -> Result<pb::NodeStageVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        let staging = PathBuf::from(required("staging_target_path", &req.staging_target_path)?);
        let (id, cap) = self.node_request(&req.volume_id, &req.volume_capability)?;
        let _busy = self.inflight.claim(&id.to_string())?;
        if !self.backend.exists(self, &id)? {
            return Err(Status::not_found(format!("no volume {id}")));
        }
        std::fs::create_dir_all(&staging)
            .map_err(|e| Status::internal(format!("{}: {e}", staging.display())))?;
        self.backend.stage(self, &id, &staging, &cap)?;
        Ok(pb::NodeStageVolumeResponse {})
    }

    pub(crate) fn unstage(
        &self,
        req: pb::NodeUnstageVolumeRequest,
    ) -> Result<pb::NodeUnstageVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        let staging = required("staging_target_path", &req.staging_target_path)?;
        let _busy = match VolumeId::parse(&req.volume_id) {
            Some(id) => Some(self.inflight.claim(&id.to_string())?),
            None => None,
        };
        self.backend.unstage(self, Path::new(staging))?;
        Ok(pb::NodeUnstageVolumeResponse {})
    }

    pub(crate) fn publish(
        &self,
        req: pb::NodePublishVolumeRequest,
    ) -> Result<pb::NodePublishVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        let staging = PathBuf::from(required("staging_target_path", &req.staging_target_path)?);
        let target = PathBuf::from(required("target_path", &req.target_path)?);
        let (id, cap) = self.node_request(&req.volume_id, &req.volume_capability)?;
        let Some(staged) = self.backend.staged(self, &id, &staging)? else {
            if !self.backend.exists(self, &id)? {
                return Err(Status::not_found(format!("no volume {id}")));
            }
            return Err(Status::failed_precondition(format!(
                "{id} is not staged at {}; call NodeStageVolume first",
                staging.display()
            )));
        };
        let read_only = req.readonly || read_only_mode(&cap);
        if is_block(&cap) {
            let device = staged.device.ok_or_else(|| {
                Status::failed_precondition(format!(
                    "{} is staged as a filesystem; unstage it and stage it as a block volume",
                    staging.display()
                ))
            })?;
            return publish_block(&device, &target, read_only);
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
        if !self.backend.node_expands() {
            return Err(Status::unimplemented(
                "a CephFS volume's quota is its size on every mount; nothing grows on the node",
            ));
        }
        required("volume_id", &req.volume_id)?;
        required("volume_path", &req.volume_path)?;
        let id = VolumeId::parse(&req.volume_id)
            .ok_or_else(|| Status::not_found(format!("no volume {:?}", req.volume_id)))?;
        let _busy = self.inflight.claim(&id.to_string())?;
        let size = self.backend.node_expand(self, &id)?;
        Ok(pb::NodeExpandVolumeResponse {
            capacity_bytes: size as i64,
        })
    }
}

/// A raw block volume is published as its device node: the staged device bind-mounted onto a file at the
/// target path.
fn publish_block(
    device: &Path,
    target: &Path,
    read_only: bool,
) -> Result<pb::NodePublishVolumeResponse, Status> {
    if let Some(m) = mounts::mounted_at(target) {
        if same_device(target, device) {
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
    bind(device, target, read_only)?;
    Ok(pb::NodePublishVolumeResponse {})
}
