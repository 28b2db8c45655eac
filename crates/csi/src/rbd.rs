//! The RBD backend (`rbd.csi.rookery.io`): volumes are librbd images named from the CO's request name
//! (see `ids`), made, cloned (flattened at once, so deleting the source never waits on them), grown and
//! removed by `rookery_volumes::manage`, the code behind `rookery volume`; snapshots are image snapshots.
//! Nodes stage with `rookery volume mount` (map-only for raw block) at the staging path.

use std::collections::HashMap;
use std::path::Path;

use rookery_ceph::commands::{cluster, osd};
use rookery_ceph::object_reads::ObjectRead;
use rookery_ceph::rbd::{self, Image};
use rookery_ceph::rbd_objects;
use rookery_ceph::IoCtx;
use rookery_volumes::manage::{self, CloneSource, Made, NewClone, NewVolume};
use rookery_volumes::mounts;
use rookery_volumes::records::Records;
use rookery_volumes::VolumeError;
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::backend::{
    self, claim_of, decide_create, source_of, source_text, Backend, CreateDecision, Found, Record,
    Source, Staged, Wanted,
};
use crate::ids::{SnapshotId, VolumeId};
use crate::node::{is_block, read_only_mode};
use crate::{ceph_status, pb, Driver};

/// StorageClass parameters rookery understands (ceph-csi's names where they mean the same).
struct Params {
    pool: String,
    fstype: String,
    features: u64,
    claim: Vec<(&'static str, String)>,
    /// Sizes above the pool's quota are allowed (never above what its OSDs hold).
    over_commit: bool,
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
                | "overCommit"
        ) || k.starts_with("csi.storage.k8s.io/");
        if !known {
            return Err(Status::invalid_argument(format!(
                "unknown parameter {k:?}; rookery's RBD driver takes clusterID, pool, dataPool, imageFeatures, mounter, overCommit and csi.storage.k8s.io/fstype"
            )));
        }
        if k == "imageFormat" && v != "2" {
            return Err(Status::invalid_argument("imageFormat: only 2 is supported"));
        }
        if k == "overCommit" && !matches!(v.as_str(), "true" | "false") {
            return Err(Status::invalid_argument(format!(
                "overCommit: {v:?} is not \"true\" or \"false\""
            )));
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
    let over_commit = p.get("overCommit").is_some_and(|v| v == "true");
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
            over_commit,
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
        over_commit,
    })
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
    Ok(volume_info(id, size, &fstype, source))
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

/// `namespace/name` of the claim a volume serves, from the CO's creation parameters.
fn claim_text(claim: &std::collections::BTreeMap<String, String>) -> Option<String> {
    let name = claim.get("csi.storage.k8s.io/pvc/name")?;
    Some(match claim.get("csi.storage.k8s.io/pvc/namespace") {
        Some(ns) => format!("{ns}/{name}"),
        None => name.clone(),
    })
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

/// Access types and modes an RBD volume serves: filesystem or raw block, one writer node (or readers).
fn capabilities_supported(caps: &[pb::VolumeCapability]) -> Result<(), Status> {
    use pb::volume_capability::access_mode::Mode;
    use pb::volume_capability::AccessType;
    if caps.is_empty() {
        return Err(Status::invalid_argument("volume_capabilities are required"));
    }
    for c in caps {
        match &c.access_type {
            Some(AccessType::Mount(_)) | Some(AccessType::Block(_)) => {}
            None => {
                return Err(Status::invalid_argument(
                    "access_type (mount or block) is required",
                ))
            }
        }
        let mode = c
            .access_mode
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("access_mode is required"))?
            .mode();
        match mode {
            Mode::SingleNodeWriter
            | Mode::SingleNodeReaderOnly
            | Mode::MultiNodeReaderOnly
            | Mode::SingleNodeSingleWriter
            | Mode::SingleNodeMultiWriter => {}
            other => {
                return Err(Status::invalid_argument(format!(
                    "access mode {other:?} is not supported for RBD filesystem volumes (one writer node at a time)"
                )))
            }
        }
    }
    Ok(())
}

/// A volume layer failure as the gRPC status the spec names for it.
fn volume_status(e: VolumeError) -> Status {
    match e {
        VolumeError::NotFound(m) => Status::not_found(m),
        VolumeError::BadRequest(m) => Status::invalid_argument(m),
        e @ VolumeError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        VolumeError::Exists(m) => Status::already_exists(m),
        VolumeError::Busy(m) | VolumeError::InUse(m) | VolumeError::NotAClone(m) => {
            Status::failed_precondition(m)
        }
        VolumeError::Ceph(e) => ceph_status(&e),
        other => Status::internal(other.to_string()),
    }
}

