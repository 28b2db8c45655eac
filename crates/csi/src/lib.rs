//! rookery's CSI driver (spec v1, gRPC over a unix socket): Identity, Controller and Node services for RBD
//! images or CephFS subvolumes, one [`backend::Backend`] chosen when the driver starts, on the same
//! management and attach code as `rookery volume` and `rookery fs`.
//!
//! Requests run on tokio's blocking pool (librados and librbd calls block). Every RPC is counted and timed
//! ([`metrics::Metrics`]); a second request for a volume while one is in flight gets ABORTED, as the spec
//! asks, instead of racing it.

mod authority;
mod backend;
mod cephfs;
mod controller;
pub mod ids;
pub mod metrics;
mod node;
mod rbd;
pub mod registration;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rookery_ceph::{CephError, Rados};
use tonic::{Request, Response, Status};

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("csi.v1");
}

pub const RBD_DRIVER: &str = "rbd.csi.rookery.io";
pub const CEPHFS_DRIVER: &str = "cephfs.csi.rookery.io";

/// Which volumes a driver instance serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RBD images, one writer node at a time.
    Rbd,
    /// CephFS subvolumes, any number of nodes.
    CephFs,
}

impl Kind {
    pub fn from_name(name: &str) -> Option<Kind> {
        match name {
            RBD_DRIVER => Some(Kind::Rbd),
            CEPHFS_DRIVER => Some(Kind::CephFs),
            _ => None,
        }
    }
}

/// What the driver serves and for which cluster.
pub struct Config {
    pub kind: Kind,
    pub node_id: String,
    pub controller: bool,
    pub node: bool,
    /// This host's mount records and FUSE mount points (a standalone cluster's data dir, or a host
    /// folder of the node plugin's pod).
    pub data_dir: PathBuf,
    /// The cluster's ceph.conf (its mons) and who the driver acts as when a request carries no secrets.
    pub conf: PathBuf,
    pub identity: rookery_ceph::Identity,
    /// Names a StorageClass's `clusterID` may use for this cluster: its fsid and its name.
    pub cluster_ids: Vec<String>,
}

/// Volumes with a request in flight.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<String>>);

pub struct Claim<'a> {
    set: &'a InFlight,
    key: String,
}

impl InFlight {
    pub fn claim(&self, key: &str) -> Result<Claim<'_>, Status> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(key.to_string()) {
            return Err(Status::aborted(format!(
                "an operation on {key} is already in progress; retry"
            )));
        }
        Ok(Claim {
            set: self,
            key: key.to_string(),
        })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut set = self.set.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.key);
    }
}

/// What every request shares: configuration, the in-flight claims, metrics, and the connections made for
/// the identities requests carry.
pub struct Shared {
    pub(crate) conf: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) config: Config,
    /// What the volumes are, chosen once from `config.kind`.
    pub(crate) backend: Box<dyn backend::Backend>,
    pub(crate) inflight: InFlight,
    pub metrics: metrics::Metrics,
    /// (user, sha256 of the key) -> connection; the driver's own identity is `Driver::rados` of the
    /// base driver.
    identities: Mutex<HashMap<(String, String), Arc<Rados>>>,
}

/// The driver as one request sees it: the shared state, and the Ceph identity the request acts as (the
/// one in its secrets, else the driver's own).
#[derive(Clone)]
pub struct Driver {
    pub(crate) rados: Arc<Rados>,
    shared: Arc<Shared>,
}

