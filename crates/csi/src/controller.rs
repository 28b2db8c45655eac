//! The CSI controller RPCs: each checks its request as the spec asks, takes the claim on the volume, and
//! hands the work to the driver's backend.

use tonic::Status;

use crate::backend::{size_for, DEFAULT_SIZE, MIN_SIZE};
use crate::ids::{self, SnapshotId, VolumeId};
use crate::{page, pb, required, Driver};

fn volume_id(id: &str) -> Result<VolumeId, Status> {
    VolumeId::parse(id).ok_or_else(|| Status::not_found(format!("no volume {id:?}")))
}

impl Driver {
    pub(crate) fn create_volume(
        &self,
        req: pb::CreateVolumeRequest,
    ) -> Result<pb::CreateVolumeResponse, Status> {
        required("name", &req.name)?;
        self.backend.supports(&req.volume_capabilities)?;
        let id = VolumeId {
            pool: self.backend.place(self, &req)?,
            image: ids::image_for(&req.name),
        };
        let size = size_for(req.capacity_range.as_ref(), DEFAULT_SIZE)?;
        let _busy = self.inflight.claim(&id.to_string())?;
        let volume = self.backend.create(self, &id, &req, size)?;
        Ok(pb::CreateVolumeResponse {
            volume: Some(volume),
        })
    }

    pub(crate) fn delete_volume(
        &self,
        req: pb::DeleteVolumeRequest,
    ) -> Result<pb::DeleteVolumeResponse, Status> {
        required("volume_id", &req.volume_id)?;
        // An id rookery never made names nothing: deleting nothing succeeds.
        if let Some(id) = VolumeId::parse(&req.volume_id) {
            let _busy = self.inflight.claim(&id.to_string())?;
            self.backend.delete(self, &id)?;
        }
        Ok(pb::DeleteVolumeResponse {})
    }

    pub(crate) fn validate(
        &self,
        req: pb::ValidateVolumeCapabilitiesRequest,
    ) -> Result<pb::ValidateVolumeCapabilitiesResponse, Status> {
        required("volume_id", &req.volume_id)?;
        if req.volume_capabilities.is_empty() {
            return Err(Status::invalid_argument("volume_capabilities are required"));
        }
        let id = volume_id(&req.volume_id)?;
        if !self.backend.exists(self, &id)? {
            return Err(Status::not_found(format!("no volume {id}")));
        }
        Ok(match self.backend.supports(&req.volume_capabilities) {
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
                message: e.message().to_string(),
            },
        })
    }

    pub(crate) fn list_volumes(
        &self,
        req: pb::ListVolumesRequest,
    ) -> Result<pb::ListVolumesResponse, Status> {
        // Only the page's volumes are looked at, so listing every page costs about one listing.
        let mut ids = self.backend.volume_ids(self)?;
        ids.sort_by_cached_key(|id| id.to_string());
        let keys: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let (range, next) = crate::page_after(&keys, req.max_entries, &req.starting_token, |t| {
            VolumeId::parse(t).is_some()
        })?;
        let items = self.backend.describe(self, &ids[range])?;
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
        if let Some(c) = req.volume_capabilities.first() {
            self.backend.supports(std::slice::from_ref(c))?;
        }
        Ok(pb::GetCapacityResponse {
            available_capacity: self.backend.available(self, &req.parameters)? as i64,
            maximum_volume_size: None,
            minimum_volume_size: Some(MIN_SIZE as i64),
        })
    }

    pub(crate) fn create_snapshot(
        &self,
        req: pb::CreateSnapshotRequest,
    ) -> Result<pb::CreateSnapshotResponse, Status> {
        required("name", &req.name)?;
        required("source_volume_id", &req.source_volume_id)?;
        let src = volume_id(&req.source_volume_id)?;
        let snap = ids::snapshot_for(&req.name);
        let _busy = self.inflight.claim(&src.to_string())?;
        let snapshot = self.backend.create_snapshot(self, &src, &req.name, &snap)?;
        Ok(pb::CreateSnapshotResponse {
            snapshot: Some(snapshot),
        })
    }

    pub(crate) fn delete_snapshot(
        &self,
        req: pb::DeleteSnapshotRequest,
    ) -> Result<pb::DeleteSnapshotResponse, Status> {
        required("snapshot_id", &req.snapshot_id)?;
        if let Some(id) = SnapshotId::parse(&req.snapshot_id) {
            let _busy = self.inflight.claim(&id.volume.to_string())?;
            self.backend.delete_snapshot(self, &id)?;
        }
        Ok(pb::DeleteSnapshotResponse {})
    }

    pub(crate) fn list_snapshots(
        &self,
        req: pb::ListSnapshotsRequest,
    ) -> Result<pb::ListSnapshotsResponse, Status> {
        let volumes = if !req.source_volume_id.is_empty() {
            Some(VolumeId::parse(&req.source_volume_id).into_iter().collect())
        } else if !req.snapshot_id.is_empty() {
            Some(
                SnapshotId::parse(&req.snapshot_id)
                    .map(|s| s.volume)
                    .into_iter()
                    .collect(),
            )
        } else {
            None
        };
        let mut all: Vec<pb::Snapshot> = self
            .backend
            .snapshots(self, volumes)?
            .into_iter()
            .filter(|s| req.snapshot_id.is_empty() || s.snapshot_id == req.snapshot_id)
            .collect();
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
        required("volume_id", &req.volume_id)?;
        let range = req
            .capacity_range
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("capacity_range is required"))?;
        let id = volume_id(&req.volume_id)?;
        let _busy = self.inflight.claim(&id.to_string())?;
        let current = self.backend.size(self, &id)?;
        let want = size_for(Some(range), current)?;
        if want > current {
            self.backend.grow(self, &id, want)?;
        }
        Ok(pb::ControllerExpandVolumeResponse {
            capacity_bytes: want.max(current) as i64,
            node_expansion_required: self.backend.node_expands(),
        })
    }
}
