//! The CephFS backend (`cephfs.csi.rookery.io`): a volume is a subvolume with a quota (RWX: any access
//! mode), named from the CO's request name like RBD volumes; its record is the subvolume's own metadata.
//! Snapshots are subvolume snapshots; volumes from a snapshot or a volume are the mgr's asynchronous
//! clones, waited for. All of it goes through `rookery_files::subvolume`, the code behind
//! `rookery fs subvolume`. Nodes mount with ceph-fuse (`rookery fs mount`) at the staging path.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rookery_ceph::commands;
use rookery_ceph::types::{DfPool, FsListEntry};
use rookery_files::mount::{self, MountRequest};
use rookery_files::subvolume::{self, CloneSource, SubvolumeInfo};
use rookery_files::FileError;
use tonic::Status;

use crate::backend::{
    self, claim_of, decide_create, source_of, source_text, Backend, CreateDecision, Found, Record,
    Source, Staged, Wanted,
};
use crate::ids::{SnapshotId, VolumeId};
use crate::node::read_only_mode;
use crate::{ceph_status, pb, Driver};

/// Subvolume metadata keys of the driver's record.
const META_NAME: &str = "csi.volname";
const META_SOURCE: &str = "csi.source";

/// How long a CreateVolume waits for the mgr's copy of a clone before the CO is told to retry.
const CLONE_WAIT: Duration = Duration::from_secs(300);

/// Checks a StorageClass's parameters; returns the filesystem they name, if any.
fn check_params<'a>(
    d: &Driver,
    p: &'a std::collections::HashMap<String, String>,
) -> Result<Option<&'a String>, Status> {
    for k in p.keys() {
        let known = matches!(
            k.as_str(),
            "clusterID" | "fsName" | "pool" | "mounter" | "csi.storage.k8s.io/fstype"
        ) || k.starts_with("csi.storage.k8s.io/");
        if !known {
            return Err(Status::invalid_argument(format!(
                "unknown parameter {k:?}; rookery's CephFS driver takes clusterID, fsName, pool and mounter"
            )));
        }
    }
    if let Some(id) = p.get("clusterID") {
        d.check_cluster(id)?;
    }
    if let Some(m) = p.get("mounter") {
        if m != "fuse" {
            return Err(Status::invalid_argument(format!(
                "mounter {m:?} is not available: this kernel has no CephFS client; use mounter: fuse or leave it out"
            )));
        }
    }
    Ok(p.get("fsName"))
}

/// The filesystem a CreateVolume request's parameters place the volume in (required).
fn fs_and_name(
    d: &Driver,
    p: &std::collections::HashMap<String, String>,
) -> Result<String, Status> {
    check_params(d, p)?.cloned().ok_or_else(|| {
        Status::invalid_argument("parameter fsName (the CephFilesystem) is required")
    })
}

/// Bytes a new volume can still take: the most any data pool of filesystem `fs` has available, or, when
/// no filesystem is named (GetCapacity's parameters are optional), of any filesystem, since a volume
/// lives in one. With no filesystem at all nothing can be made: 0.
fn capacity_in(
    filesystems: &[FsListEntry],
    pools: &[DfPool],
    fs: Option<&str>,
) -> Result<u64, Status> {
    let named: Vec<&FsListEntry> = filesystems
        .iter()
        .filter(|f| fs.is_none_or(|n| f.name == n))
        .collect();
    if let (Some(name), true) = (fs, named.is_empty()) {
        return Err(Status::invalid_argument(format!(
            "filesystem {name:?} does not exist"
        )));
    }
    Ok(named
        .iter()
        .flat_map(|f| f.data_pools.iter())
        .filter_map(|pool| pools.iter().find(|p| p.name == *pool))
        .map(|p| p.stats.max_avail)
        .max()
        .unwrap_or(0))
}

/// File volumes take every access mode, in filesystem mode only.
fn capabilities_supported(caps: &[pb::VolumeCapability]) -> Result<(), Status> {
    use pb::volume_capability::access_mode::Mode;
    use pb::volume_capability::AccessType;
    if caps.is_empty() {
        return Err(Status::invalid_argument("volume_capabilities are required"));
    }
    for c in caps {
        match &c.access_type {
            Some(AccessType::Mount(_)) => {}
            Some(AccessType::Block(_)) => {
                return Err(Status::invalid_argument(
                    "CephFS volumes are filesystems, not block devices",
                ))
            }
            None => return Err(Status::invalid_argument("access_type (mount) is required")),
        }
        let mode = c
            .access_mode
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("access_mode is required"))?
            .mode();
        if mode == Mode::Unknown {
            return Err(Status::invalid_argument("access_mode is required"));
        }
    }
    Ok(())
}

