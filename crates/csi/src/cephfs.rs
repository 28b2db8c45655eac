//! The CSI driver for CephFS (`cephfs.csi.rookery.io`): a volume is a subvolume with a quota (RWX: any
//! access mode), named from the CO's request name like RBD volumes; its journal is the subvolume's own
//! metadata. Snapshots are subvolume snapshots; volumes from a snapshot or a volume are the mgr's
//! asynchronous clones, waited for. Nodes mount with ceph-fuse (the same code as `rookery fs mount`) at
//! the staging path and bind mount it into each target.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rookery_ceph::commands::{self, subvolume};
use rookery_ceph::types::SubvolumeInfo;
use rookery_ceph::CephError;
use rookery_files::mount::{self, MountRequest};
use tonic::{Code, Status};

use crate::ids::{self, SnapshotId, VolumeId};
use crate::{ceph_status, page, pb, Driver};

const META_NAME: &str = "csi.volname";
const META_SOURCE: &str = "csi.source";

fn fs_and_name(
    d: &Driver,
    p: &std::collections::HashMap<String, String>,
) -> Result<String, Status> {
    for k in p.keys() {
        let known = matches!(
            k.as_str(),
            "clusterID" | "fsName" | "mounter" | "csi.storage.k8s.io/fstype"
        ) || k.starts_with("csi.storage.k8s.io/");
        if !known {
            return Err(Status::invalid_argument(format!(
                "unknown parameter {k:?}; rookery's CephFS driver takes clusterID, fsName and mounter"
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
    p.get("fsName").cloned().ok_or_else(|| {
        Status::invalid_argument("parameter fsName (the CephFilesystem) is required")
    })
}

/// File volumes take every access mode, in filesystem mode only.
pub(crate) fn capabilities_supported(caps: &[pb::VolumeCapability]) -> Result<(), Status> {
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

/// A Ceph call's error as the gRPC status the CO sees.
fn grpc<T>(result: Result<T, CephError>) -> Result<T, Status> {
    result.map_err(|e| ceph_status(&e))
}

impl Driver {
    /// None when the subvolume does not exist.
    fn subvolume(&self, fs: &str, name: &str) -> Result<Option<SubvolumeInfo>, Status> {
        match grpc(subvolume::info(&self.rados, fs, name)) {
            Ok(v) => Ok(Some(v)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(s),
        }
    }

    fn meta_get(&self, fs: &str, sub: &str, key: &str) -> Result<Option<String>, Status> {
        let mut all = grpc(subvolume::metadata_ls(&self.rados, fs, sub))?;
        Ok(all.remove(key))
    }

    fn meta_set(&self, fs: &str, sub: &str, key: &str, value: &str) -> Result<(), Status> {
        grpc(subvolume::metadata_set(&self.rados, fs, sub, key, value))
    }

    fn fs_volume(
        id: &VolumeId,
        info: &SubvolumeInfo,
        source: Option<pb::VolumeContentSource>,
    ) -> pb::Volume {
        pb::Volume {
            capacity_bytes: info.bytes_quota.unwrap_or(0) as i64,
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

    /// Waits until the mgr's clone into `target` finishes.
    fn wait_clone(&self, fs: &str, target: &str) -> Result<(), Status> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let s = grpc(subvolume::clone_status(&self.rados, fs, target))?;
            match s.state.as_str() {
                "complete" => return Ok(()),
                "failed" | "canceled" => {
                    let why = s
                        .failure
                        .map(|f| format!(": {}", f.error_msg))
                        .unwrap_or_default();
                    return Err(Status::internal(format!(
                        "cloning into {target} {}{why}",
                        s.state
                    )));
                }
                _ if Instant::now() > deadline => {
                    return Err(Status::deadline_exceeded(format!(
                        "cloning into {target} takes over 5 minutes; retry"
                    )))
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub(crate) fn fs_create_volume(
        &self,
        req: pb::CreateVolumeRequest,
    ) -> Result<pb::CreateVolumeResponse, Status> {
        if req.name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        capabilities_supported(&req.volume_capabilities)?;
        let fs = fs_and_name(self, &req.parameters)?;
        let size = crate::controller::size_for(req.capacity_range.as_ref(), 1 << 30)?;
        let id = VolumeId {
            pool: fs.clone(),
            image: ids::image_for(&req.name),
        };
        let _busy = self.inflight.claim(&id.to_string())?;
        rookery_files::subvolume::names(&self.rados, &fs).map_err(|e| {
            if e.is_bad_request() {
                Status::not_found(e.to_string())
            } else {
                Status::internal(e.to_string())
            }
        })?;
        let source = match req
            .volume_content_source
            .as_ref()
            .and_then(|s| s.r#type.as_ref())
        {
            Some(pb::volume_content_source::Type::Snapshot(s)) => {
                format!("snapshot:{}", s.snapshot_id)
            }
            Some(pb::volume_content_source::Type::Volume(v)) => format!("volume:{}", v.volume_id),
            None => String::new(),
        };
        if let Some(info) = self.subvolume(&fs, &id.image)? {
            let name = self.meta_get(&fs, &id.image, META_NAME)?;
            if name.as_deref().is_some_and(|n| n != req.name) {
                return Err(Status::internal(format!(
                    "subvolume {id} belongs to another volume name"
                )));
            }
            let have_source = self
                .meta_get(&fs, &id.image, META_SOURCE)?
                .unwrap_or_default();
            let quota = info.bytes_quota.unwrap_or(0);
            let fits = req.capacity_range.as_ref().is_none_or(|r| {
                (r.required_bytes <= 0 || quota >= r.required_bytes as u64)
                    && (r.limit_bytes <= 0 || quota <= r.limit_bytes as u64)
            });
            if name.is_some() && (!fits || have_source != source) {
                return Err(Status::already_exists(format!(
                    "volume {:?} exists with a different size or content source",
                    req.name
                )));
            }
            if name.is_some() && info.state == "complete" {
                return Ok(pb::CreateVolumeResponse {
                    volume: Some(Self::fs_volume(
                        &id,
                        &info,
                        req.volume_content_source.clone(),
                    )),
                });
            }
        }
        match req
            .volume_content_source
            .as_ref()
            .and_then(|s| s.r#type.as_ref())
        {
            None => grpc(subvolume::create(&self.rados, &fs, &id.image, size))?,
            Some(pb::volume_content_source::Type::Snapshot(s)) => {
                let snap = SnapshotId::parse(&s.snapshot_id)
                    .filter(|s| s.volume.pool == fs)
                    .ok_or_else(|| {
                        Status::not_found(format!("no snapshot {:?} in {fs}", s.snapshot_id))
                    })?;
                self.fs_clone(&fs, &snap, &id.image)?;
            }
            Some(pb::volume_content_source::Type::Volume(v)) => {
                let src = VolumeId::parse(&v.volume_id)
                    .filter(|v| v.pool == fs)
                    .ok_or_else(|| {
                        Status::not_found(format!("no volume {:?} in {fs}", v.volume_id))
                    })?;
                if self.subvolume(&fs, &src.image)?.is_none() {
                    return Err(Status::not_found(format!("no volume {src}")));
                }
                let snap = SnapshotId {
                    volume: src,
                    snap: format!("csi-clone-{}", &id.image["csi-vol-".len()..]),
                };
                match grpc(subvolume::snapshot_create(
                    &self.rados,
                    &fs,
                    &snap.volume.image,
                    &snap.snap,
                )) {
                    Ok(()) => {}
                    Err(s) if s.code() == Code::AlreadyExists => {}
                    Err(s) => return Err(s),
                }
                let cloned = self.fs_clone(&fs, &snap, &id.image);
                let _ =
                    subvolume::snapshot_rm(&self.rados, &fs, &snap.volume.image, &snap.snap, true);
                cloned?;
            }
        }
        self.meta_set(&fs, &id.image, META_NAME, &req.name)?;
        self.meta_set(&fs, &id.image, META_SOURCE, &source)?;
        for (param, key) in [
            ("csi.storage.k8s.io/pvc/name", ids::META_CLAIM),
            ("csi.storage.k8s.io/pvc/namespace", ids::META_NAMESPACE),
            ("csi.storage.k8s.io/pv/name", ids::META_PV),
        ] {
            if let Some(v) = req.parameters.get(param) {
                self.meta_set(&fs, &id.image, key, v)?;
            }
        }
        let info = self
            .subvolume(&fs, &id.image)?
            .ok_or_else(|| Status::internal("the new subvolume vanished"))?;
        if info.bytes_quota != Some(size) && req.capacity_range.is_some() {
            grpc(subvolume::resize(&self.rados, &fs, &id.image, size, false))?;
        }
        let info = self.subvolume(&fs, &id.image)?.unwrap_or(info);
        Ok(pb::CreateVolumeResponse {
            volume: Some(Self::fs_volume(
                &id,
                &info,
                req.volume_content_source.clone(),
            )),
        })
    }

    /// Clones a snapshot into a new subvolume and waits for the copy (an existing clone is waited for).
    fn fs_clone(&self, fs: &str, snap: &SnapshotId, target: &str) -> Result<(), Status> {
        match grpc(subvolume::snapshot_clone(
            &self.rados,
            fs,
            &snap.volume.image,
            &snap.snap,
            target,
        )) {
            Ok(()) => {}
            Err(s) if s.code() == Code::AlreadyExists => {}
            Err(s) if s.code() == Code::NotFound => {
                return Err(Status::not_found(format!("snapshot {snap} does not exist")))
            }
            Err(s) => return Err(s),
        }
        self.wait_clone(fs, target)
    }

    pub(crate) fn fs_delete_volume(
        &self,
        req: pb::DeleteVolumeRequest,
    ) -> Result<pb::DeleteVolumeResponse, Status> {
        if req.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        let Some(id) = VolumeId::parse(&req.volume_id) else {
            return Ok(pb::DeleteVolumeResponse {});
        };
        let _busy = self.inflight.claim(&id.to_string())?;
        let here = mount::list(&self.data_dir).unwrap_or_default();
        if let Some(m) = here
            .iter()
            .find(|m| m.fs == id.pool && m.subvolume.as_deref() == Some(id.image.as_str()))
        {
            return Err(Status::failed_precondition(format!(
                "{id} is mounted at {}",
                m.path.display()
            )));
        }
        match grpc(subvolume::rm(&self.rados, &id.pool, &id.image)) {
            Ok(()) => Ok(pb::DeleteVolumeResponse {}),
            Err(s) if s.code() == Code::NotFound => Ok(pb::DeleteVolumeResponse {}),
            Err(s) if s.message().contains("snapshot") => Err(Status::failed_precondition(
                format!("{id} has snapshots; delete them first"),
            )),
            Err(s) => Err(s),
        }
    }

    pub(crate) fn fs_validate(
        &self,
        req: pb::ValidateVolumeCapabilitiesRequest,
    ) -> Result<pb::ValidateVolumeCapabilitiesResponse, Status> {
        if req.volume_id.is_empty() || req.volume_capabilities.is_empty() {
            return Err(Status::invalid_argument(
                "volume_id and volume_capabilities are required",
            ));
        }
        let id =
            VolumeId::parse(&req.volume_id).ok_or_else(|| Status::not_found("no such volume"))?;
        if self.subvolume(&id.pool, &id.image)?.is_none() {
            return Err(Status::not_found(format!("no volume {id}")));
        }
        Ok(match capabilities_supported(&req.volume_capabilities) {
            Ok(()) => pb::ValidateVolumeCapabilitiesResponse {
                confirmed: Some(pb::validate_volume_capabilities_response::Confirmed {
                    volume_context: req.volume_context,
                    volume_capabilities: req.volume_capabilities,
                    parameters: req.parameters,
                    mutable_parameters: Default::default(),
                }),
                message: String::new(),
            },
            Err(e) => pb::ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message: e.message().into(),
            },
        })
    }

    fn fs_names(&self) -> Result<Vec<String>, Status> {
        let ls = grpc(commands::fs::ls(&self.rados))?;
        Ok(ls.into_iter().map(|f| f.name).collect())
    }

    fn fs_all_volumes(&self) -> Result<Vec<(VolumeId, SubvolumeInfo)>, Status> {
        let mut out = Vec::new();
        for fs in self.fs_names()? {
            for name in grpc(subvolume::ls(&self.rados, &fs))? {
                if !name.starts_with("csi-vol-") {
                    continue;
                }
                if let Some(info) = self.subvolume(&fs, &name)? {
                    out.push((
                        VolumeId {
                            pool: fs.clone(),
                            image: name,
                        },
                        info,
                    ));
                }
            }
        }
        out.sort_by_key(|a| a.0.to_string());
        Ok(out)
    }

    pub(crate) fn fs_list_volumes(
        &self,
        req: pb::ListVolumesRequest,
    ) -> Result<pb::ListVolumesResponse, Status> {
        let all: Vec<pb::Volume> = self
            .fs_all_volumes()?
            .iter()
            .map(|(id, info)| Self::fs_volume(id, info, None))
            .collect();
        let (items, next) = page(all, req.max_entries, &req.starting_token)?;
        Ok(pb::ListVolumesResponse {
            entries: items
                .into_iter()
                .map(|v| pb::list_volumes_response::Entry {
                    volume: Some(v),
                    status: None,
                })
                .collect(),
            next_token: next,
        })
    }

    pub(crate) fn fs_get_capacity(
        &self,
        req: pb::GetCapacityRequest,
    ) -> Result<pb::GetCapacityResponse, Status> {
        let fs = fs_and_name(self, &req.parameters)?;
        let data_pool = format!("{fs}-");
        let df = grpc(commands::cluster::df(&self.rados))?;
        let avail = df
            .pools
            .iter()
            .filter(|p| p.name.starts_with(&data_pool) && !p.name.ends_with("-metadata"))
            .map(|p| p.stats.max_avail)
            .max()
            .ok_or_else(|| {
                Status::invalid_argument(format!("filesystem {fs:?} has no data pool"))
            })?;
        Ok(pb::GetCapacityResponse {
            available_capacity: avail as i64,
            maximum_volume_size: None,
            minimum_volume_size: Some(1 << 20),
        })
    }

    /// The snapshot's creation time, from the volumes module's `created_at` ("YYYY-MM-DD HH:MM:SS.ffffff").
    fn snap_time(
        &self,
        fs: &str,
        sub: &str,
        snap: &str,
    ) -> Result<Option<prost_types::Timestamp>, Status> {
        let info = grpc(subvolume::snapshot_info(&self.rados, fs, sub, snap))?;
        Ok(parse_time(&info.created_at))
    }

    pub(crate) fn fs_create_snapshot(
        &self,
        req: pb::CreateSnapshotRequest,
    ) -> Result<pb::CreateSnapshotResponse, Status> {
        if req.name.is_empty() || req.source_volume_id.is_empty() {
            return Err(Status::invalid_argument(
                "name and source_volume_id are required",
            ));
        }
        let src = VolumeId::parse(&req.source_volume_id)
            .ok_or_else(|| Status::not_found("no such volume"))?;
        let snap = ids::snapshot_for(&req.name);
        let _busy = self.inflight.claim(&src.to_string())?;
        let info = self
            .subvolume(&src.pool, &src.image)?
            .ok_or_else(|| Status::not_found(format!("no volume {src}")))?;
        // The same name on another volume is another snapshot.
        for (other, _) in self.fs_all_volumes()? {
            if other == src {
                continue;
            }
            let snaps = grpc(subvolume::snapshot_ls(
                &self.rados,
                &other.pool,
                &other.image,
            ))?;
            if snaps.contains(&snap) {
                return Err(Status::already_exists(format!(
                    "snapshot {:?} exists for another volume ({other})",
                    req.name
                )));
            }
        }
        match grpc(subvolume::snapshot_create(
            &self.rados,
            &src.pool,
            &src.image,
            &snap,
        )) {
            Ok(()) => {}
            Err(s) if s.code() == Code::AlreadyExists => {}
            Err(s) => return Err(s),
        }
        let id = SnapshotId {
            volume: src.clone(),
            snap: snap.clone(),
        };
        Ok(pb::CreateSnapshotResponse {
            snapshot: Some(pb::Snapshot {
                size_bytes: info.bytes_used as i64,
                snapshot_id: id.to_string(),
                source_volume_id: src.to_string(),
                creation_time: self.snap_time(&src.pool, &src.image, &snap)?,
                ready_to_use: true,
                group_snapshot_id: String::new(),
            }),
        })
    }

    pub(crate) fn fs_delete_snapshot(
        &self,
        req: pb::DeleteSnapshotRequest,
    ) -> Result<pb::DeleteSnapshotResponse, Status> {
        if req.snapshot_id.is_empty() {
            return Err(Status::invalid_argument("snapshot_id is required"));
        }
        let Some(id) = SnapshotId::parse(&req.snapshot_id) else {
            return Ok(pb::DeleteSnapshotResponse {});
        };
        let _busy = self.inflight.claim(&id.volume.to_string())?;
        match grpc(subvolume::snapshot_rm(
            &self.rados,
            &id.volume.pool,
            &id.volume.image,
            &id.snap,
            false,
        )) {
            Ok(()) => Ok(pb::DeleteSnapshotResponse {}),
            Err(s) if s.code() == Code::NotFound => Ok(pb::DeleteSnapshotResponse {}),
            Err(s) => Err(s),
        }
    }

    pub(crate) fn fs_list_snapshots(
        &self,
        req: pb::ListSnapshotsRequest,
    ) -> Result<pb::ListSnapshotsResponse, Status> {
        let mut all = Vec::new();
        for (vol, info) in self.fs_all_volumes()? {
            if !req.source_volume_id.is_empty() && req.source_volume_id != vol.to_string() {
                continue;
            }
            for name in grpc(subvolume::snapshot_ls(&self.rados, &vol.pool, &vol.image))? {
                if !name.starts_with("csi-snap-") {
                    continue;
                }
                let id = SnapshotId {
                    volume: vol.clone(),
                    snap: name,
                };
                if !req.snapshot_id.is_empty() && req.snapshot_id != id.to_string() {
                    continue;
                }
                all.push(pb::Snapshot {
                    size_bytes: info.bytes_used as i64,
                    snapshot_id: id.to_string(),
                    source_volume_id: vol.to_string(),
                    creation_time: self.snap_time(&vol.pool, &vol.image, &id.snap)?,
                    ready_to_use: true,
                    group_snapshot_id: String::new(),
                });
            }
        }
        let (items, next) = page(all, req.max_entries, &req.starting_token)?;
        Ok(pb::ListSnapshotsResponse {
            entries: items
                .into_iter()
                .map(|s| pb::list_snapshots_response::Entry { snapshot: Some(s) })
                .collect(),
            next_token: next,
        })
    }

    pub(crate) fn fs_expand(
        &self,
        req: pb::ControllerExpandVolumeRequest,
    ) -> Result<pb::ControllerExpandVolumeResponse, Status> {
        if req.volume_id.is_empty() || req.capacity_range.is_none() {
            return Err(Status::invalid_argument(
                "volume_id and capacity_range are required",
            ));
        }
        let id =
            VolumeId::parse(&req.volume_id).ok_or_else(|| Status::not_found("no such volume"))?;
        let _busy = self.inflight.claim(&id.to_string())?;
        let info = self
            .subvolume(&id.pool, &id.image)?
            .ok_or_else(|| Status::not_found(format!("no volume {id}")))?;
        let current = info.bytes_quota.unwrap_or(0);
        let want = crate::controller::size_for(req.capacity_range.as_ref(), current)?;
        if want > current {
            grpc(subvolume::resize(
                &self.rados,
                &id.pool,
                &id.image,
                want,
                true,
            ))?;
        }
        // The quota is the size every mount sees at once: nothing to do on the nodes.
        Ok(pb::ControllerExpandVolumeResponse {
            capacity_bytes: want.max(current) as i64,
            node_expansion_required: false,
        })
    }

    pub(crate) fn fs_stage(
        &self,
        req: pb::NodeStageVolumeRequest,
    ) -> Result<pb::NodeStageVolumeResponse, Status> {
        if req.volume_id.is_empty() || req.staging_target_path.is_empty() {
            return Err(Status::invalid_argument(
                "volume_id and staging_target_path are required",
            ));
        }
        let cap = req
            .volume_capability
            .clone()
            .ok_or_else(|| Status::invalid_argument("volume_capability is required"))?;
        capabilities_supported(std::slice::from_ref(&cap))?;
        let id =
            VolumeId::parse(&req.volume_id).ok_or_else(|| Status::not_found("no such volume"))?;
        let _busy = self.inflight.claim(&id.to_string())?;
        let staging = PathBuf::from(&req.staging_target_path);
        std::fs::create_dir_all(&staging)
            .map_err(|e| Status::internal(format!("{}: {e}", staging.display())))?;
        let canon = std::fs::canonicalize(&staging).unwrap_or(staging.clone());
        let here = mount::list(&self.data_dir).map_err(|e| Status::internal(e.to_string()))?;
        if let Some(m) = here.iter().find(|m| m.path == canon) {
            if m.fs == id.pool && m.subvolume.as_deref() == Some(id.image.as_str()) {
                return Ok(pb::NodeStageVolumeResponse {});
            }
            return Err(Status::already_exists(format!(
                "{} holds another volume",
                staging.display()
            )));
        }
        if rookery_volumes::mounts::is_mount_point(&staging) {
            return Err(Status::already_exists(format!(
                "{} is already a mount point",
                staging.display()
            )));
        }
        use pb::volume_capability::access_mode::Mode;
        let read_only = cap.access_mode.as_ref().is_some_and(|m| {
            matches!(
                m.mode(),
                Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly
            )
        });
        mount::mount(
            &self.rados,
            &MountRequest {
                fs: id.pool.clone(),
                subvolume: Some(id.image.clone()),
                path: staging,
                read_only,
                conf: self.conf.clone(),
                data_dir: self.data_dir.clone(),
            },
        )
        .map_err(|e| {
            if e.is_bad_request() {
                Status::not_found(e.to_string())
            } else {
                Status::internal(e.to_string())
            }
        })?;
        Ok(pb::NodeStageVolumeResponse {})
    }

    pub(crate) fn fs_unstage(
        &self,
        req: pb::NodeUnstageVolumeRequest,
    ) -> Result<pb::NodeUnstageVolumeResponse, Status> {
        if req.volume_id.is_empty() || req.staging_target_path.is_empty() {
            return Err(Status::invalid_argument(
                "volume_id and staging_target_path are required",
            ));
        }
        let staging = PathBuf::from(&req.staging_target_path);
        let canon = std::fs::canonicalize(&staging).unwrap_or(staging.clone());
        let here = mount::list(&self.data_dir).map_err(|e| Status::internal(e.to_string()))?;
        if here.iter().any(|m| m.path == canon) {
            mount::unmount(&self.data_dir, &canon.display().to_string())
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(pb::NodeUnstageVolumeResponse {})
    }

    /// Whether `staging` holds this CephFS volume (for publish).
    pub(crate) fn fs_staged(
        &self,
        id: &VolumeId,
        staging: &std::path::Path,
    ) -> Result<bool, Status> {
        let canon = std::fs::canonicalize(staging).unwrap_or(staging.to_path_buf());
        let here = mount::list(&self.data_dir).map_err(|e| Status::internal(e.to_string()))?;
        Ok(here.iter().any(|m| {
            m.path == canon && m.fs == id.pool && m.subvolume.as_deref() == Some(id.image.as_str())
        }))
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
    #[test]
    fn times() {
        let t = super::parse_time("2015-08-30 12:36:00.5").unwrap();
        assert_eq!((t.seconds, t.nanos), (1_440_938_160, 500_000_000));
        let t = super::parse_time("2000-02-29 00:00:00").unwrap();
        assert_eq!(t.seconds, 951_782_400);
        assert!(super::parse_time("garbage").is_none());
    }
}
