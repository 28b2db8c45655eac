//! The CSI controller for RBD: volumes are librbd images named from the CO's request name (see `ids`),
//! snapshots are image snapshots, volumes from a snapshot or a volume are clones flattened at once (so
//! deleting the source never waits on them).

use rookery_ceph::commands::{cluster, osd};
use rookery_ceph::rbd::{self, Image};
use rookery_ceph::IoCtx;
use rookery_volumes::manage;
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use crate::ids::{self, SnapshotId, VolumeId};
use crate::pb;
use crate::{ceph_status, page, Driver};

/// Smallest volume: what `rookery volume` accepts.
const MIN_SIZE: u64 = 1 << 20;

/// The size a capacity range asks for, rounded up to whole MiB; OUT_OF_RANGE when none fits.
pub fn size_for(range: Option<&pb::CapacityRange>, default: u64) -> Result<u64, Status> {
    let Some(r) = range else { return Ok(default) };
    if r.required_bytes < 0 || r.limit_bytes < 0 {
        return Err(Status::invalid_argument(
            "capacity_range values must not be negative",
        ));
    }
    let (required, limit) = (r.required_bytes as u64, r.limit_bytes as u64);
    if limit > 0 && required > limit {
        return Err(Status::out_of_range(format!(
            "required_bytes {required} is more than limit_bytes {limit}"
        )));
    }
    let want = if required == 0 {
        default.min(if limit > 0 { limit } else { default })
    } else {
        required
    };
    let size = want.max(MIN_SIZE).div_ceil(MIN_SIZE) * MIN_SIZE;
    if limit > 0 && size > limit {
        return Err(Status::out_of_range(format!(
            "the smallest volume rookery makes that holds {want} bytes is {size} bytes, above limit_bytes {limit}"
        )));
    }
    Ok(size)
}

fn fits(size: u64, range: Option<&pb::CapacityRange>) -> bool {
    range.is_none_or(|r| {
        (r.required_bytes <= 0 || size >= r.required_bytes as u64)
            && (r.limit_bytes <= 0 || size <= r.limit_bytes as u64)
    })
}

/// StorageClass parameters rookery understands (ceph-csi's names where they mean the same).
struct Params {
    pool: String,
    fstype: String,
    features: u64,
    claim: Vec<(&'static str, String)>,
}

fn params(
    d: &Driver,
    p: &std::collections::HashMap<String, String>,
    caps: &[pb::VolumeCapability],
) -> Result<Params, Status> {
    for (k, v) in p {
        let known = matches!(
            k.as_str(),
            "clusterID"
                | "pool"
                | "imageFeatures"
                | "csi.storage.k8s.io/fstype"
                | "fsType"
                | "mounter"
                | "imageFormat"
                | "dataPool"
        ) || k.starts_with("csi.storage.k8s.io/");
        if !known {
            return Err(Status::invalid_argument(format!(
                "unknown parameter {k:?}; rookery's RBD driver takes clusterID, pool, dataPool, imageFeatures, mounter and csi.storage.k8s.io/fstype"
            )));
        }
        if k == "imageFormat" && v != "2" {
            return Err(Status::invalid_argument("imageFormat: only 2 is supported"));
        }
    }
    if let Some(id) = p.get("clusterID") {
        d.check_cluster(id)?;
    }
    if let Some(m) = p.get("mounter") {
        if !matches!(m.as_str(), "rbd-fuse" | "fuse") {
            return Err(Status::invalid_argument(format!(
                "mounter {m:?} is not available on this host (no rbd kernel module, no nbd); use mounter: rbd-fuse or leave it out"
            )));
        }
    }
    let features = match p.get("imageFeatures") {
        None => rookery_volumes::mapper::default_features(),
        Some(list) => {
            let mut bits = 0;
            for f in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                bits |= feature_bit(f).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "imageFeatures: {f:?} is not an RBD image feature (layering, exclusive-lock, object-map, fast-diff, deep-flatten, journaling)"
                    ))
                })?;
            }
            bits
        }
    };
    let mut fstype = p
        .get("csi.storage.k8s.io/fstype")
        .or_else(|| p.get("fsType"))
        .cloned()
        .unwrap_or_default();
    let block = caps.iter().any(|c| {
        matches!(
            c.access_type,
            Some(pb::volume_capability::AccessType::Block(_))
        )
    });
    let mount = caps.iter().any(|c| {
        matches!(
            c.access_type,
            Some(pb::volume_capability::AccessType::Mount(_))
        )
    });
    if block && mount {
        return Err(Status::invalid_argument(
            "a volume is either raw block or a filesystem; ask for one access type",
        ));
    }
    for c in caps {
        if let Some(pb::volume_capability::AccessType::Mount(m)) = &c.access_type {
            if !m.fs_type.is_empty() {
                fstype = m.fs_type.clone();
            }
        }
    }
    if fstype.is_empty() {
        fstype = "ext4".into();
    }
    if block {
        // Marks the image so nothing ever formats it: the workload owns the raw device.
        return Ok(Params {
            pool: p
                .get("pool")
                .cloned()
                .unwrap_or_else(|| manage::DEFAULT_POOL.to_string()),
            fstype: "none".into(),
            features,
            claim: claim_of(p),
        });
    }
    if !matches!(fstype.as_str(), "ext4" | "xfs") {
        return Err(Status::invalid_argument(format!(
            "filesystem {fstype:?} is not supported; use ext4 or xfs"
        )));
    }
    let claim = claim_of(p);
    Ok(Params {
        pool: p
            .get("pool")
            .cloned()
            .unwrap_or_else(|| manage::DEFAULT_POOL.to_string()),
        fstype,
        features,
        claim,
    })
}