/// The pool and volume of a mount record.
fn holds(r: &rookery_volumes::MountRecord, id: &VolumeId) -> bool {
    r.pool == id.pool && r.volume == id.image && r.alive()
}

pub(crate) struct Rbd;

impl Rbd {
    /// (pool, image, image id) of every CSI volume, from the directories of the RBD pools.
    fn directory(&self, d: &Driver) -> Result<Vec<(String, String, String)>, Status> {
        let dump = osd::dump(&d.rados).map_err(|e| ceph_status(&e))?;
        let mut out = Vec::new();
        for pool in dump
            .pools
            .iter()
            .filter(|p| p.application_metadata.contains_key("rbd"))
        {
            let io = open_pool(d, &pool.pool_name)?;
            for (name, id) in
                rbd_objects::directory(&io, "csi-vol-").map_err(|e| ceph_status(&e))?
            {
                out.push((pool.pool_name.clone(), name, id));
            }
        }
        Ok(out)
    }

    /// This host's record of a mount at `path`.
    fn record_at(
        &self,
        d: &Driver,
        path: &Path,
    ) -> Result<Option<rookery_volumes::MountRecord>, Status> {
        let records = Records::open(&d.data_dir).map_err(|e| Status::internal(e.to_string()))?;
        Ok(records.find_path(path).map(|i| records.list[i].clone()))
    }

