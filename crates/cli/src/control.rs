//! The control API's endpoints beyond ping/status/shutdown: resources, pools and volumes, one JSON error
//! shape, and the OpenAPI document generated from the handlers and types (`GET /v1/openapi.json`, kept
//! in the repo as `docs/openapi.json`).
//!
//! Every handler calls the library function the matching CLI command calls, with the supervisor's
//! librados connection, on tokio's blocking pool (librados and librbd calls block).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use rookery_ceph::Rados;
use rookery_files::subvolume::{self, SubvolumeInfo};
use rookery_files::FileError;
use rookery_orchestrator::objects::{
    self, BucketMade, BucketRow, ObjectStoreError, Store, UserDetail, UserRow,
};
use rookery_orchestrator::report::ReconcileInfo;
use rookery_orchestrator::resources::{
    self, Apply, Delete, Deleted, NewUser, PoolRow, ResourceError,
};
use rookery_volumes::holder::Holder;
use rookery_volumes::manage::{self, SnapshotInfo, VolumeInfo};
use rookery_volumes::{MountRecord, VolumeError};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use rookery_platform::local::THIS_HOST_ADDRESS;
use rookery_platform::DaemonState;

use crate::supervisor::Shared;

/// Every error the API answers with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for programs: a stable snake_case name.
    pub code: String,
    /// The request field (or document path) the error is about; null when it is about none.
    #[schema(required = true)]
    pub field: Option<String>,
    /// What went wrong and what to do, for people.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, field: Option<String>, message: String) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.to_string(),
                field,
                message,
            },
        }
    }

    fn internal(message: String) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", None, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = %self.body.code, message = %self.body.message, "API request failed");
        }
        (self.status, Json(self.body)).into_response()
    }
}

fn ceph_status(unreachable: bool) -> StatusCode {
    if unreachable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> ApiError {
        let status = match &e {
            VolumeError::BadRequest(_) | VolumeError::Invalid { .. } => StatusCode::BAD_REQUEST,
            VolumeError::NotFound(_) => StatusCode::NOT_FOUND,
            VolumeError::Exists(_)
            | VolumeError::InUse(_)
            | VolumeError::Busy(_)
            | VolumeError::NotAClone(_) => StatusCode::CONFLICT,
            VolumeError::Ceph(c) => ceph_status(c.is_unreachable()),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.field().map(String::from), e.message())
    }
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> ApiError {
        let status = match &e {
            FileError::BadRequest(_) | FileError::Invalid { .. } => StatusCode::BAD_REQUEST,
            FileError::NotFound(_) => StatusCode::NOT_FOUND,
            FileError::Exists(_) | FileError::InUse(_) => StatusCode::CONFLICT,
            FileError::Ceph(c) => ceph_status(c.is_unreachable()),
            // A clone still copying in the background: asking again later may find it done.
            FileError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            FileError::CloneFailed(_) | FileError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.field().map(String::from), e.message())
    }
}

impl From<ObjectStoreError> for ApiError {
    fn from(e: ObjectStoreError) -> ApiError {
        let status = match &e {
            ObjectStoreError::NoStore(_) | ObjectStoreError::NoUser { .. } => StatusCode::NOT_FOUND,
            ObjectStoreError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ObjectStoreError::InvalidBucketName { .. } => StatusCode::BAD_REQUEST,
            ObjectStoreError::NotEmpty { .. } | ObjectStoreError::BucketExists { .. } => {
                StatusCode::CONFLICT
            }
            ObjectStoreError::Gateway(g) => match g.status() {
                Some(404) => StatusCode::NOT_FOUND,
                Some(400..=499) => StatusCode::BAD_REQUEST,
                Some(_) => StatusCode::BAD_GATEWAY,
                None => StatusCode::SERVICE_UNAVAILABLE,
            },
            ObjectStoreError::Orchestrator(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.field().map(String::from), e.to_string())
    }
}

impl From<ResourceError> for ApiError {
    fn from(e: ResourceError) -> ApiError {
        let status = match &e {
            ResourceError::NotFound { .. } => StatusCode::NOT_FOUND,
            ResourceError::OtherCluster { .. }
            | ResourceError::PortInUse { .. }
            | ResourceError::Blocked(_) => StatusCode::CONFLICT,
            ResourceError::Ceph(c) => ceph_status(c.is_unreachable()),
            ResourceError::Orchestrator(rookery_orchestrator::OrchestratorError::Ceph(c)) => {
                ceph_status(c.is_unreachable())
            }
            ResourceError::Orchestrator(_) | ResourceError::Other(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.field(), e.to_string())
    }
}

impl From<rookery_ceph::CephError> for ApiError {
    fn from(e: rookery_ceph::CephError) -> ApiError {
        let unreachable = e.is_unreachable();
        let code = if unreachable {
            "ceph_unavailable"
        } else {
            "ceph_error"
        };
        ApiError::new(ceph_status(unreachable), code, None, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", None, e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            None,
            e.body_text(),
        )
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The supervisor's librados connection; none yet while the mons come up.
fn rados(shared: &Shared) -> ApiResult<Arc<Rados>> {
    shared.rados().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ceph_unavailable",
            None,
            "no mon answers yet; wait until GET /v1/status reports ready".into(),
        )
    })
}

/// Runs a blocking call (librados, librbd, files) on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> ApiResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
}