fn claim_of(p: &std::collections::HashMap<String, String>) -> Vec<(&'static str, String)> {
    [
        ("csi.storage.k8s.io/pvc/name", ids::META_CLAIM),
        ("csi.storage.k8s.io/pvc/namespace", ids::META_NAMESPACE),
        ("csi.storage.k8s.io/pv/name", ids::META_PV),
    ]
    .iter()
    .filter_map(|(param, key)| p.get(*param).map(|v| (*key, v.clone())))
    .collect()
}

fn open_pool<'a>(d: &'a Driver, pool: &str) -> Result<IoCtx<'a>, Status> {
    d.rados.ioctx(pool).map_err(|e| {
        if e.errno() == Some(-libc::ENOENT) {
            Status::not_found(format!("pool {pool:?} does not exist"))
        } else {
            ceph_status(&e)
        }
    })
}

/// None when the image does not exist.
fn open_image<'a>(io: &'a IoCtx<'a>, name: &str) -> Result<Option<Image<'a>>, Status> {
    match Image::open(io, name) {
        Ok(i) => Ok(Some(i)),
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(None),
        Err(e) => Err(ceph_status(&e)),
    }
}

fn volume_of(
    id: &VolumeId,
    image: &Image,
    source: Option<pb::VolumeContentSource>,
) -> Result<pb::Volume, Status> {
    let size = image.size().map_err(|e| ceph_status(&e))?;
    let fstype = image
        .metadata_get(rookery_volumes::META_FS)
        .map_err(|e| ceph_status(&e))?
        .unwrap_or_else(|| "ext4".into());
    Ok(pb::Volume {
        capacity_bytes: size as i64,
        volume_id: id.to_string(),
        volume_context: [
            ("pool".to_string(), id.pool.clone()),
            ("imageName".to_string(), id.image.clone()),
            ("fstype".to_string(), fstype),
        ]
        .into_iter()
        .collect(),
        content_source: source,
        accessible_topology: vec![],
    })
}

fn source_text(s: &Option<pb::VolumeContentSource>) -> String {
    match s.as_ref().and_then(|s| s.r#type.as_ref()) {
        Some(pb::volume_content_source::Type::Snapshot(s)) => format!("snapshot:{}", s.snapshot_id),
        Some(pb::volume_content_source::Type::Volume(v)) => format!("volume:{}", v.volume_id),
        None => String::new(),
    }
}

/// The journal entry of a volume, in the RADOS object `rookery.csi.vol.<image>` beside it: the CO's name
/// (for idempotency), where its data came from, and the claim it serves. One small write, where image
/// metadata would take the image's exclusive lock.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Journal {
    pub name: String,
    pub source: String,
    #[serde(default)]
    pub claim: std::collections::BTreeMap<String, String>,
}

