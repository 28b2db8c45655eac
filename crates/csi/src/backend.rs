//! What a driver instance does with Ceph, behind one trait: RBD images ([`crate::rbd::Rbd`]) or CephFS
//! subvolumes ([`crate::cephfs::CephFs`]), chosen once when the driver starts. The RPC handlers
//! (`controller`, `node`) check the request, take the volume's claim and call the backend; the decisions
//! both backends share (sizes, and what an existing volume of the requested name means) are pure
//! functions here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tonic::Status;

use crate::ids::{self, SnapshotId, VolumeId};
use crate::{pb, Driver};

/// The operations the CSI RPCs need. `d` is the driver as the request sees it (its Ceph identity).
/// Requests reach a backend checked (required fields present, ids parsed, capabilities supported) and
/// with the claim on their volume held.
pub(crate) trait Backend: Send + Sync {
    /// The CSI driver name (`GetPluginInfo`).
    fn name(&self) -> &'static str;
    /// Mounts again the volumes this node staged whose mount helper is gone (the plugin was restarted
    /// or killed, the host rebooted): one line per volume, saying how it went.
    fn restore_staged(&self, d: &Driver) -> Vec<String>;
    /// Refuses access types and modes this kind of volume cannot serve.
    fn supports(&self, caps: &[pb::VolumeCapability]) -> Result<(), Status>;
    /// The pool or filesystem a CreateVolume request's parameters place the volume in, refusing
    /// parameters the backend does not take.
    fn place(&self, d: &Driver, req: &pb::CreateVolumeRequest) -> Result<String, Status>;
    /// Creates `id` of `size` bytes from nothing, a snapshot or a volume, or answers for the one there
    /// ([`decide_create`]).
    fn create(
        &self,
        d: &Driver,
        id: &VolumeId,
        req: &pb::CreateVolumeRequest,
        size: u64,
    ) -> Result<pb::Volume, Status>;
    /// Deletes a volume; one that is not there is deleted already.
    fn delete(&self, d: &Driver, id: &VolumeId) -> Result<(), Status>;
    fn exists(&self, d: &Driver, id: &VolumeId) -> Result<bool, Status>;
    /// The ids of every CSI volume this backend serves (cheap: no volume is looked at).
    fn volume_ids(&self, d: &Driver) -> Result<Vec<VolumeId>, Status>;
    /// The named volumes (those that still exist), in the order given.
    fn describe(&self, d: &Driver, ids: &[VolumeId]) -> Result<Vec<pb::Volume>, Status>;
    /// Bytes new volumes placed as `params` say can still take.
    fn available(&self, d: &Driver, params: &HashMap<String, String>) -> Result<u64, Status>;
    /// The volume's size now; NOT_FOUND when there is no such volume.
    fn size(&self, d: &Driver, id: &VolumeId) -> Result<u64, Status>;
    /// Grows the volume to `size` bytes (more than it has).
    fn grow(&self, d: &Driver, id: &VolumeId, size: u64) -> Result<(), Status>;
    /// Takes snapshot `snap` (named from the CO's `name`) of `src`, or answers for the one there.
    fn create_snapshot(
        &self,
        d: &Driver,
        src: &VolumeId,
        name: &str,
        snap: &str,
    ) -> Result<pb::Snapshot, Status>;
    /// Deletes a snapshot; one that is not there is deleted already.
    fn delete_snapshot(&self, d: &Driver, id: &SnapshotId) -> Result<(), Status>;
    /// The snapshots of `volumes` (every volume when None).
    fn snapshots(
        &self,
        d: &Driver,
        volumes: Option<Vec<VolumeId>>,
    ) -> Result<Vec<pb::Snapshot>, Status>;
    /// Attaches the volume at `staging` (idempotent: the same volume there already is success).
    fn stage(
        &self,
        d: &Driver,
        id: &VolumeId,
        staging: &Path,
        cap: &pb::VolumeCapability,
    ) -> Result<(), Status>;
    /// Detaches whatever this driver staged at `staging`; nothing there is success.
    fn unstage(&self, d: &Driver, staging: &Path) -> Result<(), Status>;
    /// How `id` is staged at `staging`, None when it is not.
    fn staged(&self, d: &Driver, id: &VolumeId, staging: &Path) -> Result<Option<Staged>, Status>;
    /// Whether the node grows a volume after the controller did (NodeExpandVolume): a filesystem on a
    /// device does; a quota every mount sees at once does not.
    fn node_expands(&self) -> bool {
        false
    }
    /// Grows this node's view of the volume (device and filesystem); returns its size.
    fn node_expand(&self, _d: &Driver, _id: &VolumeId) -> Result<u64, Status> {
        Err(Status::unimplemented(
            "a CephFS volume's quota is its size on every mount; nothing grows on the node",
        ))
    }
}