/// Runs `f` on the supervisor's connection, on the blocking pool. When Ceph does not answer it, `f` runs
/// once more on a connection made for this request: the supervisor's was made as the mons came up, and
/// after a restart of the whole host it can keep an OSD map from before, whose OSDs no longer listen.
pub(crate) async fn on_ceph<T, F>(shared: &Arc<Shared>, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: Fn(&Rados) -> ApiResult<T> + Send + 'static,
{
    let rados = rados(shared)?;
    let conf = shared.layout.conf();
    let layout = shared.layout.clone();
    blocking(move || match f(&rados) {
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
            tracing::warn!(code = %e.body.code, message = %e.body.message, "Ceph did not answer the supervisor's connection; trying a new one");
            let user = rookery_orchestrator::ceph_user(&layout);
            let fresh = Rados::connect(&conf, &user, rookery_orchestrator::CEPH_TIMEOUT)?;
            f(&fresh)
        }
        other => other,
    })
    .await
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/pools", get(list_pools))
        .route("/v1/history", get(history))
        .route("/v1/events", get(events))
        .route("/v1/filesystems/{fs}/mounts", get(list_fs_mounts))
        .route("/v1/daemons/{name}/retry", post(retry_daemon))
        .route("/v1/osds/{id}/retire", post(retire_osd))
        .route("/v1/csi/access", post(csi_access))
        .route(
            "/v1/hosts",
            get(crate::hosts_api::list_hosts).post(crate::hosts_api::add_host),
        )
        .route(
            "/v1/hosts/{name}/remove",
            post(crate::hosts_api::remove_host),
        )
        .route("/v1/resources", post(apply))
        .route("/v1/resources/delete", post(delete_resources))
        .route("/v1/volumes", get(list_volumes).post(create_volume))
        .route(
            "/v1/volumes/{pool}/{name}",
            get(volume_info).delete(remove_volume),
        )
        .route("/v1/volumes/{pool}/{name}/resize", post(resize_volume))
        .route("/v1/volumes/{pool}/{name}/clone", post(clone_volume))
        .route("/v1/volumes/{pool}/{name}/flatten", post(flatten_volume))
        .route("/v1/volumes/{pool}/{name}/snapshots", post(create_snapshot))
        .route(
            "/v1/volumes/{pool}/{name}/snapshots/{snapshot}",
            delete(remove_snapshot),
        )
        .route(
            "/v1/filesystems/{fs}/subvolumes",
            get(list_subvolumes).post(create_subvolume),
        )
        .route(
            "/v1/filesystems/{fs}/subvolumes/{name}",
            get(subvolume_info).delete(remove_subvolume),
        )
        .route(
            "/v1/filesystems/{fs}/subvolumes/{name}/resize",
            post(resize_subvolume),
        )
        .route("/v1/objectstores/{store}/users", get(list_users))
        .route("/v1/objectstores/{store}/users/{uid}", get(user_info))
        .route(
            "/v1/objectstores/{store}/buckets",
            get(list_buckets).post(create_bucket),
        )
        .route(
            "/v1/objectstores/{store}/buckets/{bucket}",
            delete(remove_bucket),
        )
        .fallback(no_such_endpoint)
}

async fn no_such_endpoint(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_endpoint",
        None,
        format!("{uri} is no endpoint of this API; GET /v1/openapi.json lists them"),
    )
}

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3 document", body = Object)))]
async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
}

/// The last hour of capacity and client I/O, sampled every 10 s by the supervisor (what the dashboard
/// charts).
#[utoipa::path(get, path = "/v1/history", tag = "cluster",
    responses((status = 200, body = rookery_orchestrator::history::History)))]
async fn history(
    State(shared): State<Arc<Shared>>,
) -> Json<rookery_orchestrator::history::History> {
    Json(crate::supervisor::lock(&shared.history).history())
}

/// What the orchestrator did and why, oldest first (the last 200 steps since the supervisor started).
#[utoipa::path(get, path = "/v1/events", tag = "cluster",
    responses((status = 200, body = [rookery_orchestrator::Event])))]
async fn events(State(shared): State<Arc<Shared>>) -> Json<Vec<rookery_orchestrator::Event>> {
    Json(shared.events())
}

/// A CephFS mount on this host (`rookery fs mount`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FsMountRow {
    pub fs: String,
    /// None: the whole filesystem is mounted.
    pub subvolume: Option<String>,
    /// The directory inside the filesystem that is mounted.
    pub root: String,
    pub path: String,
    pub read_only: bool,
    /// The ceph-fuse process serving it.
    pub pid: u32,
    /// Unmounted by `rookery down`, mounted again by `rookery up`.
    pub suspended: bool,
}

/// This host's mounts of a filesystem (mounts whose ceph-fuse died are forgotten first).
#[utoipa::path(get, path = "/v1/filesystems/{fs}/mounts", tag = "filesystems",
    params(("fs" = String, Path)),
    responses(
        (status = 200, body = [FsMountRow]),
        (status = "5XX", body = ErrorBody),
    ))]
async fn list_fs_mounts(
    State(shared): State<Arc<Shared>>,
    Path(fs): Path<String>,
) -> ApiResult<Json<Vec<FsMountRow>>> {
    let data = shared.layout.root.clone();
    let mounts = blocking(move || Ok(rookery_files::mount::list(&data)?)).await?;
    Ok(Json(
        mounts
            .into_iter()
            .filter(|m| m.fs == fs)
            .map(|m| FsMountRow {
                fs: m.fs,
                subvolume: m.subvolume,
                root: m.root,
                path: m.path.display().to_string(),
                read_only: m.read_only,
                pid: m.pid,
                suspended: m.suspended,
            })
            .collect(),
    ))
}

/// Every pool with its copies, usage, quotas and volume count.
#[utoipa::path(get, path = "/v1/pools", tag = "resources",
    responses(
        (status = 200, body = [PoolRow]),
        (status = "5XX", body = ErrorBody),
    ))]
async fn list_pools(State(shared): State<Arc<Shared>>) -> ApiResult<Json<Vec<PoolRow>>> {
    let rados = rados(&shared)?;
    let rows = blocking(move || resources::pools(&rados).map_err(ApiError::from)).await?;
    Ok(Json(rows))
}

/// A daemon after a retry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Retried {
    pub daemon: String,
    /// Its state now: `restarting` when it was given up on (it starts within the supervisor's next
    /// watch, about 200 ms), otherwise what it was.
    pub state: DaemonState,
}