impl std::ops::Deref for Driver {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// Requests that may carry secrets (ceph-csi's `adminID`/`adminKey` for the controller, `userID`/`userKey`
/// for nodes; either is taken where given).
pub trait Secrets {
    fn secrets(&self) -> Option<&HashMap<String, String>> {
        None
    }
}

macro_rules! with_secrets {
    ($($t:ty),*) => {$(impl Secrets for $t { fn secrets(&self) -> Option<&HashMap<String, String>> { Some(&self.secrets) } })*};
}
macro_rules! without_secrets {
    ($($t:ty),*) => {$(impl Secrets for $t {})*};
}
with_secrets!(
    pb::CreateVolumeRequest,
    pb::DeleteVolumeRequest,
    pb::ValidateVolumeCapabilitiesRequest,
    pb::CreateSnapshotRequest,
    pb::DeleteSnapshotRequest,
    pb::ListSnapshotsRequest,
    pb::ControllerExpandVolumeRequest,
    pb::NodeStageVolumeRequest,
    pb::NodePublishVolumeRequest,
    pb::NodeExpandVolumeRequest
);
without_secrets!(
    pb::GetPluginInfoRequest,
    pb::GetPluginCapabilitiesRequest,
    pb::ProbeRequest,
    pb::ListVolumesRequest,
    pb::GetCapacityRequest,
    pb::ControllerGetCapabilitiesRequest,
    pb::NodeUnstageVolumeRequest,
    pb::NodeUnpublishVolumeRequest,
    pb::NodeGetVolumeStatsRequest,
    pb::NodeGetCapabilitiesRequest,
    pb::NodeGetInfoRequest
);

/// A librados or librbd failure as the gRPC status the spec names for it.
pub(crate) fn ceph_status(e: &CephError) -> Status {
    match e.errno().map(|n| -n) {
        Some(libc::ENOENT) => Status::not_found(e.to_string()),
        Some(libc::EEXIST) => Status::already_exists(e.to_string()),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Status::resource_exhausted(e.to_string()),
        Some(libc::EBUSY) => Status::failed_precondition(e.to_string()),
        Some(libc::EINVAL) => Status::invalid_argument(e.to_string()),
        Some(libc::ETIMEDOUT) => Status::unavailable(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

/// One page of `items` from `token` (an index); an unknown token is ABORTED, as the spec asks.
pub(crate) fn page<T>(items: Vec<T>, max: i32, token: &str) -> Result<(Vec<T>, String), Status> {
    if max < 0 {
        return Err(Status::invalid_argument("max_entries must not be negative"));
    }
    let start: usize = if token.is_empty() {
        0
    } else {
        token
            .parse()
            .ok()
            .filter(|s| *s <= items.len())
            .ok_or_else(|| Status::aborted(format!("starting_token {token:?} is not valid")))?
    };
    let take = if max == 0 { usize::MAX } else { max as usize };
    let end = start.saturating_add(take).min(items.len());
    let next = if end < items.len() {
        end.to_string()
    } else {
        String::new()
    };
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

/// Which keys of `sorted` (ascending) a page holds: those after `token` (a key from an earlier page, which
/// may be gone since), at most `max` (0: all). Returns the keys' positions and the next page's token.
pub(crate) fn page_after(
    sorted: &[String],
    max: i32,
    token: &str,
    valid_token: impl Fn(&str) -> bool,
) -> Result<(std::ops::Range<usize>, String), Status> {
    if max < 0 {
        return Err(Status::invalid_argument("max_entries must not be negative"));
    }
    if !token.is_empty() && !valid_token(token) {
        return Err(Status::aborted(format!(
            "starting_token {token:?} is not valid"
        )));
    }
    let start = if token.is_empty() {
        0
    } else {
        sorted.partition_point(|k| k.as_str() <= token)
    };
    let take = if max == 0 { usize::MAX } else { max as usize };
    let end = start.saturating_add(take).min(sorted.len());
    let next = if end < sorted.len() && end > 0 {
        sorted[end - 1].clone()
    } else {
        String::new()
    };
    Ok((start..end, next))
}

/// A required request field, refused as INVALID_ARGUMENT when empty.
pub(crate) fn required<'a>(what: &str, v: &'a str) -> Result<&'a str, Status> {
    if v.is_empty() {
        Err(Status::invalid_argument(format!("{what} is required")))
    } else {
        Ok(v)
    }
}

impl Driver {
    pub fn new(config: Config) -> Result<Arc<Driver>, CephError> {
        let conf = config.conf.clone();
        let rados = config
            .identity
            .connect(&conf, std::time::Duration::from_secs(10))?;
        // The one place the kind of volume matters: every RPC after this asks the backend.
        let backend: Box<dyn backend::Backend> = match config.kind {
            Kind::Rbd => Box::new(rbd::Rbd),
            Kind::CephFs => Box::new(cephfs::CephFs),
        };
        Ok(Arc::new(Driver {
            rados: Arc::new(rados),
            shared: Arc::new(Shared {
                conf,
                data_dir: config.data_dir.clone(),
                config,
                backend,
                inflight: InFlight::default(),
                metrics: metrics::Metrics::default(),
                identities: Mutex::new(HashMap::new()),
            }),
        }))
    }

    /// The driver acting as the identity in `secrets`, when they carry one: ceph-csi's `adminID` +
    /// `adminKey`, or `userID` + `userKey`. Connections are kept per identity; a key the cluster refuses
    /// is UNAUTHENTICATED.
    pub(crate) fn acting_as(
        &self,
        secrets: Option<&HashMap<String, String>>,
    ) -> Result<Driver, Status> {
        let Some(s) = secrets.filter(|s| !s.is_empty()) else {
            return Ok(self.clone());
        };
        let pair = |id: &str, key: &str| Some((s.get(id)?.clone(), s.get(key)?.clone()));
        let Some((user, key)) = pair("adminID", "adminKey").or_else(|| pair("userID", "userKey"))
        else {
            return Err(Status::invalid_argument(
                "secrets must hold adminID and adminKey, or userID and userKey",
            ));
        };
        let user = user.strip_prefix("client.").unwrap_or(&user).to_string();
        if user.is_empty()
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Status::invalid_argument(
                "the user id in the secrets is not a Ceph user name",
            ));
        }
        use sha2::Digest;
        let fingerprint = hex::encode(sha2::Sha256::digest(key.as_bytes()));
        let cache_key = (user.clone(), fingerprint);
        let mut cache = self.identities.lock().unwrap_or_else(|p| p.into_inner());
        let rados = match cache.get(&cache_key) {
            Some(r) => Arc::clone(r),
            None => {
                let r = Rados::connect_with_key(
                    &self.conf,
                    &user,
                    &key,
                    std::time::Duration::from_secs(10),
                )
                .map_err(|e| {
                    // Never echo the key: only the user and Ceph's reason.
                    Status::unauthenticated(format!(
                        "the cluster does not accept client.{user} with the given key: {}",
                        e.errno()
                            .map(|n| std::io::Error::from_raw_os_error(-n).to_string())
                            .unwrap_or_else(|| "refused".into())
                    ))
                })?;
                let r = Arc::new(r);
                cache.insert(cache_key, Arc::clone(&r));
                r
            }
        };
        Ok(Driver {
            rados,
            shared: Arc::clone(&self.shared),
        })
    }

    /// A node plugin's first act: what it staged before it stopped (its mount helpers gone with it) is
    /// mounted again, so the kubelet's next publish of those volumes finds them staged.
    pub fn restore_staged(&self) -> Vec<String> {
        self.backend.restore_staged(self)
    }

    /// Really asks the mons: a driver that cannot reach Ceph is not ready.
    pub fn probe_cluster(&self) -> Result<(), String> {
        rookery_ceph::commands::cluster::mon_stat(&self.rados)
            .map(|_| ())
            .map_err(|e| format!("Ceph does not answer: {e}"))
    }

    pub(crate) fn check_cluster(&self, id: &str) -> Result<(), Status> {
        if self.config.cluster_ids.iter().any(|c| c == id) {
            Ok(())
        } else {
            Err(Status::invalid_argument(format!(
                "clusterID {id:?} is not this driver's cluster ({})",
                self.config.cluster_ids.join(" or ")
            )))
        }
    }
}

/// Runs `f` on the blocking pool, counting and timing it as `method`.
async fn call<Req, Resp, F>(
    d: &Arc<Driver>,
    method: &'static str,
    req: Request<Req>,
    f: F,
) -> Result<Response<Resp>, Status>
where
    Req: Secrets + Send + 'static,
    Resp: Send + 'static,
    F: FnOnce(&Driver, Req) -> Result<Resp, Status> + Send + 'static,
{
    let started = Instant::now();
    let d2 = Arc::clone(d);
    let inner = req.into_inner();
    let result = tokio::task::spawn_blocking(move || {
        let me = d2.acting_as(inner.secrets())?;
        f(&me, inner)
    })
    .await
    .unwrap_or_else(|e| Err(Status::internal(format!("the request failed: {e}"))));
    let code = result
        .as_ref()
        .map_or_else(|s| s.code(), |_| tonic::Code::Ok);
    d.metrics.observe(method, code, started.elapsed());
    if let Err(s) = &result {
        tracing::info!(method, code = ?s.code(), message = s.message(), "csi request refused");
    }
    result.map(Response::new)
}

#[derive(Clone)]
pub struct Service(pub Arc<Driver>);

#[tonic::async_trait]
impl pb::identity_server::Identity for Service {
    async fn get_plugin_info(
        &self,
        r: Request<pb::GetPluginInfoRequest>,
    ) -> Result<Response<pb::GetPluginInfoResponse>, Status> {
        call(&self.0, "GetPluginInfo", r, |d, _| {
            Ok(pb::GetPluginInfoResponse {
                name: d.backend.name().into(),
                vendor_version: env!("CARGO_PKG_VERSION").into(),
                manifest: Default::default(),
            })
        })
        .await
    }