pub(crate) fn journal_object(image: &str) -> String {
    rookery_volumes::manage::csi_journal_object(image)
}

fn write_journal(io: &IoCtx, image: &str, j: &Journal) -> Result<(), Status> {
    let bytes = serde_json::to_vec(j).map_err(|e| Status::internal(e.to_string()))?;
    io.write_full(&journal_object(image), &bytes)
        .map_err(|e| ceph_status(&e))
}

pub(crate) fn read_journal(io: &IoCtx, image: &str) -> Result<Option<Journal>, Status> {
    match io.read_all(&journal_object(image)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Status::internal(format!("journal of {image}: {e}"))),
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(None),
        Err(e) => Err(ceph_status(&e)),
    }
}

fn volume_info(
    id: &VolumeId,
    size: u64,
    fstype: &str,
    source: Option<pb::VolumeContentSource>,
) -> pb::Volume {
    pb::Volume {
        capacity_bytes: size as i64,
        volume_id: id.to_string(),
        volume_context: [
            ("pool".to_string(), id.pool.clone()),
            ("imageName".to_string(), id.image.clone()),
            ("fstype".to_string(), fstype.to_string()),
        ]
        .into_iter()
        .collect(),
        content_source: source,
        accessible_topology: vec![],
    }
}

/// What a snapshot's index object records: its CO name, source volume and creation time.
#[derive(Serialize, Deserialize)]
struct SnapRecord {
    name: String,
    source: String,
    created_unix: i64,
    created_nanos: i32,
}

fn snap_object(snap: &str) -> String {
    format!("rookery.csi.{snap}")
}