/// Starts again a daemon the supervisor gave up on after it kept dying at start (fix the cause first:
/// `GET /v1/status` carries the last lines of its output). A no-op for a daemon that runs.
#[utoipa::path(post, path = "/v1/daemons/{name}/retry", tag = "daemons",
    params(("name" = String, Path, description = "The daemon: mon.a, osd.1, mds.myfs-a, ...")),
    responses(
        (status = 200, body = Retried),
        (status = 404, body = ErrorBody),
    ))]
async fn retry_daemon(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Retried>> {
    blocking(move || {
        let mut platform = crate::supervisor::lock(&shared.platform);
        platform.retry(&name).map_err(|e| match e {
            rookery_platform::PlatformError::UnknownDaemon(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", None, e.to_string())
            }
            other => ApiError::internal(other.to_string()),
        })?;
        let state = platform
            .status()
            .into_iter()
            .find(|d| d.name == name)
            .map_or(DaemonState::Stopped, |d| d.state);
        Ok(Json(Retried {
            daemon: name,
            state,
        }))
    })
    .await
}

/// What `osd rm` and `osd replace` ask.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RetireBody {
    /// `osd replace`: the device the successor (same id) is made on; absent for `osd rm`.
    #[serde(default)]
    pub replace_with: Option<String>,
}

/// Asks for an OSD to leave the cluster (or to move to `replace_with` under its id). Checked now: the
/// OSD exists, the OSDs left can hold every pool's copies and its data, a replacement device is blank
/// and unused. The supervisor then marks it out, waits until its data has moved, stops and purges it and
/// frees its device; `GET /v1/status` shows the progress (`reconcile.retiring`). Asking again is a no-op.
#[utoipa::path(post, path = "/v1/osds/{id}/retire", tag = "osds",
    params(("id" = u32, Path, description = "The OSD's id")),
    request_body = RetireBody,
    responses(
        (status = 202, body = rookery_orchestrator::osd_requests::OsdRequest),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
async fn retire_osd(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u32>,
    body: Result<Json<RetireBody>, JsonRejection>,
) -> ApiResult<(
    StatusCode,
    Json<rookery_orchestrator::osd_requests::OsdRequest>,
)> {
    use rookery_orchestrator::osd_requests::{self, RequestError, RetireError};
    let Json(body) = body?;
    // Retiring an OSD file lowers the spec's count: one spec edit at a time.
    let _edit = shared.edits.lock().await;
    let layout = shared.layout.clone();
    let rados = rados(&shared)?;
    blocking(move || {
        let device = body.replace_with.map(std::path::PathBuf::from);
        match osd_requests::request(&layout, &rados, id, device.as_deref()) {
            Ok(q) => Ok((StatusCode::ACCEPTED, Json(q))),
            Err(RequestError::Refused(e)) => {
                let (status, code) = match &e {
                    RetireError::NoSuchOsd { .. } => (StatusCode::NOT_FOUND, "not_found"),
                    RetireError::BadDevice { .. } => (StatusCode::BAD_REQUEST, "bad_device"),
                    _ => (StatusCode::CONFLICT, "refused"),
                };
                Err(ApiError::new(status, code, None, e.to_string()))
            }
            Err(RequestError::Failed(rookery_orchestrator::OrchestratorError::Ceph(c))) => {
                Err(c.into())
            }
            Err(RequestError::Failed(e)) => Err(ApiError::internal(e.to_string())),
        }
    })
    .await
}

/// What an apply did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplyResult {
    /// `Kind/name` of every document applied.
    pub applied: Vec<String>,
    /// The supervisor has reconciled the cluster to the new spec.
    pub reconciled: bool,
    /// Users made by this apply, with their keys: the only answer that carries them.
    pub new_users: Vec<NewUser>,
    /// Where the object stores given serve S3.
    pub object_stores: Vec<StoreEndpoint>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoreEndpoint {
    pub store: String,
    /// `http://ADDRESS:PORT`
    pub endpoint: String,
}

/// How long an apply waits for the supervisor to reconcile to it (pools, filesystems, gateways).
const APPLY_WAIT: Duration = Duration::from_secs(180);

/// Applies Rook documents (YAML or JSON, several separated by `---`): merged into the cluster's spec by
/// kind and name, validated as a whole, saved, and answered once the supervisor has reconciled to it.
#[utoipa::path(post, path = "/v1/resources", tag = "resources",
    request_body(content = String, content_type = "application/yaml",
        description = "ceph.rook.io/v1 documents, YAML or JSON"),
    responses(
        (status = 200, body = ApplyResult),
        (status = 400, description = "invalid documents; nothing was changed", body = ErrorBody),
        (status = 409, description = "conflicts with what runs, or saved but blocked", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn apply(State(shared): State<Arc<Shared>>, body: String) -> ApiResult<Json<ApplyResult>> {
    // One edit of the spec at a time: each merges into what the previous one saved.
    let _edit = shared.edits.lock().await;
    refuse_unless_leading(&shared)?;
    let work = shared.clone();
    let applied = blocking(move || {
        let platform = crate::supervisor::lock(&work.platform);
        let applied = Apply::prepare(&work.layout, &*platform, &body, "the request body")?;
        drop(platform);
        applied.save(&work.layout)?;
        Ok(applied)
    })
    .await?;
    let info = wait_reconciled(&shared, &applied.merged, APPLY_WAIT).await?;
    if !info.blocked.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "reconcile_blocked",
            None,
            format!(
                "saved, but rookery cannot carry it out: {}",
                info.blocked.join("; ")
            ),
        ));
    }
    let layout = shared.layout.clone();
    let names = applied.names();
    let object_stores = applied
        .new_object_stores()
        .into_iter()
        .map(|(store, port)| StoreEndpoint {
            store,
            endpoint: format!(
                "http://{}",
                rookery_orchestrator::objectstore::endpoint(THIS_HOST_ADDRESS, port)
            ),
        })
        .collect();
    let new_users = blocking(move || Ok(applied.new_users(&layout)?)).await?;
    Ok(Json(ApplyResult {
        applied: names,
        reconciled: true,
        new_users,
        object_stores,
    }))
}