    async fn get_plugin_capabilities(
        &self,
        r: Request<pb::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<pb::GetPluginCapabilitiesResponse>, Status> {
        call(&self.0, "GetPluginCapabilities", r, |d, _| {
            use pb::plugin_capability::{
                service, volume_expansion, Service as Svc, Type, VolumeExpansion,
            };
            let mut caps = Vec::new();
            if d.config.controller {
                caps.push(pb::PluginCapability {
                    r#type: Some(Type::Service(Svc {
                        r#type: service::Type::ControllerService as i32,
                    })),
                });
            }
            caps.push(pb::PluginCapability {
                r#type: Some(Type::VolumeExpansion(VolumeExpansion {
                    r#type: volume_expansion::Type::Online as i32,
                })),
            });
            Ok(pb::GetPluginCapabilitiesResponse { capabilities: caps })
        })
        .await
    }

    async fn probe(
        &self,
        r: Request<pb::ProbeRequest>,
    ) -> Result<Response<pb::ProbeResponse>, Status> {
        call(&self.0, "Probe", r, |d, _| {
            d.probe_cluster()
                .map(|()| pb::ProbeResponse { ready: Some(true) })
                .map_err(|e| Status::failed_precondition(e.to_string()))
        })
        .await
    }
}

fn ctrl_cap(t: pb::controller_service_capability::rpc::Type) -> pb::ControllerServiceCapability {
    use pb::controller_service_capability::{Rpc, Type};
    pb::ControllerServiceCapability {
        r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })),
    }
}