    /// The rest of a create once the image is there: the journal, a filesystem other than the default,
    /// and the requested size when the image is smaller (a clone, or one a crashed request made).
    fn finish(
        &self,
        d: &Driver,
        id: &VolumeId,
        req: &pb::CreateVolumeRequest,
        p: &Params,
        made: Made,
        size: u64,
    ) -> Result<pb::Volume, Status> {
        let io = &open_pool(d, &id.pool)?;
        let record = Journal {
            name: req.name.clone(),
            source: source_text(&req.volume_content_source),
            claim: p
                .claim
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        write_journal(io, &id.image, &record)?;
        if let Some(claim) = claim_text(&record.claim) {
            rookery_volumes::index::set_claim(io, &id.image, &claim).map_err(volume_status)?;
        }
        let capacity = match made {
            // A new empty volume has its filesystem key and size from `manage` already.
            Made::Created { size } if req.volume_content_source.is_none() => size,
            _ => {
                let image = open_image(io, &id.image)?
                    .ok_or_else(|| Status::internal("the new image vanished"))?;
                // The attach code reads the filesystem from the image (ext4 when unset, "none" for raw
                // block).
                if p.fstype != "ext4" {
                    image
                        .metadata_set(rookery_volumes::META_FS, &p.fstype)
                        .map_err(|e| ceph_status(&e))?;
                }
                let now = image.size().map_err(|e| ceph_status(&e))?;
                drop(image);
                if now < size {
                    manage::resize(&d.rados, &d.data_dir, &id.pool, &id.image, size, false)
                        .map_err(volume_status)?;
                }
                now.max(size)
            }
        };
        Ok(volume_info(
            id,
            capacity,
            &p.fstype,
            req.volume_content_source.clone(),
        ))
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

impl Backend for Rbd {
    fn name(&self) -> &'static str {
        crate::RBD_DRIVER
    }

    fn restore_staged(&self, d: &Driver) -> Vec<String> {
        match rookery_volumes::resume_all(&d.rados, &d.conf, &d.config.identity, &d.data_dir) {
            Ok(results) => results
                .into_iter()
                .map(|(r, result)| match result {
                    Ok(()) => format!(
                        "{}/{} staged again at {}",
                        r.pool,
                        r.volume,
                        r.path.display()
                    ),
                    Err(e) => format!(
                        "{}/{} not staged again at {}: {e}",
                        r.pool,
                        r.volume,
                        r.path.display()
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
        Ok(params(d, &req.parameters, &req.volume_capabilities)?.pool)
    }

    fn create(
        &self,
        d: &Driver,
        id: &VolumeId,
        req: &pb::CreateVolumeRequest,
        size: u64,
    ) -> Result<pb::Volume, Status> {
        let p = params(d, &req.parameters, &req.volume_capabilities)?;
        let io = open_pool(d, &id.pool)?;
        // Create first and learn from EEXIST that it exists: one round trip less on the common path.
        let temporary = backend::clone_snapshot_for(id);
        let clone = |from| NewClone {
            from,
            pool: &id.pool,
            name: &id.image,
            min_size: size,
            features: p.features,
            flatten: true,
        };
        let made = match source_of(req)? {
            Source::Empty => manage::create_volume(
                &d.rados,
                &NewVolume {
                    pool: &id.pool,
                    name: &id.image,
                    size,
                    fs: &p.fstype,
                    features: p.features,
                    data_pool: None,
                    over_commit: p.over_commit,
                },
            ),
            Source::Snapshot(s) => manage::clone_volume(
                &d.rados,
                &clone(CloneSource::Snapshot {
                    pool: &s.volume.pool,
                    volume: &s.volume.image,
                    snap: &s.snap,
                }),
            ),
            Source::Volume(v) => manage::clone_volume(
                &d.rados,
                &clone(CloneSource::Volume {
                    pool: &v.pool,
                    volume: &v.image,
                    temporary: &temporary,
                }),
            ),
        }
        .map_err(volume_status)?;
        if made != Made::Existed {
            return self.finish(d, id, req, &p, made, size);
        }
        let existing = open_image(&io, &id.image)?
            .ok_or_else(|| Status::aborted("the volume is being deleted; retry"))?;
        let found = Found {
            record: read_journal(&io, &id.image)?.map(|j| Record {
                name: j.name,
                source: j.source,
            }),
            size: existing.size().map_err(|e| ceph_status(&e))?,
            complete: true,
        };
        let source = source_text(&req.volume_content_source);
        let want = Wanted {
            name: &req.name,
            source: &source,
            range: req.capacity_range.as_ref(),
        };
        match decide_create(&want, &found) {
            CreateDecision::Return => volume_of(id, &existing, req.volume_content_source.clone()),
            CreateDecision::Finish => {
                drop(existing);
                self.finish(d, id, req, &p, made, size)
            }
            CreateDecision::Refuse(r) => Err(r.status(&req.name, id)),
        }
    }

    fn delete(&self, d: &Driver, id: &VolumeId) -> Result<(), Status> {
        let Ok(io) = d.rados.ioctx(&id.pool) else {
            return Ok(());
        };
        match manage::remove(&d.rados, &id.pool, &id.image) {
            Ok(()) | Err(VolumeError::NotFound(_)) => {}
            Err(e) if e.is_bad_request() => return Err(Status::failed_precondition(e.to_string())),
            Err(e) => return Err(Status::internal(e.to_string())),
        }
        match io.remove(&journal_object(&id.image)) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(()),
            Err(e) => Err(ceph_status(&e)),
        }
    }

    fn exists(&self, d: &Driver, id: &VolumeId) -> Result<bool, Status> {
        let Ok(io) = d.rados.ioctx(&id.pool) else {
            return Ok(false);
        };
        let found = match Image::open_read_only(&io, &id.image) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(false),
            Err(e) => Err(ceph_status(&e)),
        };
        found
    }

    fn volume_ids(&self, d: &Driver) -> Result<Vec<VolumeId>, Status> {
        Ok(self
            .directory(d)?
            .into_iter()
            .map(|(pool, name, _)| VolumeId { pool, image: name })
            .collect())
    }

    fn describe(&self, d: &Driver, ids: &[VolumeId]) -> Result<Vec<pb::Volume>, Status> {
        // From the pools' volume indexes (images read many at once where an entry is missing or old): no
        // image is opened.
        let pools: std::collections::BTreeSet<&str> =
            ids.iter().map(|id| id.pool.as_str()).collect();
        let mut found: HashMap<(String, String), pb::Volume> = HashMap::new();
        for pool in pools {
            let io = open_pool(d, pool)?;
            let image_ids: HashMap<String, String> = rbd_objects::directory(&io, "csi-vol-")
                .map_err(|e| ceph_status(&e))?
                .into_iter()
                .collect();
            let wanted: Vec<(String, String)> = ids
                .iter()
                .filter(|id| id.pool == *pool)
                .filter_map(|id| {
                    image_ids
                        .get(&id.image)
                        .map(|rid| (id.image.clone(), rid.clone()))
                })
                .collect();
            for l in manage::current_images(&io, &wanted).map_err(volume_status)? {
                let id = VolumeId {
                    pool: pool.to_string(),
                    image: l.record.name.clone(),
                };
                let fstype = l
                    .record
                    .metadata
                    .get(rookery_volumes::META_FS)
                    .cloned()
                    .unwrap_or_else(|| "ext4".into());
                found.insert(
                    (id.pool.clone(), id.image.clone()),
                    volume_info(&id, l.record.size, &fstype, None),
                );
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(&(id.pool.clone(), id.image.clone())))
            .collect())
    }

    fn available(&self, d: &Driver, params: &HashMap<String, String>) -> Result<u64, Status> {
        let pool = params
            .get("pool")
            .cloned()
            .unwrap_or_else(|| manage::DEFAULT_POOL.into());
        if let Some(id) = params.get("clusterID") {
            d.check_cluster(id)?;
        }
        let df = cluster::df(&d.rados).map_err(|e| ceph_status(&e))?;
        df.pools
            .iter()
            .find(|p| p.name == pool)
            .map(|p| p.stats.max_avail)
            .ok_or_else(|| Status::invalid_argument(format!("pool {pool:?} does not exist")))
    }

    fn size(&self, d: &Driver, id: &VolumeId) -> Result<u64, Status> {
        let io = open_pool(d, &id.pool)?;
        let image = open_image(&io, &id.image)?
            .ok_or_else(|| Status::not_found(format!("no volume {id}")))?;
        image.size().map_err(|e| ceph_status(&e))
    }

    fn grow(&self, d: &Driver, id: &VolumeId, size: u64) -> Result<(), Status> {
        // Also grows this host's mounts of it at once; NodeExpandVolume then finds nothing left to do.
        manage::resize(&d.rados, &d.data_dir, &id.pool, &id.image, size, false)
            .map(drop)
            .map_err(volume_status)
    }

    fn create_snapshot(
        &self,
        d: &Driver,
        src: &VolumeId,
        name: &str,
        snap: &str,
    ) -> Result<pb::Snapshot, Status> {
        let io = open_pool(d, &src.pool)?;
        let record = match io.read_all(&snap_object(snap)) {
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
                    "snapshot {name:?} exists for another volume ({})",
                    r.source
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
                    name: name.to_string(),
                    source: src.to_string(),
                    created_unix: now.as_secs() as i64,
                    created_nanos: now.subsec_nanos() as i32,
                };
                let bytes = serde_json::to_vec(&r).map_err(|e| Status::internal(e.to_string()))?;
                io.write_full(&snap_object(snap), &bytes)
                    .map_err(|e| ceph_status(&e))?;
                r
            }
        };
        let snaps = image.snapshots().map_err(|e| ceph_status(&e))?;
        let size = match snaps.iter().find(|s| s.name == snap) {
            Some(s) => s.size,
            None => {
                image.snapshot_create(snap).map_err(|e| ceph_status(&e))?;
                image.size().map_err(|e| ceph_status(&e))?
            }
        };
        let id = SnapshotId {
            volume: src.clone(),
            snap: snap.to_string(),
        };
        Ok(pb::Snapshot {
            size_bytes: size as i64,
            snapshot_id: id.to_string(),
            source_volume_id: id.volume.to_string(),
            creation_time: Some(prost_types::Timestamp {
                seconds: record.created_unix,
                nanos: record.created_nanos,
            }),
            ready_to_use: true,
            group_snapshot_id: String::new(),
        })
    }

    fn delete_snapshot(&self, d: &Driver, id: &SnapshotId) -> Result<(), Status> {
        let Ok(io) = d.rados.ioctx(&id.volume.pool) else {
            return Ok(());
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
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(()),
            Err(e) => Err(ceph_status(&e)),
        }
    }

    fn snapshots(
        &self,
        d: &Driver,
        volumes: Option<Vec<VolumeId>>,
    ) -> Result<Vec<pb::Snapshot>, Status> {
        // Per pool: the directory, the images' headers (which list their snapshots) and the snapshots'
        // records, each read many at once; no image is opened.
        let named = volumes.is_some();
        let volumes = match volumes {
            Some(v) => v,
            None => self.volume_ids(d)?,
        };
        let mut by_pool: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for v in &volumes {
            by_pool.entry(&v.pool).or_default().push(&v.image);
        }
        let mut all = Vec::new();
        for (pool, images) in by_pool {
            let Ok(io) = d.rados.ioctx(pool) else {
                continue;
            };
            // Volumes asked for by id may have any name (a snapshot of a static volume); all volumes are
            // the driver's, listed by the directory.
            let wanted: Vec<(String, String)> = if named {
                let mut wanted = Vec::new();
                for name in images {
                    if let Some(id) =
                        rbd_objects::image_id(&io, name).map_err(|e| ceph_status(&e))?
                    {
                        wanted.push((name.to_string(), id));
                    }
                }
                wanted
            } else {
                let ids: HashMap<String, String> = rbd_objects::directory(&io, "csi-vol-")
                    .map_err(|e| ceph_status(&e))?
                    .into_iter()
                    .collect();
                images
                    .iter()
                    .filter_map(|name| ids.get(*name).map(|id| (name.to_string(), id.clone())))
                    .collect()
            };
            let snaps: Vec<(String, rbd_objects::SnapshotRecord)> =
                rbd_objects::read_headers(&io, &wanted)
                    .map_err(|e| ceph_status(&e))?
                    .into_iter()
                    .flat_map(|h| {
                        let image = h.name;
                        h.snapshots
                            .into_iter()
                            .filter(|s| s.name.starts_with("csi-snap-"))
                            .map(move |s| (image.clone(), s))
                    })
                    .collect();
            let records = io.read_many(
                &snaps
                    .iter()
                    .map(|(_, s)| ObjectRead::data(snap_object(&s.name), 4096))
                    .collect::<Vec<_>>(),
            );
            for ((image, s), record) in snaps.into_iter().zip(records) {
                let volume = VolumeId {
                    pool: pool.to_string(),
                    image,
                };
                let record: Option<SnapRecord> = record
                    .ok()
                    .and_then(|r| serde_json::from_slice(&r.data).ok());
                all.push(pb::Snapshot {
                    size_bytes: s.size as i64,
                    snapshot_id: SnapshotId {
                        volume: volume.clone(),
                        snap: s.name,
                    }
                    .to_string(),
                    source_volume_id: volume.to_string(),
                    creation_time: record.map(|r| prost_types::Timestamp {
                        seconds: r.created_unix,
                        nanos: r.created_nanos,
                    }),
                    ready_to_use: true,
                    group_snapshot_id: String::new(),
                });
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
        let read_only = read_only_mode(cap);
        if let Some(r) = self.record_at(d, staging)? {
            if holds(&r, id) {
                if r.read_only != read_only {
                    return Err(Status::already_exists(format!(
                        "{id} is staged at {} with another access mode",
                        staging.display()
                    )));
                }
                return Ok(());
            }
        }
        if mounts::is_mount_point(staging) {
            return Err(Status::already_exists(format!(
                "{} is already a mount point of something else",
                staging.display()
            )));
        }
        let request = rookery_volumes::MountRequest {
            pool: id.pool.clone(),
            volume: id.image.clone(),
            path: staging.to_path_buf(),
            read_only,
            conf: d.conf.clone(),
            identity: d.config.identity.clone(),
            data_dir: d.data_dir.clone(),
            raw: is_block(cap),
        };
        rookery_volumes::mount(&d.rados, &request).map_err(|e| match e {
            VolumeError::NotFound(m) => Status::not_found(m),
            e if e.is_bad_request() => Status::failed_precondition(e.to_string()),
            other => Status::internal(other.to_string()),
        })?;
        Ok(())
    }

    fn unstage(&self, d: &Driver, staging: &Path) -> Result<(), Status> {
        if self.record_at(d, staging)?.is_none() {
            return Ok(());
        }
        rookery_volumes::unmount(&d.rados, &d.data_dir, &staging.display().to_string())
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(())
    }

    fn staged(&self, d: &Driver, id: &VolumeId, staging: &Path) -> Result<Option<Staged>, Status> {
        Ok(self
            .record_at(d, staging)?
            .filter(|r| holds(r, id))
            .map(|r| Staged {
                device: (r.fstype == "none").then_some(r.loop_device),
            }))
    }

    fn node_expands(&self) -> bool {
        true
    }

    fn node_expand(&self, d: &Driver, id: &VolumeId) -> Result<u64, Status> {
        let io = d
            .rados
            .ioctx(&id.pool)
            .map_err(|_| Status::not_found(format!("no volume {id}")))?;
        let image = Image::open_read_only(&io, &id.image)
            .map_err(|_| Status::not_found(format!("no volume {id}")))?;
        let size = image.size().map_err(|e| ceph_status(&e))?;
        drop(image);
        let records = Records::open(&d.data_dir).map_err(|e| Status::internal(e.to_string()))?;
        for m in records.list.iter().filter(|m| holds(m, id)) {
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
        Ok(size)
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