/// A file layer failure as the gRPC status the CO sees.
fn grpc(e: FileError) -> Status {
    match e {
        FileError::NotFound(m) => Status::not_found(m),
        FileError::BadRequest(m) | FileError::Exists(m) | FileError::InUse(m) => {
            Status::failed_precondition(m)
        }
        e @ FileError::Invalid { .. } => Status::failed_precondition(e.to_string()),
        FileError::TimedOut(m) => Status::deadline_exceeded(m),
        FileError::Ceph(e) => ceph_status(&e),
        other => Status::internal(other.to_string()),
    }
}

fn volume_of(
    id: &VolumeId,
    info: &SubvolumeInfo,
    source: Option<pb::VolumeContentSource>,
) -> pb::Volume {
    pb::Volume {
        capacity_bytes: info.quota_bytes.unwrap_or(0) as i64,
        volume_id: id.to_string(),
        volume_context: [
            ("fsName".to_string(), id.pool.clone()),
            ("subvolumeName".to_string(), id.image.clone()),
            ("subvolumePath".to_string(), info.path.clone()),
        ]
        .into_iter()
        .collect(),
        content_source: source,
        accessible_topology: vec![],
    }
}

/// Whether this host's ceph-fuse mount `m` is of `id`.
fn mounts_volume(m: &mount::FsMount, id: &VolumeId) -> bool {
    m.fs == id.pool && m.subvolume.as_deref() == Some(id.image.as_str())
}

pub(crate) struct CephFs;

impl CephFs {
    fn here(&self, d: &Driver) -> Result<Vec<mount::FsMount>, Status> {
        mount::list(&d.data_dir).map_err(|e| Status::internal(e.to_string()))
    }

    /// Every CSI subvolume of every filesystem, sorted by id.
    fn all(&self, d: &Driver) -> Result<Vec<(VolumeId, SubvolumeInfo)>, Status> {
        let mut out = Vec::new();
        let filesystems = commands::fs::ls(&d.rados).map_err(|e| ceph_status(&e))?;
        for fs in filesystems.into_iter().map(|f| f.name) {
            for name in subvolume::names(&d.rados, &fs).map_err(grpc)? {
                if !name.starts_with("csi-vol-") {
                    continue;
                }
                if let Some(info) = subvolume::find(&d.rados, &fs, &name).map_err(grpc)? {
                    let id = VolumeId {
                        pool: fs.clone(),
                        image: name,
                    };
                    out.push((id, info));
                }
            }
        }
        out.sort_by_key(|a| a.0.to_string());
        Ok(out)
    }

    fn snapshot(
        &self,
        d: &Driver,
        id: &SnapshotId,
        info: &SubvolumeInfo,
    ) -> Result<pb::Snapshot, Status> {
        let created =
            subvolume::snapshot_created(&d.rados, &id.volume.pool, &id.volume.image, &id.snap)
                .map_err(grpc)?;
        Ok(pb::Snapshot {
            size_bytes: info.used_bytes as i64,
            snapshot_id: id.to_string(),
            source_volume_id: id.volume.to_string(),
            creation_time: parse_time(&created),
            ready_to_use: true,
            group_snapshot_id: String::new(),
        })
    }
}