/// A staged volume.
pub(crate) struct Staged {
    /// Raw block: the device node that is published; None for a filesystem.
    pub device: Option<PathBuf>,
}

/// Smallest volume: what `rookery volume` accepts.
pub(crate) const MIN_SIZE: u64 = 1 << 20;

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

/// The size of a new volume when the request names none.
pub(crate) const DEFAULT_SIZE: u64 = 1 << 30;

fn fits(size: u64, range: Option<&pb::CapacityRange>) -> bool {
    range.is_none_or(|r| {
        (r.required_bytes <= 0 || size >= r.required_bytes as u64)
            && (r.limit_bytes <= 0 || size <= r.limit_bytes as u64)
    })
}

/// How a volume's record names its content source: `snapshot:<id>`, `volume:<id>`, or empty.
pub(crate) fn source_text(s: &Option<pb::VolumeContentSource>) -> String {
    match s.as_ref().and_then(|s| s.r#type.as_ref()) {
        Some(pb::volume_content_source::Type::Snapshot(s)) => format!("snapshot:{}", s.snapshot_id),
        Some(pb::volume_content_source::Type::Volume(v)) => format!("volume:{}", v.volume_id),
        None => String::new(),
    }
}

/// A request's content source, parsed: NOT_FOUND for an id rookery never made.
pub(crate) enum Source {
    Empty,
    Snapshot(SnapshotId),
    Volume(VolumeId),
}

pub(crate) fn source_of(req: &pb::CreateVolumeRequest) -> Result<Source, Status> {
    match req
        .volume_content_source
        .as_ref()
        .and_then(|s| s.r#type.as_ref())
    {
        None => Ok(Source::Empty),
        Some(pb::volume_content_source::Type::Snapshot(s)) => SnapshotId::parse(&s.snapshot_id)
            .map(Source::Snapshot)
            .ok_or_else(|| Status::not_found(format!("no snapshot {:?}", s.snapshot_id))),
        Some(pb::volume_content_source::Type::Volume(v)) => VolumeId::parse(&v.volume_id)
            .map(Source::Volume)
            .ok_or_else(|| Status::not_found(format!("no volume {:?}", v.volume_id))),
    }
}

/// The snapshot a clone of a volume goes through: named from the new volume, so a retry reuses it.
pub(crate) fn clone_snapshot_for(target: &VolumeId) -> String {
    let hash = target
        .image
        .strip_prefix("csi-vol-")
        .unwrap_or(&target.image);
    format!("csi-clone-{hash}")
}

/// The claim names a CO passes as CreateVolume parameters, as (record key, value).
pub(crate) fn claim_of(p: &HashMap<String, String>) -> Vec<(&'static str, String)> {
    [
        ("csi.storage.k8s.io/pvc/name", ids::META_CLAIM),
        ("csi.storage.k8s.io/pvc/namespace", ids::META_NAMESPACE),
        ("csi.storage.k8s.io/pv/name", ids::META_PV),
    ]
    .iter()
    .filter_map(|(param, key)| p.get(*param).map(|v| (*key, v.clone())))
    .collect()
}

/// A CreateVolume request, as far as idempotency goes.
pub(crate) struct Wanted<'a> {
    pub name: &'a str,
    /// [`source_text`] of the request.
    pub source: &'a str,
    pub range: Option<&'a pb::CapacityRange>,
}

/// The record a volume carries of the request that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub name: String,
    pub source: String,
}