impl Driver {
    pub(crate) fn create_volume(
        &self,
        req: pb::CreateVolumeRequest,
    ) -> Result<pb::CreateVolumeResponse, Status> {
        if req.name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        self.supports(&req.volume_capabilities)?;
        let p = params(self, &req.parameters, &req.volume_capabilities)?;
        let size = size_for(req.capacity_range.as_ref(), 1 << 30)?;
        let id = VolumeId {
            pool: p.pool.clone(),
            image: ids::image_for(&req.name),
        };
        let _busy = self.inflight.claim(&id.to_string())?;
        let io = open_pool(self, &p.pool)?;
        let source = source_text(&req.volume_content_source);
        // Create first and learn from EEXIST that it exists: one round trip less on the common path.
        let made: Result<(), Status> = match req
            .volume_content_source
            .as_ref()
            .and_then(|s| s.r#type.as_ref())
        {
            None => rbd::create(&io, &id.image, size, p.features).map_err(|e| ceph_status(&e)),
            Some(pb::volume_content_source::Type::Snapshot(s)) => {
                let snap = SnapshotId::parse(&s.snapshot_id)
                    .ok_or_else(|| Status::not_found(format!("no snapshot {:?}", s.snapshot_id)))?;
                self.clone_from(&snap, &io, &id, p.features, None)
            }
            Some(pb::volume_content_source::Type::Volume(v)) => {
                let src = VolumeId::parse(&v.volume_id)
                    .ok_or_else(|| Status::not_found(format!("no volume {:?}", v.volume_id)))?;
                // A clone needs a snapshot; a temporary one, removed once the clone is flattened.
                let snap = SnapshotId {
                    volume: src,
                    snap: format!("csi-clone-{}", &id.image["csi-vol-".len()..]),
                };
                self.clone_from(&snap, &io, &id, p.features, Some(()))
            }
        };
        match made {
            Ok(()) => {}
            Err(e) if e.code() == Code::AlreadyExists => {
                let existing = open_image(&io, &id.image)?
                    .ok_or_else(|| Status::aborted("the volume is being deleted; retry"))?;
                return self.existing(&io, &id, &existing, &req, &source);
            }
            Err(e) => return Err(e),
        }
        let record = Journal {
            name: req.name.clone(),
            source,
            claim: p
                .claim
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        write_journal(&io, &id.image, &record)?;
        let mut capacity = size;
        // The attach code reads the filesystem from the image (ext4 when unset, "none" for raw block); a
        // clone's size is its source's, and the request's wins when larger.
        if p.fstype != "ext4" || req.volume_content_source.is_some() {
            let image = open_image(&io, &id.image)?
                .ok_or_else(|| Status::internal("the new image vanished"))?;
            if p.fstype != "ext4" {
                image
                    .metadata_set(rookery_volumes::META_FS, &p.fstype)
                    .map_err(|e| ceph_status(&e))?;
            }
            let now = image.size().map_err(|e| ceph_status(&e))?;
            if now < size {
                image.resize(size).map_err(|e| ceph_status(&e))?;
            }
            capacity = now.max(size);
        }
        Ok(pb::CreateVolumeResponse {
            volume: Some(volume_info(
                &id,
                capacity,
                &p.fstype,
                req.volume_content_source.clone(),
            )),
        })
    }

    /// The answer for a name whose image exists: the same volume if compatible, ALREADY_EXISTS if not.
    fn existing(
        &self,
        io: &IoCtx,
        id: &VolumeId,
        image: &Image,
        req: &pb::CreateVolumeRequest,
        source: &str,
    ) -> Result<pb::CreateVolumeResponse, Status> {
        match read_journal(io, &id.image)? {
            Some(j) if j.name != req.name => {
                return Err(Status::internal(format!(
                    "image {id} belongs to another volume name"
                )))
            }
            Some(j) if j.source != source => {
                return Err(Status::already_exists(format!(
                    "volume {:?} exists with another content source ({:?})",
                    req.name, j.source
                )))
            }
            Some(_) => {}
            // Made by a request that crashed before writing its record: the name's hash says it is ours.
            None => write_journal(
                io,
                &id.image,
                &Journal {
                    name: req.name.clone(),
                    source: source.to_string(),
                    claim: Default::default(),
                },
            )?,
        }
        let size = image.size().map_err(|e| ceph_status(&e))?;
        if !fits(size, req.capacity_range.as_ref()) {
            return Err(Status::already_exists(format!(
                "volume {:?} exists with {size} bytes, outside the requested capacity range",
                req.name
            )));
        }
        Ok(pb::CreateVolumeResponse {
            volume: Some(volume_of(id, image, req.volume_content_source.clone())?),
        })
    }

    /// Clones `snap` into `id` and flattens it; with `temporary`, the snapshot is made first and removed
    /// after.
    fn clone_from(
        &self,
        snap: &SnapshotId,
        io: &IoCtx,
        id: &VolumeId,
        features: u64,
        temporary: Option<()>,
    ) -> Result<(), Status> {
        let src_io = open_pool(self, &snap.volume.pool)?;
        let src = open_image(&src_io, &snap.volume.image)?.ok_or_else(|| {
            Status::not_found(format!("source volume {} does not exist", snap.volume))
        })?;
        if temporary.is_some() {
            match src.snapshot_create(&snap.snap) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(-libc::EEXIST) => {}
                Err(e) => return Err(ceph_status(&e)),
            }
        } else if !src
            .snapshots()
            .map_err(|e| ceph_status(&e))?
            .iter()
            .any(|s| s.name == snap.snap)
        {
            return Err(Status::not_found(format!("snapshot {snap} does not exist")));
        }
        let fs = src
            .metadata_get(rookery_volumes::META_FS)
            .map_err(|e| ceph_status(&e))?;
        let cloned = rbd::clone(
            &src_io,
            &snap.volume.image,
            &snap.snap,
            io,
            &id.image,
            features,
        );
        let result = cloned.map_err(|e| ceph_status(&e)).and_then(|()| {
            let child = Image::open(io, &id.image).map_err(|e| ceph_status(&e))?;
            if let Some(fs) = fs {
                child
                    .metadata_set(rookery_volumes::META_FS, &fs)
                    .map_err(|e| ceph_status(&e))?;
            }
            child.flatten().map_err(|e| ceph_status(&e))
        });
        if temporary.is_some() {
            let _ = src.snapshot_remove(&snap.snap);
        }
        result
    }

    pub(crate) fn delete_volume(
        &self,
        req: pb::DeleteVolumeRequest,
    ) -> Result<pb::DeleteVolumeResponse, Status> {
        if req.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        // An id rookery never made names nothing: deleting nothing succeeds.
        let Some(id) = VolumeId::parse(&req.volume_id) else {
            return Ok(pb::DeleteVolumeResponse {});
        };
        let _busy = self.inflight.claim(&id.to_string())?;
        let Ok(io) = self.rados.ioctx(&id.pool) else {
            return Ok(pb::DeleteVolumeResponse {});
        };
        if open_image(&io, &id.image)?.is_none() {
            return Ok(pb::DeleteVolumeResponse {});
        }
        match manage::remove(&self.rados, &id.pool, &id.image) {
            Ok(()) => {
                match io.remove(&journal_object(&id.image)) {
                    Ok(()) => {}
                    Err(e) if e.errno() == Some(-libc::ENOENT) => {}
                    Err(e) => return Err(ceph_status(&e)),
                }
                Ok(pb::DeleteVolumeResponse {})
            }
            Err(e) if e.is_bad_request() => Err(Status::failed_precondition(e.to_string())),
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }

    pub(crate) fn validate(
        &self,
        req: pb::ValidateVolumeCapabilitiesRequest,
    ) -> Result<pb::ValidateVolumeCapabilitiesResponse, Status> {
        if req.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        if req.volume_capabilities.is_empty() {
            return Err(Status::invalid_argument("volume_capabilities are required"));
        }
        let id = VolumeId::parse(&req.volume_id)
            .ok_or_else(|| Status::not_found(format!("no volume {:?}", req.volume_id)))?;
        let io = open_pool(self, &id.pool)?;
        if open_image(&io, &id.image)?.is_none() {
            return Err(Status::not_found(format!("no volume {id}")));
        }
        match self.supports(&req.volume_capabilities) {
            Ok(()) => Ok(pb::ValidateVolumeCapabilitiesResponse {
                confirmed: Some(pb::validate_volume_capabilities_response::Confirmed {
                    volume_context: req.volume_context,
                    volume_capabilities: req.volume_capabilities,
                    parameters: req.parameters,
                    mutable_parameters: Default::default(),
                }),
                message: String::new(),
            }),
            Err(e) => Ok(pb::ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message: e.message().to_string(),
            }),
        }
    }

    /// Every CSI volume in every RBD pool, sorted by id.
    fn all_volumes(&self) -> Result<Vec<pb::Volume>, Status> {
        let dump = osd::dump(&self.rados).map_err(|e| ceph_status(&e))?;
        let mut out = Vec::new();
        for pool in dump
            .pools
            .iter()
            .filter(|p| p.application_metadata.contains_key("rbd"))
        {
            let io = open_pool(self, &pool.pool_name)?;
            for name in rbd::list(&io).map_err(|e| ceph_status(&e))? {
                if !name.starts_with("csi-vol-") {
                    continue;
                }
                if let Some(image) = open_image(&io, &name)? {
                    let id = VolumeId {
                        pool: pool.pool_name.clone(),
                        image: name,
                    };
                    out.push(volume_of(&id, &image, None)?);
                }
            }
        }
        out.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
        Ok(out)
    }

    pub(crate) fn list_volumes(
        &self,
        req: pb::ListVolumesRequest,
    ) -> Result<pb::ListVolumesResponse, Status> {
        let all = self.all_volumes()?;
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

    pub(crate) fn get_capacity(
        &self,
        req: pb::GetCapacityRequest,
    ) -> Result<pb::GetCapacityResponse, Status> {
        if let Some(c) = &req.volume_capabilities.first() {
            self.supports(std::slice::from_ref(c))?;
        }
        let pool = req
            .parameters
            .get("pool")
            .cloned()
            .unwrap_or_else(|| manage::DEFAULT_POOL.into());
        if let Some(id) = req.parameters.get("clusterID") {
            self.check_cluster(id)?;
        }
        let df = cluster::df(&self.rados).map_err(|e| ceph_status(&e))?;
        let avail = df
            .pools
            .iter()
            .find(|p| p.name == pool)
            .map(|p| p.stats.max_avail)
            .ok_or_else(|| Status::invalid_argument(format!("pool {pool:?} does not exist")))?;
        Ok(pb::GetCapacityResponse {
            available_capacity: avail as i64,
            maximum_volume_size: None,
            minimum_volume_size: Some(MIN_SIZE as i64),
        })
    }

    pub(crate) fn create_snapshot(
        &self,
        req: pb::CreateSnapshotRequest,
    ) -> Result<pb::CreateSnapshotResponse, Status> {
        if req.name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        if req.source_volume_id.is_empty() {
            return Err(Status::invalid_argument("source_volume_id is required"));
        }
        let src = VolumeId::parse(&req.source_volume_id)
            .ok_or_else(|| Status::not_found(format!("no volume {:?}", req.source_volume_id)))?;
        let snap = ids::snapshot_for(&req.name);
        let _busy = self.inflight.claim(&src.to_string())?;
        let io = open_pool(self, &src.pool)?;
        let record = match io.read_all(&snap_object(&snap)) {
            Ok(bytes) => Some(
                serde_json::from_slice::<SnapRecord>(&bytes)
                    .map_err(|e| Status::internal(format!("snapshot record {snap}: {e}")))?,
            ),
            Err(e) if e.errno() == Some(-libc::ENOENT) => None,
            Err(e) => return Err(ceph_status(&e)),
        };
        if let Some(r) = &record {
            if r.source != src.to_string() {
                return Err(Status::already_exists(format!(
                    "snapshot {:?} exists for another volume ({})",
                    req.name, r.source
                )));
            }
        }
        let image = open_image(&io, &src.image)?
            .ok_or_else(|| Status::not_found(format!("no volume {src}")))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let record = match record {
            Some(r) => r,
            None => {
                let r = SnapRecord {
                    name: req.name.clone(),
                    source: src.to_string(),
                    created_unix: now.as_secs() as i64,
                    created_nanos: now.subsec_nanos() as i32,
                };
                let bytes = serde_json::to_vec(&r).map_err(|e| Status::internal(e.to_string()))?;
                io.write_full(&snap_object(&snap), &bytes)
                    .map_err(|e| ceph_status(&e))?;
                r
            }
        };
        let snaps = image.snapshots().map_err(|e| ceph_status(&e))?;
        let size = match snaps.iter().find(|s| s.name == snap) {
            Some(s) => s.size,
            None => {
                image.snapshot_create(&snap).map_err(|e| ceph_status(&e))?;
                image.size().map_err(|e| ceph_status(&e))?
            }
        };
        let id = SnapshotId { volume: src, snap };
        Ok(pb::CreateSnapshotResponse {
            snapshot: Some(pb::Snapshot {
                size_bytes: size as i64,
                snapshot_id: id.to_string(),
                source_volume_id: id.volume.to_string(),
                creation_time: Some(prost_types::Timestamp {
                    seconds: record.created_unix,
                    nanos: record.created_nanos,
                }),
                ready_to_use: true,
                group_snapshot_id: String::new(),
            }),
        })
    }

    pub(crate) fn delete_snapshot(
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
        let Ok(io) = self.rados.ioctx(&id.volume.pool) else {
            return Ok(pb::DeleteSnapshotResponse {});
        };
        if let Some(image) = open_image(&io, &id.volume.image)? {
            match image.snapshot_remove(&id.snap) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(-libc::ENOENT) => {}
                Err(e) if e.errno() == Some(-libc::EBUSY) => {
                    return Err(Status::failed_precondition(format!(
                        "snapshot {id} is in use"
                    )))
                }
                Err(e) => return Err(ceph_status(&e)),
            }
        }
        match io.remove(&snap_object(&id.snap)) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(-libc::ENOENT) => {}
            Err(e) => return Err(ceph_status(&e)),
        }
        Ok(pb::DeleteSnapshotResponse {})
    }