/// In a cluster over several hosts the spec is the leading host's (the others take what it publishes):
/// a change asked of another host would be undone, so it is refused there.
fn refuse_unless_leading(shared: &Shared) -> ApiResult<()> {
    let Some(leader) = shared.reconcile_info().leader else {
        return Ok(());
    };
    let home = rookery_orchestrator::state::HostPolicy::load(&shared.layout)
        .member
        .map(|m| m.name);
    if home.as_deref() == Some(leader.as_str()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "not_leader",
        None,
        format!("{leader} carries out the cluster-wide work and the others follow its spec: run this on {leader} (nothing was changed)"),
    ))
}

/// Waits until the reconciler has settled on the spec `text` (done, or blocked and saying why).
async fn wait_reconciled(shared: &Shared, text: &str, limit: Duration) -> ApiResult<ReconcileInfo> {
    let digest = rookery_orchestrator::spec_digest(text);
    let deadline = Instant::now() + limit;
    loop {
        let info = shared.reconcile_info();
        if info.settled_on(&digest) {
            return Ok(info);
        }
        if Instant::now() > deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_reconciled",
                None,
                format!(
                    "the change is saved but not reconciled after {} s: {}",
                    limit.as_secs(),
                    info.last_error
                        .or(info.waiting)
                        .unwrap_or_else(|| info.pending.join("; "))
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQuery {
    /// Confirms that the buckets (and their objects) of deleted users and object stores go too.
    #[serde(default)]
    pub yes_delete_buckets: bool,
}

/// How long a delete waits for the supervisor to drop the documents (and stop their daemons).
const DELETE_WAIT: Duration = Duration::from_secs(60);

/// Deletes the Rook documents given (YAML or JSON): refused, changing nothing, while anything stands in
/// the way (volumes in a pool, mounts or subvolumes of a filesystem, users of a store, buckets without
/// the confirmation); else the spec drops them, the supervisor stops their daemons, and their pools,
/// filesystems and keys go.
#[utoipa::path(post, path = "/v1/resources/delete", tag = "resources", params(DeleteQuery),
    request_body(content = String, content_type = "application/yaml",
        description = "ceph.rook.io/v1 documents, YAML or JSON"),
    responses(
        (status = 200, body = Deleted),
        (status = 400, description = "invalid documents; nothing was changed", body = ErrorBody),
        (status = 404, description = "a document names no resource of the cluster", body = ErrorBody),
        (status = 409, description = "refused: the code and message name what stands in the way", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn delete_resources(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
    body: String,
) -> ApiResult<Json<Deleted>> {
    let Query(q) = query?;
    let _edit = shared.edits.lock().await;
    refuse_unless_leading(&shared)?;
    let rados = rados(&shared)?;
    let (work, conn) = (shared.clone(), rados.clone());
    let delete = blocking(move || {
        let layout = &work.layout;
        let current = resources::saved_resources(layout)?;
        let admin_of = |store: &str| store_admin(layout, &current, store);
        let delete = Delete::prepare(
            &conn,
            layout,
            &body,
            "the request body",
            q.yes_delete_buckets,
            &admin_of,
        )?;
        delete.start(layout, &admin_of)?;
        Ok(delete)
    })
    .await?;
    wait_reconciled(&shared, &delete.merged, DELETE_WAIT).await?;
    let work = shared.clone();
    let done = blocking(move || {
        let layout = &work.layout;
        let current = resources::saved_resources(layout)?;
        let admin_of = |store: &str| store_admin(layout, &current, store);
        let stores = work
            .platform
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stores();
        Ok(delete.finish(&rados, layout, stores.as_ref(), &admin_of)?)
    })
    .await?;
    Ok(Json(done))
}

fn default_pool() -> String {
    manage::DEFAULT_POOL.to_string()
}

fn default_fs() -> String {
    "ext4".to_string()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolQuery {
    /// The pool (default `replicapool`).
    #[serde(default = "default_pool")]
    pub pool: String,
}

/// Volumes of a pool with size, usage, snapshots, holders and this host's mounts.
#[utoipa::path(get, path = "/v1/volumes", tag = "volumes", params(PoolQuery),
    responses(
        (status = 200, body = [VolumeInfo]),
        (status = 404, description = "no such pool", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn list_volumes(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<PoolQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<VolumeInfo>>> {
    let Query(q) = query?;
    let data = shared.layout.root.clone();
    let list = on_ceph(&shared, move |rados| {
        Ok(manage::list(rados, &data, &q.pool)?)
    })
    .await?;
    Ok(Json(list))
}

/// Everything about one volume.
#[utoipa::path(get, path = "/v1/volumes/{pool}/{name}", tag = "volumes",
    params(("pool" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, body = VolumeInfo),
        (status = 404, body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn volume_info(
    State(shared): State<Arc<Shared>>,
    Path((pool, name)): Path<(String, String)>,
) -> ApiResult<Json<VolumeInfo>> {
    let data = shared.layout.root.clone();
    let info = on_ceph(&shared, move |rados| {
        Ok(manage::info(rados, &data, &pool, &name)?)
    })
    .await?;
    Ok(Json(info))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVolume {
    pub name: String,
    #[serde(default = "default_pool")]
    #[schema(default = "replicapool")]
    pub pool: String,
    /// Size, such as `10Gi` or `500Mi`.
    pub size: String,
    /// Filesystem made on first mount: `ext4`, `xfs`, or `none` (raw block).
    #[serde(default = "default_fs")]
    #[schema(default = "ext4")]
    pub fs: String,
    /// Keep the data in this erasure-coded pool (the metadata stays in `pool`).
    #[serde(default)]
    pub data_pool: Option<String>,
    /// Allow a size above the pool's quota (never above what its OSDs can hold); writes stop when the
    /// pool is full, and `status` warns.
    #[serde(default)]
    pub over_commit: bool,
}

/// Creates a volume.
#[utoipa::path(post, path = "/v1/volumes", tag = "volumes", request_body = CreateVolume,
    responses(
        (status = 201, body = VolumeInfo),
        (status = 400, body = ErrorBody),
        (status = 404, description = "no such pool", body = ErrorBody),
        (status = 409, description = "a volume of that name exists", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn create_volume(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<CreateVolume>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<VolumeInfo>)> {
    let Json(req) = body?;
    let data = shared.layout.root.clone();
    let info = on_ceph(&shared, move |rados| {
        let bytes = manage::parse_size(&req.size)?;
        let made = manage::create_volume(
            rados,
            &manage::NewVolume {
                pool: &req.pool,
                name: &req.name,
                size: bytes,
                fs: &req.fs,
                features: rookery_volumes::mapper::default_features(),
                data_pool: req.data_pool.as_deref(),
                over_commit: req.over_commit,
            },
        )?;
        manage::refuse_existing(made, &req.pool, &req.name)?;
        Ok(manage::info(rados, &data, &req.pool, &req.name)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// The new size, such as `20Gi`; shrinking is refused.
    pub size: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizeVolume {
    /// The new size, such as `20Gi`; shrinking is refused.
    pub size: String,
    /// Allow a size above the pool's quota (never above what its OSDs can hold).
    #[serde(default)]
    pub over_commit: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Resized {
    pub volume: VolumeInfo,
    /// What else happened or is left (a filesystem that grows on its next mount).
    pub notes: Vec<String>,
}

/// Grows a volume, and its filesystem when it is mounted on this host.
#[utoipa::path(post, path = "/v1/volumes/{pool}/{name}/resize", tag = "volumes",
    params(("pool" = String, Path), ("name" = String, Path)), request_body = ResizeVolume,
    responses(
        (status = 200, body = Resized),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn resize_volume(
    State(shared): State<Arc<Shared>>,
    Path((pool, name)): Path<(String, String)>,
    body: Result<Json<ResizeVolume>, JsonRejection>,
) -> ApiResult<Json<Resized>> {
    let Json(req) = body?;
    let data = shared.layout.root.clone();
    let resized = on_ceph(&shared, move |rados| {
        let bytes = manage::parse_size(&req.size)?;
        let notes = manage::resize(rados, &data, &pool, &name, bytes, req.over_commit)?;
        let volume = manage::info(rados, &data, &pool, &name)?;
        Ok(Resized { volume, notes })
    })
    .await?;
    Ok(Json(resized))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneVolume {
    /// The snapshot of the volume in the path to clone.
    pub snapshot: String,
    /// The new volume's name; it is made in the source's pool, with the source's size and filesystem.
    pub name: String,
    /// Copy all data now, so the clone no longer depends on the snapshot (takes as long as copying
    /// the volume).
    #[serde(default)]
    pub flatten: bool,
}

/// Creates a volume from a snapshot: it shares the snapshot's data until written (or copies it at
/// once with `flatten`). The clone lives in the source's pool.
#[utoipa::path(post, path = "/v1/volumes/{pool}/{name}/clone", tag = "volumes",
    params(("pool" = String, Path), ("name" = String, Path)), request_body = CloneVolume,
    responses(
        (status = 201, description = "the new volume", body = VolumeInfo),
        (status = 400, description = "an invalid name; the field says which", body = ErrorBody),
        (status = 404, description = "no such pool, volume or snapshot", body = ErrorBody),
        (status = 409, description = "a volume of the new name exists", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn clone_volume(
    State(shared): State<Arc<Shared>>,
    Path((pool, name)): Path<(String, String)>,
    body: Result<Json<CloneVolume>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<VolumeInfo>)> {
    let Json(req) = body?;
    let data = shared.layout.root.clone();
    let info = on_ceph(&shared, move |rados| {
        manage::clone(rados, &pool, &name, &req.snapshot, &req.name, req.flatten)?;
        Ok(manage::info(rados, &data, &pool, &req.name)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Copies a clone's shared data into it, so it no longer depends on its parent snapshot (which can
/// then be removed).
#[utoipa::path(post, path = "/v1/volumes/{pool}/{name}/flatten", tag = "volumes",
    params(("pool" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, description = "the volume, now without a parent", body = VolumeInfo),
        (status = 404, body = ErrorBody),
        (status = 409, description = "not a clone (code `not_a_clone`): nothing to flatten", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn flatten_volume(
    State(shared): State<Arc<Shared>>,
    Path((pool, name)): Path<(String, String)>,
) -> ApiResult<Json<VolumeInfo>> {
    let data = shared.layout.root.clone();
    let info = on_ceph(&shared, move |rados| {
        manage::flatten(rados, &pool, &name)?;
        Ok(manage::info(rados, &data, &pool, &name)?)
    })
    .await?;
    Ok(Json(info))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotCreated {
    pub pool: String,
    pub volume: String,
    pub snapshot: String,
    /// This host's mounts of the volume frozen while the snapshot was taken.
    #[schema(value_type = Vec<String>)]
    pub frozen: Vec<PathBuf>,
}

/// Takes a snapshot; the volume's read-write mounts on this host are frozen around it, so it holds
/// every write made before it.
#[utoipa::path(post, path = "/v1/volumes/{pool}/{name}/snapshots", tag = "volumes",
    params(("pool" = String, Path), ("name" = String, Path)), request_body = CreateSnapshot,
    responses(
        (status = 201, body = SnapshotCreated),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "a snapshot of that name exists", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn create_snapshot(
    State(shared): State<Arc<Shared>>,
    Path((pool, name)): Path<(String, String)>,
    body: Result<Json<CreateSnapshot>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<SnapshotCreated>)> {
    let Json(req) = body?;
    let data = shared.layout.root.clone();
    let created = on_ceph(&shared, move |rados| {
        let frozen =
            rookery_volumes::freeze::snapshot_consistent(rados, &data, &pool, &name, &req.name)?;
        Ok(SnapshotCreated {
            pool: pool.clone(),
            volume: name.clone(),
            snapshot: req.name.clone(),
            frozen,
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Removes a snapshot (refused while clones depend on it).
#[utoipa::path(delete, path = "/v1/volumes/{pool}/{name}/snapshots/{snapshot}", tag = "volumes",
    params(("pool" = String, Path), ("name" = String, Path), ("snapshot" = String, Path)),
    responses(
        (status = 204, description = "removed"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "clones depend on it", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn remove_snapshot(
    State(shared): State<Arc<Shared>>,
    Path((pool, name, snapshot)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    on_ceph(&shared, move |rados| {
        Ok(manage::snapshot_remove(rados, &pool, &name, &snapshot)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a volume (refused while mounted or open, or while it has snapshots or clones). Its data is
/// deleted in the background.
#[utoipa::path(delete, path = "/v1/volumes/{pool}/{name}", tag = "volumes",
    params(("pool" = String, Path), ("name" = String, Path)),
    responses(
        (status = 204, description = "removed"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "in use; the message names by what", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn remove_volume(
    State(shared): State<Arc<Shared>>,
    Path((pool, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    on_ceph(&shared, move |rados| {
        Ok(manage::remove(rados, &pool, &name)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Subvolumes of a filesystem with quota, usage and path.
#[utoipa::path(get, path = "/v1/filesystems/{fs}/subvolumes", tag = "filesystems",
    params(("fs" = String, Path)),
    responses(
        (status = 200, body = [SubvolumeInfo]),
        (status = 404, description = "no such filesystem", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn list_subvolumes(
    State(shared): State<Arc<Shared>>,
    Path(fs): Path<String>,
) -> ApiResult<Json<Vec<SubvolumeInfo>>> {
    let list = on_ceph(&shared, move |rados| Ok(subvolume::list(rados, &fs)?)).await?;
    Ok(Json(list))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubvolume {
    pub name: String,
    /// The quota, such as `10Gi`: writes beyond it fail.
    pub size: String,
}

/// Creates a subvolume: a directory with a quota, the unit a workload mounts.
#[utoipa::path(post, path = "/v1/filesystems/{fs}/subvolumes", tag = "filesystems",
    params(("fs" = String, Path)), request_body = CreateSubvolume,
    responses(
        (status = 201, body = SubvolumeInfo),
        (status = 400, body = ErrorBody),
        (status = 404, description = "no such filesystem", body = ErrorBody),
        (status = 409, description = "a subvolume of that name exists", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn create_subvolume(
    State(shared): State<Arc<Shared>>,
    Path(fs): Path<String>,
    body: Result<Json<CreateSubvolume>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<SubvolumeInfo>)> {
    let Json(req) = body?;
    let info = on_ceph(&shared, move |rados| {
        let bytes = subvolume::parse_size(&req.size)?;
        Ok(subvolume::create(rados, &fs, &req.name, bytes)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// One subvolume.
#[utoipa::path(get, path = "/v1/filesystems/{fs}/subvolumes/{name}", tag = "filesystems",
    params(("fs" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, body = SubvolumeInfo),
        (status = 404, body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn subvolume_info(
    State(shared): State<Arc<Shared>>,
    Path((fs, name)): Path<(String, String)>,
) -> ApiResult<Json<SubvolumeInfo>> {
    let info = on_ceph(&shared, move |rados| {
        Ok(subvolume::info(rados, &fs, &name)?)
    })
    .await?;
    Ok(Json(info))
}

/// Changes a subvolume's quota (refused below what it stores).
#[utoipa::path(post, path = "/v1/filesystems/{fs}/subvolumes/{name}/resize", tag = "filesystems",
    params(("fs" = String, Path), ("name" = String, Path)), request_body = Resize,
    responses(
        (status = 200, body = SubvolumeInfo),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn resize_subvolume(
    State(shared): State<Arc<Shared>>,
    Path((fs, name)): Path<(String, String)>,
    body: Result<Json<Resize>, JsonRejection>,
) -> ApiResult<Json<SubvolumeInfo>> {
    let Json(req) = body?;
    let info = on_ceph(&shared, move |rados| {
        let bytes = subvolume::parse_size(&req.size)?;
        Ok(subvolume::resize(rados, &fs, &name, bytes, true)?)
    })
    .await?;
    Ok(Json(info))
}

/// Removes a subvolume and its files (refused while mounted on this host).
#[utoipa::path(delete, path = "/v1/filesystems/{fs}/subvolumes/{name}", tag = "filesystems",
    params(("fs" = String, Path), ("name" = String, Path)),
    responses(
        (status = 204, description = "removed"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "mounted; the message says where", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn remove_subvolume(
    State(shared): State<Arc<Shared>>,
    Path((fs, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let data = shared.layout.root.clone();
    on_ceph(&shared, move |rados| {
        Ok(subvolume::remove_unmounted(rados, &data, &fs, &name)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The admin-API client of the spec's object store `store` (its gateway runs on this host).
fn store_admin(
    layout: &rookery_orchestrator::Layout,
    res: &rookery_spec::Resources,
    store: &str,
) -> Option<rookery_objects::admin::Admin> {
    Store::find(res, store)
        .and_then(|s| s.admin(layout, THIS_HOST_ADDRESS))
        .ok()
}

/// The saved spec and its object store `store`.
fn object_store(
    layout: &rookery_orchestrator::Layout,
    store: &str,
) -> ApiResult<(rookery_spec::Resources, Store)> {
    let res = resources::saved_resources(layout)?;
    let store = Store::find(&res, store)?;
    Ok((res, store))
}

/// The users of an object store (the spec's CephObjectStoreUsers) with access keys and bucket counts.
#[utoipa::path(get, path = "/v1/objectstores/{store}/users", tag = "objects",
    params(("store" = String, Path)),
    responses(
        (status = 200, body = [UserRow]),
        (status = 404, description = "no such object store", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn list_users(
    State(shared): State<Arc<Shared>>,
    Path(store): Path<String>,
) -> ApiResult<Json<Vec<UserRow>>> {
    let layout = shared.layout.clone();
    let rows = blocking(move || {
        let (res, store) = object_store(&layout, &store)?;
        let admin = store.admin(&layout, THIS_HOST_ADDRESS)?;
        Ok(objects::users(&layout, &res, &store, &admin))
    })
    .await?;
    Ok(Json(rows))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SecretQuery {
    /// Include the secret key in the answer.
    #[serde(default)]
    pub show_secrets: bool,
}

/// One user: settings, quota, buckets and access key; the secret key only with `showSecrets=true`.
#[utoipa::path(get, path = "/v1/objectstores/{store}/users/{uid}", tag = "objects",
    params(("store" = String, Path), ("uid" = String, Path), SecretQuery),
    responses(
        (status = 200, body = UserDetail),
        (status = 404, body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn user_info(
    State(shared): State<Arc<Shared>>,
    Path((store, uid)): Path<(String, String)>,
    query: Result<Query<SecretQuery>, QueryRejection>,
) -> ApiResult<Json<UserDetail>> {
    let Query(q) = query?;
    let layout = shared.layout.clone();
    let detail = blocking(move || {
        let (res, store) = object_store(&layout, &store)?;
        Ok(objects::user(
            &layout,
            &res,
            &store,
            THIS_HOST_ADDRESS,
            &uid,
            q.show_secrets,
        )?)
    })
    .await?;
    Ok(Json(detail))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnerQuery {
    /// Only this user's buckets.
    pub user: Option<String>,
}

/// Buckets with owner, bytes stored and object count.
#[utoipa::path(get, path = "/v1/objectstores/{store}/buckets", tag = "objects",
    params(("store" = String, Path), OwnerQuery),
    responses(
        (status = 200, body = [BucketRow]),
        (status = 404, body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn list_buckets(
    State(shared): State<Arc<Shared>>,
    Path(store): Path<String>,
    query: Result<Query<OwnerQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<BucketRow>>> {
    let Query(q) = query?;
    let layout = shared.layout.clone();
    let rows = blocking(move || {
        let (_, store) = object_store(&layout, &store)?;
        let admin = store.admin(&layout, THIS_HOST_ADDRESS)?;
        Ok(objects::buckets(&admin, q.user.as_deref())?)
    })
    .await?;
    Ok(Json(rows))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBucket {
    /// The bucket's name (S3's rules: 3 to 63 lowercase letters, digits, '.' and '-').
    pub bucket: String,
    /// The user of the store who owns it: the bucket is made with that user's own keys.
    pub user: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BucketCreated {
    pub store: String,
    pub bucket: String,
    pub owner: String,
    /// False when the user owned a bucket of that name already (nothing was changed).
    pub created: bool,
}

/// Creates a bucket owned by a user of the store (through S3 with that user's keys). Asking again for
/// a bucket the user owns already changes nothing and answers 200.
#[utoipa::path(post, path = "/v1/objectstores/{store}/buckets", tag = "objects",
    params(("store" = String, Path)), request_body = CreateBucket,
    responses(
        (status = 201, description = "created", body = BucketCreated),
        (status = 200, description = "the user owned it already; nothing was changed", body = BucketCreated),
        (status = 400, description = "an invalid bucket name (`invalid_value`, field `bucket`)", body = ErrorBody),
        (status = 404, description = "no such store (`no_such_store`) or user (`no_such_user`)", body = ErrorBody),
        (status = 409, description = "the bucket belongs to another user (`bucket_exists`)", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn create_bucket(
    State(shared): State<Arc<Shared>>,
    Path(store): Path<String>,
    body: Result<Json<CreateBucket>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<BucketCreated>)> {
    let Json(req) = body?;
    let layout = shared.layout.clone();
    let (status, created) = blocking(move || {
        let (res, store) = object_store(&layout, &store)?;
        let made = objects::create_bucket(
            &layout,
            &res,
            &store,
            THIS_HOST_ADDRESS,
            &req.bucket,
            &req.user,
        )?;
        let status = match made {
            BucketMade::Created => StatusCode::CREATED,
            BucketMade::Existed => StatusCode::OK,
        };
        Ok((
            status,
            BucketCreated {
                store: store.name,
                bucket: req.bucket,
                owner: req.user,
                created: made == BucketMade::Created,
            },
        ))
    })
    .await?;
    Ok((status, Json(created)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PurgeQuery {
    /// Also delete the bucket's objects; without it a bucket that holds any is refused.
    #[serde(default)]
    pub purge_objects: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BucketRemoved {
    pub bucket: String,
    pub objects_removed: u64,
}

/// Removes a bucket (refused while it holds objects, unless `purgeObjects=true`).
#[utoipa::path(delete, path = "/v1/objectstores/{store}/buckets/{bucket}", tag = "objects",
    params(("store" = String, Path), ("bucket" = String, Path), PurgeQuery),
    responses(
        (status = 200, body = BucketRemoved),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the bucket holds objects", body = ErrorBody),
        (status = "5XX", body = ErrorBody),
    ))]
async fn remove_bucket(
    State(shared): State<Arc<Shared>>,
    Path((store, bucket)): Path<(String, String)>,
    query: Result<Query<PurgeQuery>, QueryRejection>,
) -> ApiResult<Json<BucketRemoved>> {
    let Query(q) = query?;
    let layout = shared.layout.clone();
    let removed = blocking(move || {
        let (_, store) = object_store(&layout, &store)?;
        let admin = store.admin(&layout, THIS_HOST_ADDRESS)?;
        let objects_removed = objects::remove_bucket(&admin, &bucket, q.purge_objects)?;
        Ok(BucketRemoved {
            bucket,
            objects_removed,
        })
    })
    .await?;
    Ok(Json(removed))
}

/// The answer of `GET /v1/ping`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pong {
    pub pid: u32,
}

/// One CSI driver's Ceph user and key (ceph-csi's Secret keys).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsiDriverCredentials {
    /// The CSI driver's name.
    pub driver: String,
    #[serde(rename = "userID")]
    pub user_id: String,
    pub user_key: String,
}

/// What rookery's CSI drivers need to use this cluster from elsewhere (Kubernetes).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsiAccess {
    /// The cluster's fsid: the `clusterID` of StorageClasses.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// A ceph.conf naming the cluster and its mons (no secret).
    pub ceph_conf: String,
    pub drivers: Vec<CsiDriverCredentials>,
}

/// Makes (or finds) one Ceph user per CSI driver, with the narrowest caps that driver needs (never
/// client.admin), and answers with their keys, the cluster's fsid and a ceph.conf naming its mons.
/// Idempotent: asking again answers the same keys.
#[utoipa::path(post, path = "/v1/csi/access", tag = "csi",
    responses(
        (status = 200, body = CsiAccess),
        (status = "5XX", body = ErrorBody),
    ))]
async fn csi_access(State(shared): State<Arc<Shared>>) -> ApiResult<Json<CsiAccess>> {
    let layout = shared.layout.clone();
    let access = on_ceph(&shared, move |rados| {
        let state = rookery_orchestrator::ClusterState::load(&layout)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .ok_or_else(|| ApiError::internal("the data dir holds no cluster state".into()))?;
        rookery_orchestrator::external::csi_access(rados, &state).map_err(|e| {
            ApiError::new(
                ceph_status(e.is_unreachable()),
                "ceph_failed",
                None,
                format!("making the CSI drivers' Ceph users: {e}"),
            )
        })
    })
    .await?;
    Ok(Json(CsiAccess {
        cluster_id: access.fsid.clone(),
        ceph_conf: access.ceph_conf(),
        drivers: access
            .drivers
            .into_iter()
            .map(|d| CsiDriverCredentials {
                driver: d.driver.into(),
                user_id: d.user.into(),
                user_key: d.key,
            })
            .collect(),
    }))
}

/// The answer of `POST /v1/shutdown`, sent once every daemon is stopped.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stopped {
    pub stopped: bool,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rookery control API",
        version = "1",
        description = "Served by the supervisor on the cluster's unix socket (`<data dir>/rookery.sock`, 0600). \
Every error is an ErrorBody: 400 bad input or a refusal, 404 missing, 409 a conflict or a refusal that \
names what blocks it, 503 Ceph does not answer, 500 otherwise.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::supervisor::ping,
        crate::supervisor::status,
        crate::supervisor::shutdown,
        openapi,
        history,
        events,
        list_fs_mounts,
        list_pools,
        retire_osd,
        retry_daemon,
        csi_access,
        crate::hosts_api::add_host,
        crate::hosts_api::list_hosts,
        crate::hosts_api::remove_host,
        apply,
        delete_resources,
        list_volumes,
        volume_info,
        create_volume,
        resize_volume,
        clone_volume,
        flatten_volume,
        create_snapshot,
        remove_snapshot,
        remove_volume,
        list_subvolumes,
        create_subvolume,
        subvolume_info,
        resize_subvolume,
        remove_subvolume,
        list_users,
        user_info,
        list_buckets,
        create_bucket,
        remove_bucket
    ),
    components(schemas(ErrorBody, Holder, MountRecord, SnapshotInfo))
)]
pub struct ApiDoc;

/// The document as served and as committed in `docs/openapi.json`.
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` is what the code generates; `ROOKERY_WRITE_OPENAPI=1` rewrites it.
    #[test]
    fn committed_openapi_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let generated = openapi_json();
        if std::env::var_os("ROOKERY_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} differs from the document the code generates; regenerate it with \
             `ROOKERY_WRITE_OPENAPI=1 cargo test -p rookery committed_openapi` and commit it",
            path.display()
        );
    }

    #[test]
    fn errors_map_to_status_and_code() {
        let e = ApiError::from(VolumeError::NotFound("there is no volume".into()));
        assert_eq!(
            (e.status, e.body.code.as_str()),
            (StatusCode::NOT_FOUND, "not_found")
        );
        let e = ApiError::from(VolumeError::Invalid {
            field: "size",
            message: "too small".into(),
        });
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.field.as_deref(), Some("size"));
        assert_eq!(e.body.message, "too small");
        let e = ApiError::from(VolumeError::InUse("volume v has snapshots: s".into()));
        assert_eq!(
            (e.status, e.body.code.as_str()),
            (StatusCode::CONFLICT, "in_use")
        );
        let e = ApiError::from(ObjectStoreError::BucketExists {
            bucket: "b".into(),
            owner: "bob".into(),
        });
        assert_eq!(
            (e.status, e.body.code.as_str()),
            (StatusCode::CONFLICT, "bucket_exists")
        );
        let e = ApiError::from(ObjectStoreError::NoUser {
            store: "s".into(),
            user: "u".into(),
        });
        assert_eq!(
            (e.status, e.body.code.as_str()),
            (StatusCode::NOT_FOUND, "no_such_user")
        );
        let e = ApiError::from(objects::validate_bucket_name("No_Good").unwrap_err());
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.field.as_deref(), Some("bucket"));
        let e = ApiError::from(VolumeError::NotAClone("volume v is not a clone".into()));
        assert_eq!(
            (e.status, e.body.code.as_str()),
            (StatusCode::CONFLICT, "not_a_clone")
        );
    }
}