fn node_cap(t: pb::node_service_capability::rpc::Type) -> pb::NodeServiceCapability {
    use pb::node_service_capability::{Rpc, Type};
    pb::NodeServiceCapability {
        r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })),
    }
}

#[tonic::async_trait]
impl pb::controller_server::Controller for Service {
    async fn create_volume(
        &self,
        r: Request<pb::CreateVolumeRequest>,
    ) -> Result<Response<pb::CreateVolumeResponse>, Status> {
        call(&self.0, "CreateVolume", r, |d, q| d.create_volume(q)).await
    }
    async fn delete_volume(
        &self,
        r: Request<pb::DeleteVolumeRequest>,
    ) -> Result<Response<pb::DeleteVolumeResponse>, Status> {
        call(&self.0, "DeleteVolume", r, |d, q| d.delete_volume(q)).await
    }
    async fn controller_publish_volume(
        &self,
        _: Request<pb::ControllerPublishVolumeRequest>,
    ) -> Result<Response<pb::ControllerPublishVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "volumes need no controller publish: the node stage attaches them",
        ))
    }
    async fn controller_unpublish_volume(
        &self,
        _: Request<pb::ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<pb::ControllerUnpublishVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "volumes need no controller unpublish: the node unstage detaches them",
        ))
    }
    async fn validate_volume_capabilities(
        &self,
        r: Request<pb::ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<pb::ValidateVolumeCapabilitiesResponse>, Status> {
        call(&self.0, "ValidateVolumeCapabilities", r, |d, q| {
            d.validate(q)
        })
        .await
    }
    async fn list_volumes(
        &self,
        r: Request<pb::ListVolumesRequest>,
    ) -> Result<Response<pb::ListVolumesResponse>, Status> {
        call(&self.0, "ListVolumes", r, |d, q| d.list_volumes(q)).await
    }
    async fn get_capacity(
        &self,
        r: Request<pb::GetCapacityRequest>,
    ) -> Result<Response<pb::GetCapacityResponse>, Status> {
        call(&self.0, "GetCapacity", r, |d, q| d.get_capacity(q)).await
    }
    async fn controller_get_capabilities(
        &self,
        r: Request<pb::ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<pb::ControllerGetCapabilitiesResponse>, Status> {
        call(&self.0, "ControllerGetCapabilities", r, |_, _| {
            use pb::controller_service_capability::rpc::Type as T;
            Ok(pb::ControllerGetCapabilitiesResponse {
                capabilities: [
                    T::CreateDeleteVolume,
                    T::CreateDeleteSnapshot,
                    T::ListSnapshots,
                    T::ListVolumes,
                    T::GetCapacity,
                    T::CloneVolume,
                    T::ExpandVolume,
                ]
                .into_iter()
                .map(ctrl_cap)
                .collect(),
            })
        })
        .await
    }
    async fn create_snapshot(
        &self,
        r: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<pb::CreateSnapshotResponse>, Status> {
        call(&self.0, "CreateSnapshot", r, |d, q| d.create_snapshot(q)).await
    }
    async fn delete_snapshot(
        &self,
        r: Request<pb::DeleteSnapshotRequest>,
    ) -> Result<Response<pb::DeleteSnapshotResponse>, Status> {
        call(&self.0, "DeleteSnapshot", r, |d, q| d.delete_snapshot(q)).await
    }
    async fn list_snapshots(
        &self,
        r: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        call(&self.0, "ListSnapshots", r, |d, q| d.list_snapshots(q)).await
    }
    async fn controller_expand_volume(
        &self,
        r: Request<pb::ControllerExpandVolumeRequest>,
    ) -> Result<Response<pb::ControllerExpandVolumeResponse>, Status> {
        call(&self.0, "ControllerExpandVolume", r, |d, q| d.expand(q)).await
    }
    async fn controller_get_volume(
        &self,
        _: Request<pb::ControllerGetVolumeRequest>,
    ) -> Result<Response<pb::ControllerGetVolumeResponse>, Status> {
        Err(Status::unimplemented("GET_VOLUME is not advertised"))
    }
    async fn controller_modify_volume(
        &self,
        _: Request<pb::ControllerModifyVolumeRequest>,
    ) -> Result<Response<pb::ControllerModifyVolumeResponse>, Status> {
        Err(Status::unimplemented("MODIFY_VOLUME is not advertised"))
    }
}

#[tonic::async_trait]
impl pb::node_server::Node for Service {
    async fn node_stage_volume(
        &self,
        r: Request<pb::NodeStageVolumeRequest>,
    ) -> Result<Response<pb::NodeStageVolumeResponse>, Status> {
        call(&self.0, "NodeStageVolume", r, |d, q| d.stage(q)).await
    }
    async fn node_unstage_volume(
        &self,
        r: Request<pb::NodeUnstageVolumeRequest>,
    ) -> Result<Response<pb::NodeUnstageVolumeResponse>, Status> {
        call(&self.0, "NodeUnstageVolume", r, |d, q| d.unstage(q)).await
    }
    async fn node_publish_volume(
        &self,
        r: Request<pb::NodePublishVolumeRequest>,
    ) -> Result<Response<pb::NodePublishVolumeResponse>, Status> {
        call(&self.0, "NodePublishVolume", r, |d, q| d.publish(q)).await
    }
    async fn node_unpublish_volume(
        &self,
        r: Request<pb::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<pb::NodeUnpublishVolumeResponse>, Status> {
        call(&self.0, "NodeUnpublishVolume", r, |d, q| d.unpublish(q)).await
    }
    async fn node_get_volume_stats(
        &self,
        r: Request<pb::NodeGetVolumeStatsRequest>,
    ) -> Result<Response<pb::NodeGetVolumeStatsResponse>, Status> {
        call(&self.0, "NodeGetVolumeStats", r, |d, q| d.stats(q)).await
    }
    async fn node_expand_volume(
        &self,
        r: Request<pb::NodeExpandVolumeRequest>,
    ) -> Result<Response<pb::NodeExpandVolumeResponse>, Status> {
        call(&self.0, "NodeExpandVolume", r, |d, q| d.node_expand(q)).await
    }
    async fn node_get_capabilities(
        &self,
        r: Request<pb::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<pb::NodeGetCapabilitiesResponse>, Status> {
        call(&self.0, "NodeGetCapabilities", r, |d, _| {
            use pb::node_service_capability::rpc::Type as T;
            let mut caps = vec![T::StageUnstageVolume, T::GetVolumeStats, T::VolumeCondition];
            if d.backend.node_expands() {
                caps.push(T::ExpandVolume);
            }
            Ok(pb::NodeGetCapabilitiesResponse {
                capabilities: caps.into_iter().map(node_cap).collect(),
            })
        })
        .await
    }
    async fn node_get_info(
        &self,
        r: Request<pb::NodeGetInfoRequest>,
    ) -> Result<Response<pb::NodeGetInfoResponse>, Status> {
        call(&self.0, "NodeGetInfo", r, |d, _| {
            Ok(pb::NodeGetInfoResponse {
                node_id: d.config.node_id.clone(),
                max_volumes_per_node: 0,
                accessible_topology: None,
            })
        })
        .await
    }
}

/// Serves the driver on the unix socket `path` until `shutdown` resolves. The socket is 0600 (the CO
/// runs as root) and replaced if a dead driver left it behind.
pub async fn serve(
    driver: Arc<Driver>,
    path: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("{} is served by another process", path.display()).into());
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let service = Service(Arc::clone(&driver));
    let mut router = tonic::transport::Server::builder()
        .add_service(pb::identity_server::IdentityServer::new(service.clone()));
    if driver.config.controller {
        router = router.add_service(pb::controller_server::ControllerServer::new(
            service.clone(),
        ));
    }
    if driver.config.node {
        router = router.add_service(pb::node_server::NodeServer::new(service));
    }
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_tokens() {
        let items: Vec<u32> = (0..5).collect();
        assert_eq!(
            page(items.clone(), 2, "").unwrap(),
            (vec![0, 1], "2".into())
        );
        assert_eq!(
            page(items.clone(), 2, "4").unwrap(),
            (vec![4], String::new())
        );
        assert_eq!(page(items.clone(), 0, "").unwrap().0.len(), 5);
        assert_eq!(
            page(items.clone(), 2, "x").unwrap_err().code(),
            tonic::Code::Aborted
        );
        assert_eq!(
            page(items, 2, "9").unwrap_err().code(),
            tonic::Code::Aborted
        );
    }

    #[test]
    fn pages_start_after_the_last_key_even_if_it_is_gone() {
        let keys: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let ok = |t: &str| t.len() == 1;
        assert_eq!(page_after(&keys, 2, "", ok).unwrap(), (0..2, "b".into()));
        assert_eq!(
            page_after(&keys, 2, "b", ok).unwrap(),
            (2..4, String::new())
        );
        // "bb" was the last key of a page and has been removed since.
        assert_eq!(
            page_after(&keys, 1, "c", ok).unwrap(),
            (3..4, String::new())
        );
        assert_eq!(page_after(&keys, 0, "", ok).unwrap(), (0..4, String::new()));
        assert_eq!(
            page_after(&keys, 2, "invalid", ok).unwrap_err().code(),
            tonic::Code::Aborted
        );
        assert_eq!(
            page_after(&keys, -1, "", ok).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn one_request_per_volume_at_a_time() {
        let f = InFlight::default();
        let a = f.claim("p/v").unwrap();
        assert_eq!(f.claim("p/v").err().unwrap().code(), tonic::Code::Aborted);
        assert!(f.claim("p/w").is_ok());
        drop(a);
        assert!(f.claim("p/v").is_ok());
    }
}