/// What exists under the name a request hashes to.
pub(crate) struct Found {
    /// None: made by a request that ended before it wrote its record.
    pub record: Option<Record>,
    pub size: u64,
    /// Usable now: not a copy still in progress.
    pub complete: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CreateDecision {
    /// It is the volume asked for: answer with it.
    Return,
    /// It is this request's volume, unfinished: do the rest of the create (record, copy, size), which
    /// the backend's steps allow to be done twice.
    Finish,
    Refuse(Refusal),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The record names another request: the names' hashes collide.
    Collision(String),
    Source(String),
    Size(u64),
}

impl Refusal {
    pub(crate) fn status(&self, req_name: &str, id: &VolumeId) -> Status {
        match self {
            Refusal::Collision(n) => Status::internal(format!(
                "{id} belongs to another volume name ({n:?}), not {req_name:?}"
            )),
            Refusal::Source(s) => Status::already_exists(format!(
                "volume {req_name:?} exists with another content source ({s:?})"
            )),
            Refusal::Size(size) => Status::already_exists(format!(
                "volume {req_name:?} exists with {size} bytes, outside the requested capacity range"
            )),
        }
    }
}

/// CSI's idempotency for CreateVolume: the same request again gets the same volume; one that asks for
/// something else under the same name is refused, since the CO must not get a volume it did not ask for.
pub(crate) fn decide_create(want: &Wanted, found: &Found) -> CreateDecision {
    let Some(record) = &found.record else {
        // Ours by the name's hash; it may still grow to the request's size, never shrink to it.
        let too_big = want
            .range
            .is_some_and(|r| r.limit_bytes > 0 && found.size > r.limit_bytes as u64);
        return if too_big {
            CreateDecision::Refuse(Refusal::Size(found.size))
        } else {
            CreateDecision::Finish
        };
    };
    if record.name != want.name {
        return CreateDecision::Refuse(Refusal::Collision(record.name.clone()));
    }
    if record.source != want.source {
        return CreateDecision::Refuse(Refusal::Source(record.source.clone()));
    }
    if !fits(found.size, want.range) {
        return CreateDecision::Refuse(Refusal::Size(found.size));
    }
    if !found.complete {
        return CreateDecision::Finish;
    }
    CreateDecision::Return
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

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

    const MIB: u64 = 1 << 20;

    fn found(name: &str, source: &str, size: u64) -> Found {
        Found {
            record: Some(Record {
                name: name.into(),
                source: source.into(),
            }),
            size,
            complete: true,
        }
    }

    fn decide(source: &str, r: pb::CapacityRange, f: &Found) -> CreateDecision {
        let want = Wanted {
            name: "pvc-1",
            source,
            range: Some(&r),
        };
        decide_create(&want, f)
    }

    #[test]
    fn the_same_request_gets_the_same_volume() {
        let f = found("pvc-1", "", 64 * MIB);
        assert_eq!(decide("", range(64 << 20, 0), &f), CreateDecision::Return);
        // Any size inside the range is the same answer.
        assert_eq!(decide("", range(32 << 20, 0), &f), CreateDecision::Return);
        let none = Wanted {
            name: "pvc-1",
            source: "",
            range: None,
        };
        assert_eq!(decide_create(&none, &f), CreateDecision::Return);
        let from = found("pvc-1", "snapshot:p/v@s", 64 * MIB);
        assert_eq!(
            decide("snapshot:p/v@s", range(64 << 20, 0), &from),
            CreateDecision::Return
        );
    }

    #[test]
    fn another_size_or_source_is_already_exists() {
        let f = found("pvc-1", "", 64 * MIB);
        assert_eq!(
            decide("", range(128 << 20, 0), &f),
            CreateDecision::Refuse(Refusal::Size(64 * MIB))
        );
        assert_eq!(
            decide("", range(0, 32 << 20), &f),
            CreateDecision::Refuse(Refusal::Size(64 * MIB))
        );
        assert_eq!(
            decide("volume:p/other", range(64 << 20, 0), &f),
            CreateDecision::Refuse(Refusal::Source(String::new()))
        );
        let from = found("pvc-1", "snapshot:p/v@s", 64 * MIB);
        assert_eq!(
            decide("", range(64 << 20, 0), &from),
            CreateDecision::Refuse(Refusal::Source("snapshot:p/v@s".into()))
        );
        let id = VolumeId::parse("p/csi-vol-1").unwrap();
        for (r, code) in [
            (Refusal::Size(1), Code::AlreadyExists),
            (Refusal::Source(String::new()), Code::AlreadyExists),
            (Refusal::Collision("x".into()), Code::Internal),
        ] {
            assert_eq!(r.status("pvc-1", &id).code(), code);
        }
    }

    #[test]
    fn a_colliding_name_is_never_served() {
        let f = found("pvc-other", "", 64 * MIB);
        assert_eq!(
            decide("", range(64 << 20, 0), &f),
            CreateDecision::Refuse(Refusal::Collision("pvc-other".into()))
        );
    }

    #[test]
    fn unfinished_volumes_are_finished() {
        let copying = Found {
            complete: false,
            ..found("pvc-1", "volume:p/v", 64 * MIB)
        };
        assert_eq!(
            decide("volume:p/v", range(64 << 20, 0), &copying),
            CreateDecision::Finish
        );
        // A copy in progress of something else is still refused.
        assert_eq!(
            decide("", range(64 << 20, 0), &copying),
            CreateDecision::Refuse(Refusal::Source("volume:p/v".into()))
        );
        let unrecorded = Found {
            record: None,
            size: 32 * MIB,
            complete: true,
        };
        assert_eq!(
            decide("", range(64 << 20, 0), &unrecorded),
            CreateDecision::Finish
        );
        assert_eq!(
            decide("", range(0, 16 << 20), &unrecorded),
            CreateDecision::Refuse(Refusal::Size(32 * MIB))
        );
    }
}