impl Backend for CephFs {
    fn name(&self) -> &'static str {
        crate::CEPHFS_DRIVER
    }

    fn restore_staged(&self, d: &Driver) -> Vec<String> {
        match mount::resume_all(&d.conf, &d.config.identity, &d.data_dir) {
            Ok(results) => results
                .into_iter()
                .map(|(m, result)| match result {
                    Ok(()) => format!("{} mounted again at {}", m.source(), m.path.display()),
                    Err(e) => format!(
                        "{} not mounted again at {}: {e}",
                        m.source(),
                        m.path.display()
                    ),
                })
                .collect(),
            Err(e) => vec![format!("the staged volumes could not be read: {e}")],
        }
    }

    fn supports(&self, caps: &[pb::VolumeCapability]) -> Result<(), Status> {
        capabilities_supported(caps)
    }

    fn place(&self, d: &Driver, req: &pb::CreateVolumeRequest) -> Result<String, Status> {
        fs_and_name(d, &req.parameters)
    }

    fn create(
        &self,
        d: &Driver,
        id: &VolumeId,
        req: &pb::CreateVolumeRequest,
        size: u64,
    ) -> Result<pb::Volume, Status> {
        let (r, fs, sub) = (&d.rados, &id.pool, &id.image);
        subvolume::names(r, fs).map_err(grpc)?;
        let source = source_text(&req.volume_content_source);
        if let Some(info) = subvolume::find(r, fs, sub).map_err(grpc)? {
            let meta = subvolume::metadata(r, fs, sub).map_err(grpc)?;
            let found = Found {
                record: meta.get(META_NAME).map(|name| Record {
                    name: name.clone(),
                    source: meta.get(META_SOURCE).cloned().unwrap_or_default(),
                }),
                size: info.quota_bytes.unwrap_or(0),
                complete: info.complete,
            };
            let want = Wanted {
                name: &req.name,
                source: &source,
                range: req.capacity_range.as_ref(),
            };
            match decide_create(&want, &found) {
                CreateDecision::Return => {
                    return Ok(volume_of(id, &info, req.volume_content_source.clone()))
                }
                CreateDecision::Refuse(why) => return Err(why.status(&req.name, id)),
                // Every step below may be done again.
                CreateDecision::Finish => {}
            }
        }
        let temporary = backend::clone_snapshot_for(id);
        let parsed = source_of(req)?;
        let from = match &parsed {
            Source::Empty => None,
            Source::Snapshot(s) if s.volume.pool == *fs => Some(CloneSource::Snapshot {
                subvolume: &s.volume.image,
                snap: &s.snap,
            }),
            Source::Volume(v) if v.pool == *fs => Some(CloneSource::Subvolume {
                subvolume: &v.image,
                temporary: &temporary,
            }),
            Source::Snapshot(_) | Source::Volume(_) => {
                return Err(Status::not_found(format!(
                    "no {} in {fs}",
                    source.split(':').next().unwrap_or("source")
                )))
            }
        };
        match &from {
            None => match req.parameters.get("pool") {
                Some(pool) => subvolume::ensure_in_pool(r, fs, sub, size, pool),
                None => subvolume::ensure(r, fs, sub, size),
            },
            Some(from) => subvolume::clone(r, fs, from, sub, CLONE_WAIT),
        }
        .map_err(grpc)?;
        let claim = claim_of(&req.parameters);
        let mut record = vec![
            (META_NAME, req.name.as_str()),
            (META_SOURCE, source.as_str()),
        ];
        record.extend(claim.iter().map(|(k, v)| (*k, v.as_str())));
        subvolume::set_metadata(r, fs, sub, &record).map_err(grpc)?;
        let mut info = subvolume::find(r, fs, sub)
            .map_err(grpc)?
            .ok_or_else(|| Status::internal("the new subvolume vanished"))?;
        // A clone has its source's quota until given the one asked for.
        if info.quota_bytes != Some(size) && req.capacity_range.is_some() {
            info = subvolume::resize(r, fs, sub, size, false).map_err(grpc)?;
        }
        Ok(volume_of(id, &info, req.volume_content_source.clone()))
    }

    fn delete(&self, d: &Driver, id: &VolumeId) -> Result<(), Status> {
        if let Some(m) = self.here(d)?.iter().find(|m| mounts_volume(m, id)) {
            return Err(Status::failed_precondition(format!(
                "{id} is mounted at {}",
                m.path.display()
            )));
        }
        match subvolume::remove(&d.rados, &id.pool, &id.image) {
            Ok(()) | Err(FileError::NotFound(_)) => Ok(()),
            Err(e) => Err(grpc(e)),
        }
    }

    fn exists(&self, d: &Driver, id: &VolumeId) -> Result<bool, Status> {
        match subvolume::find(&d.rados, &id.pool, &id.image) {
            Ok(v) => Ok(v.is_some()),
            // Not a name rookery makes, so not one of its volumes.
            Err(FileError::BadRequest(_)) => Ok(false),
            Err(e) => Err(grpc(e)),
        }
    }

    fn volume_ids(&self, d: &Driver) -> Result<Vec<VolumeId>, Status> {
        let mut out = Vec::new();
        let filesystems = commands::fs::ls(&d.rados).map_err(|e| ceph_status(&e))?;
        for fs in filesystems.into_iter().map(|f| f.name) {
            for name in subvolume::names(&d.rados, &fs).map_err(grpc)? {
                if name.starts_with("csi-vol-") {
                    out.push(VolumeId {
                        pool: fs.clone(),
                        image: name,
                    });
                }
            }
        }
        Ok(out)
    }

    fn describe(&self, d: &Driver, ids: &[VolumeId]) -> Result<Vec<pb::Volume>, Status> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(info) = subvolume::find(&d.rados, &id.pool, &id.image).map_err(grpc)? {
                out.push(volume_of(id, &info, None));
            }
        }
        Ok(out)
    }

    fn available(&self, d: &Driver, params: &HashMap<String, String>) -> Result<u64, Status> {
        let fs = check_params(d, params)?;
        let filesystems = commands::fs::ls(&d.rados).map_err(|e| ceph_status(&e))?;
        let df = commands::cluster::df(&d.rados).map_err(|e| ceph_status(&e))?;
        capacity_in(&filesystems, &df.pools, fs.map(String::as_str))
    }

    fn size(&self, d: &Driver, id: &VolumeId) -> Result<u64, Status> {
        let info = subvolume::find(&d.rados, &id.pool, &id.image)
            .map_err(grpc)?
            .ok_or_else(|| Status::not_found(format!("no volume {id}")))?;
        Ok(info.quota_bytes.unwrap_or(0))
    }

    fn grow(&self, d: &Driver, id: &VolumeId, size: u64) -> Result<(), Status> {
        subvolume::resize(&d.rados, &id.pool, &id.image, size, true)
            .map(drop)
            .map_err(grpc)
    }

    fn create_snapshot(
        &self,
        d: &Driver,
        src: &VolumeId,
        name: &str,
        snap: &str,
    ) -> Result<pb::Snapshot, Status> {
        let r = &d.rados;
        let info = subvolume::find(r, &src.pool, &src.image)
            .map_err(grpc)?
            .ok_or_else(|| Status::not_found(format!("no volume {src}")))?;
        // The same name on another volume is another snapshot.
        for (other, _) in self.all(d)? {
            if other == *src {
                continue;
            }
            let snaps = subvolume::snapshots(r, &other.pool, &other.image).map_err(grpc)?;
            if snaps.iter().any(|s| s == snap) {
                return Err(Status::already_exists(format!(
                    "snapshot {name:?} exists for another volume ({other})"
                )));
            }
        }
        subvolume::snapshot_create(r, &src.pool, &src.image, snap).map_err(grpc)?;
        let id = SnapshotId {
            volume: src.clone(),
            snap: snap.to_string(),
        };
        self.snapshot(d, &id, &info)
    }

    fn delete_snapshot(&self, d: &Driver, id: &SnapshotId) -> Result<(), Status> {
        let v = &id.volume;
        match subvolume::snapshot_remove(&d.rados, &v.pool, &v.image, &id.snap) {
            Ok(()) | Err(FileError::NotFound(_)) => Ok(()),
            Err(FileError::Ceph(e)) if e.errno() == Some(-libc::ENOENT) => Ok(()),
            Err(e) => Err(grpc(e)),
        }
    }

    fn snapshots(
        &self,
        d: &Driver,
        volumes: Option<Vec<VolumeId>>,
    ) -> Result<Vec<pb::Snapshot>, Status> {
        let mut all = Vec::new();
        for (vol, info) in self.all(d)? {
            if volumes.as_ref().is_some_and(|v| !v.contains(&vol)) {
                continue;
            }
            for snap in subvolume::snapshots(&d.rados, &vol.pool, &vol.image).map_err(grpc)? {
                if !snap.starts_with("csi-snap-") {
                    continue;
                }
                let id = SnapshotId {
                    volume: vol.clone(),
                    snap,
                };
                all.push(self.snapshot(d, &id, &info)?);
            }
        }
        Ok(all)
    }

    fn stage(
        &self,
        d: &Driver,
        id: &VolumeId,
        staging: &Path,
        cap: &pb::VolumeCapability,
    ) -> Result<(), Status> {
        let canon = std::fs::canonicalize(staging).unwrap_or(staging.to_path_buf());
        if let Some(m) = self.here(d)?.iter().find(|m| m.path == canon) {
            if mounts_volume(m, id) {
                return Ok(());
            }
            return Err(Status::already_exists(format!(
                "{} holds another volume",
                staging.display()
            )));
        }
        if rookery_volumes::mounts::is_mount_point(staging) {
            return Err(Status::already_exists(format!(
                "{} is already a mount point",
                staging.display()
            )));
        }
        let request = MountRequest {
            fs: id.pool.clone(),
            subvolume: Some(id.image.clone()),
            path: staging.to_path_buf(),
            read_only: read_only_mode(cap),
            conf: d.conf.clone(),
            identity: d.config.identity.clone(),
            data_dir: d.data_dir.clone(),
        };
        mount::mount(&d.rados, &request).map_err(|e| {
            if e.is_bad_request() {
                Status::not_found(e.to_string())
            } else {
                Status::internal(e.to_string())
            }
        })?;
        Ok(())
    }

    fn unstage(&self, d: &Driver, staging: &Path) -> Result<(), Status> {
        let canon = std::fs::canonicalize(staging).unwrap_or(staging.to_path_buf());
        if self.here(d)?.iter().any(|m| m.path == canon) {
            mount::unmount(&d.data_dir, &canon.display().to_string())
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(())
    }

    fn staged(&self, d: &Driver, id: &VolumeId, staging: &Path) -> Result<Option<Staged>, Status> {
        let canon = std::fs::canonicalize(staging).unwrap_or(staging.to_path_buf());
        let here = self.here(d)?;
        Ok(here
            .iter()
            .any(|m| m.path == canon && mounts_volume(m, id))
            .then_some(Staged { device: None }))
    }
}