    pub(crate) fn list_snapshots(
        &self,
        req: pb::ListSnapshotsRequest,
    ) -> Result<pb::ListSnapshotsResponse, Status> {
        let mut all = Vec::new();
        let volumes: Vec<VolumeId> = if !req.source_volume_id.is_empty() {
            VolumeId::parse(&req.source_volume_id).into_iter().collect()
        } else if !req.snapshot_id.is_empty() {
            SnapshotId::parse(&req.snapshot_id)
                .map(|s| s.volume)
                .into_iter()
                .collect()
        } else {
            self.all_volumes()?
                .iter()
                .filter_map(|v| VolumeId::parse(&v.volume_id))
                .collect()
        };
        for vol in volumes {
            let Ok(io) = self.rados.ioctx(&vol.pool) else {
                continue;
            };
            let Some(image) = open_image(&io, &vol.image)? else {
                continue;
            };
            for s in image.snapshots().map_err(|e| ceph_status(&e))? {
                if !s.name.starts_with("csi-snap-") {
                    continue;
                }
                let id = SnapshotId {
                    volume: vol.clone(),
                    snap: s.name.clone(),
                };
                if !req.snapshot_id.is_empty() && req.snapshot_id != id.to_string() {
                    continue;
                }
                let record: Option<SnapRecord> = io
                    .read_all(&snap_object(&s.name))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                all.push(pb::Snapshot {
                    size_bytes: s.size as i64,
                    snapshot_id: id.to_string(),
                    source_volume_id: vol.to_string(),
                    creation_time: record.map(|r| prost_types::Timestamp {
                        seconds: r.created_unix,
                        nanos: r.created_nanos,
                    }),
                    ready_to_use: true,
                    group_snapshot_id: String::new(),
                });
            }
        }
        all.sort_by(|a, b| a.snapshot_id.cmp(&b.snapshot_id));
        let (items, next) = page(all, req.max_entries, &req.starting_token)?;
        Ok(pb::ListSnapshotsResponse {
            entries: items
                .into_iter()
                .map(|s| pb::list_snapshots_response::Entry { snapshot: Some(s) })
                .collect(),
            next_token: next,
        })
    }

