//! The control API's hosts: `POST /v1/hosts` issues a join token for a new host (`rookery host add`),
//! `GET /v1/hosts` lists the members recorded in Ceph (`rookery host list`). The join itself arrives on
//! the member's TLS channel (`join_channel`), answered by [`admit`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rookery_ceph::Rados;
use rookery_orchestrator::join::{self, Grant, JoinError, JoinRequest, Member};
use rookery_orchestrator::state::{HostPolicy, MemberAddress};
use rookery_orchestrator::{ClusterState, Layout};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::control::{on_ceph, ApiError, ApiResult, ErrorBody};
use crate::join_channel::{self, Refusal};
use crate::supervisor::Shared;

/// How long a token is valid unless the request says otherwise.
const DEFAULT_VALID_SECS: u64 = 3600;
/// The longest a token may be valid.
const MAX_VALID_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddHostBody {
    /// The joining host's name (CRUSH's host bucket; `rookery join --host-name` there).
    pub name: String,
    /// Seconds the token stays valid (default 3600, at most a week).
    #[serde(default)]
    pub valid_secs: Option<u64>,
}

/// A join token for one host.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostToken {
    pub host: String,
    /// The one line `rookery join` takes; it works once.
    pub token: String,
    pub expires_unix: u64,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn join_status(e: &JoinError) -> StatusCode {
    match e {
        JoinError::Ceph(c) if c.is_unreachable() => StatusCode::SERVICE_UNAVAILABLE,
        JoinError::Ceph(_) | JoinError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        JoinError::Token(_) => StatusCode::BAD_REQUEST,
        JoinError::AlreadyMember(_) | JoinError::LoopbackOnly | JoinError::AddressTaken(_) => {
            StatusCode::CONFLICT
        }
    }
}

fn api_error(e: JoinError) -> ApiError {
    ApiError::new(join_status(&e), e.code(), None, e.to_string())
}

fn load_state(layout: &Layout) -> Result<ClusterState, String> {
    ClusterState::load(layout)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the data dir holds no cluster state".to_string())
}

/// This host's own member record.
fn this_member(state: &ClusterState, address: &MemberAddress) -> Member {
    Member {
        name: address.name.clone(),
        address: address.address,
        join_port: address.join_port,
        joined_unix: state.created_unix,
        user: state.ceph_user().to_string(),
    }
}

#[utoipa::path(post, path = "/v1/hosts", tag = "hosts", request_body = AddHostBody,
    responses(
        (status = 201, body = HostToken),
        (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the host is a member already, or this cluster serves on loopback only"),
        (status = "5XX", body = ErrorBody),
    ))]