/// `2026-11-22 07:38:35.353624` (UTC) as a protobuf timestamp.
fn parse_time(s: &str) -> Option<prost_types::Timestamp> {
    let (date, time) = s.split_once(' ')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let nanos = format!("{frac:0<9}")[..9].parse::<i32>().ok()?;
    Some(prost_types::Timestamp {
        seconds: days * 86_400 + hh * 3600 + mm * 60 + ss,
        nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rookery_ceph::types::DfPoolStats;

    fn fs(name: &str, data: &[&str]) -> FsListEntry {
        FsListEntry {
            name: name.into(),
            metadata_pool: format!("{name}-metadata"),
            data_pools: data.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn pool(name: &str, max_avail: u64) -> DfPool {
        DfPool {
            name: name.into(),
            id: 1,
            stats: DfPoolStats {
                max_avail,
                ..Default::default()
            },
        }
    }

    #[test]
    fn capacity_is_of_the_named_filesystem_or_the_roomiest() {
        let filesystems = [fs("a", &["a-data", "a-ec"]), fs("b", &["b-data"])];
        let pools = [
            pool("a-metadata", 900),
            pool("a-data", 100),
            pool("a-ec", 300),
            pool("b-data", 200),
            pool("replicapool", 1000),
        ];
        assert_eq!(capacity_in(&filesystems, &pools, Some("a")).unwrap(), 300);
        assert_eq!(capacity_in(&filesystems, &pools, Some("b")).unwrap(), 200);
        // No filesystem named: what the roomiest data pool of any takes; the metadata and RBD pools
        // hold no volume.
        assert_eq!(capacity_in(&filesystems, &pools, None).unwrap(), 300);
        assert_eq!(capacity_in(&[], &pools, None).unwrap(), 0);
        assert_eq!(
            capacity_in(&filesystems, &pools, Some("c"))
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn times() {
        let t = super::parse_time("2015-08-30 12:36:00.5").unwrap();
        assert_eq!((t.seconds, t.nanos), (1_440_938_160, 500_000_000));
        let t = super::parse_time("2000-02-29 00:00:00").unwrap();
        assert_eq!(t.seconds, 951_782_400);
        assert!(super::parse_time("garbage").is_none());
    }
}