    pub(crate) fn expand(
        &self,
        req: pb::ControllerExpandVolumeRequest,
    ) -> Result<pb::ControllerExpandVolumeResponse, Status> {
        if req.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        if req.capacity_range.is_none() {
            return Err(Status::invalid_argument("capacity_range is required"));
        }
        let id = VolumeId::parse(&req.volume_id)
            .ok_or_else(|| Status::not_found(format!("no volume {:?}", req.volume_id)))?;
        let _busy = self.inflight.claim(&id.to_string())?;
        let io = open_pool(self, &id.pool)?;
        let image = open_image(&io, &id.image)?
            .ok_or_else(|| Status::not_found(format!("no volume {id}")))?;
        let current = image.size().map_err(|e| ceph_status(&e))?;
        let want = size_for(req.capacity_range.as_ref(), current)?;
        if want > current {
            image.resize(want).map_err(|e| ceph_status(&e))?;
        }
        Ok(pb::ControllerExpandVolumeResponse {
            capacity_bytes: want.max(current) as i64,
            // A filesystem grows on the node; so does a raw device's view (its loop device's size).
            node_expansion_required: true,
        })
    }
}

/// The bit of an image feature a StorageClass may ask for.
fn feature_bit(name: &str) -> Option<u64> {
    use rbd::features::*;
    Some(match name {
        "layering" => LAYERING,
        "exclusive-lock" => EXCLUSIVE_LOCK,
        "object-map" => OBJECT_MAP,
        "fast-diff" => FAST_DIFF,
        "deep-flatten" => DEEP_FLATTEN,
        "journaling" => JOURNALING,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(req: i64, lim: i64) -> pb::CapacityRange {
        pb::CapacityRange {
            required_bytes: req,
            limit_bytes: lim,
        }
    }

    #[test]
    fn sizes_follow_the_range() {
        assert_eq!(size_for(None, 1 << 30).unwrap(), 1 << 30);
        assert_eq!(size_for(Some(&range(1, 0)), 1 << 30).unwrap(), 1 << 20);
        assert_eq!(
            size_for(Some(&range((5 << 20) + 1, 0)), 0).unwrap(),
            6 << 20
        );
        assert_eq!(
            size_for(Some(&range(0, 2 << 20)), 1 << 30).unwrap(),
            2 << 20
        );
        assert_eq!(
            size_for(Some(&range(10, 5)), 0).unwrap_err().code(),
            Code::OutOfRange
        );
        assert_eq!(
            size_for(Some(&range(100, 200)), 0).unwrap_err().code(),
            Code::OutOfRange
        );
        assert_eq!(
            size_for(Some(&range(-1, 0)), 0).unwrap_err().code(),
            Code::InvalidArgument
        );
        assert!(fits(5 << 20, Some(&range(5 << 20, 0))));
        assert!(!fits(5 << 20, Some(&range(6 << 20, 0))));
        assert!(!fits(5 << 20, Some(&range(0, 4 << 20))));
    }
}