pub async fn add_host(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<AddHostBody>,
) -> ApiResult<(StatusCode, Json<HostToken>)> {
    rookery_orchestrator::join_token::check_host_name(&body.name).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            Some("name".into()),
            format!("the host name {e}"),
        )
    })?;
    let valid_secs = body.valid_secs.unwrap_or(DEFAULT_VALID_SECS);
    if valid_secs == 0 || valid_secs > MAX_VALID_SECS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            Some("validSecs".into()),
            format!("a token is valid for 1 s to {MAX_VALID_SECS} s (a week), not {valid_secs} s"),
        ));
    }
    let layout = shared.layout.clone();
    let Some(address) = HostPolicy::load(&layout).member else {
        return Err(api_error(JoinError::LoopbackOnly));
    };
    let identity = join_channel::identity(&layout, address.address).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            format!("{e:#}"),
        )
    })?;
    let fingerprint = identity.fingerprint();
    let (token, expires_unix) = on_ceph(&shared, move |rados| {
        let state = load_state(&layout)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", None, e))?;
        join::record_member(rados, &this_member(&state, &address)).map_err(api_error)?;
        let issuer = join::Issuer {
            name: &address.name,
            at: SocketAddr::new(address.address, address.join_port),
            fingerprint: &fingerprint,
        };
        join::issue(rados, &state, &issuer, &body.name, valid_secs, now_unix()).map_err(api_error)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(HostToken {
            host: token.host.clone(),
            token: token.encode(),
            expires_unix,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/hosts", tag = "hosts",
    responses(
        (status = 200, body = Vec<Member>),
        (status = "5XX", body = ErrorBody),
    ))]
pub async fn list_hosts(State(shared): State<Arc<Shared>>) -> ApiResult<Json<Vec<Member>>> {
    let layout = shared.layout.clone();
    let members = on_ceph(&shared, move |rados| {
        let mut members = join::members(rados).map_err(api_error)?;
        // Before the first token, only this host is a member, and it has no record yet.
        if members.is_empty() {
            if let (Ok(state), Some(address)) =
                (load_state(&layout), HostPolicy::load(&layout).member)
            {
                members.push(this_member(&state, &address));
            }
        }
        Ok(members)
    })
    .await?;
    Ok(Json(members))
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveHostBody {
    /// Purge the host's OSDs without waiting for their data to be safe elsewhere (for a host that is
    /// gone for good): objects whose only copies were there are lost.
    #[serde(default)]
    pub force: bool,
}

#[utoipa::path(post, path = "/v1/hosts/{name}/remove", tag = "hosts", request_body = RemoveHostBody,
    params(("name" = String, Path, description = "the host")),
    responses(
        (status = 202, body = join::HostRemoval, description = "the removal is under way (`GET /v1/status` shows it under reconcile.leaving)"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "refused: it would lose quorum, or the rest cannot hold the data"),
        (status = "5XX", body = ErrorBody),
    ))]
pub async fn remove_host(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Json(body): Json<RemoveHostBody>,
) -> ApiResult<(StatusCode, Json<join::HostRemoval>)> {
    let removal = on_ceph(&shared, move |rados| {
        join::remove_host(rados, &name, body.force, now_unix()).map_err(|e| match e {
            join::RemoveError::Refused(r) => {
                let status = if matches!(
                    r,
                    rookery_orchestrator::planners::hosts::RemovalRefused::NotMember(_)
                ) {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::CONFLICT
                };
                ApiError::new(status, r.code(), None, format!("{r} (nothing was changed)"))
            }
            join::RemoveError::Join(j) => api_error(j),
        })
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(removal)))
}

/// One admission at a time: config-key has no compare-and-set, so two connections presenting the same
/// token at once must not both redeem it.
static ADMITTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Admits a joining host (the join channel's decision), on a connection of its own.
pub fn admit(layout: &Layout, request: JoinRequest) -> Result<Grant, Refusal> {
    let failed = |message: String| Refusal {
        code: "internal".into(),
        message,
        bad_input: false,
    };
    let _one = ADMITTING.lock().unwrap_or_else(|p| p.into_inner());
    let state = load_state(layout).map_err(failed)?;
    // Cheap checks before any connection to the mons.
    if request.token.cluster != state.fsid {
        let e = JoinError::Token(rookery_orchestrator::join_token::TokenError::Unknown {
            host: request.token.host.clone(),
        });
        return Err(Refusal {
            code: e.code().to_string(),
            message: e.to_string(),
            bad_input: true,
        });
    }
    if request.address.is_loopback() || request.address.is_unspecified() {
        return Err(Refusal {
            code: "invalid_value".into(),
            message: format!("{} cannot be a host's address: the other hosts must reach it; give the joining host's own address with --address", request.address),
            bad_input: true,
        });
    }
    let spec = std::fs::read_to_string(layout.spec())
        .map_err(|e| failed(format!("reading the cluster's spec: {e}")))?;
    let rados = Rados::connect(
        &layout.conf(),
        state.ceph_user(),
        rookery_orchestrator::CEPH_TIMEOUT,
    )
    .map_err(|e| {
        failed(format!(
            "this member cannot reach the mons now ({e}); try again"
        ))
    })?;
    join::admit(&rados, &state, &spec, &request, now_unix()).map_err(|e| Refusal {
        code: e.code().to_string(),
        message: e.to_string(),
        bad_input: e.bad_input(),
    })
}
