//! Hosts joining a cluster, the member's side: `rookery host add NAME` issues a one-time token
//! ([`issue`]), and a joining host that presents it over the member's TLS channel is admitted
//! ([`admit`]): the token's record is redeemed (removed), the host gets a Ceph user of its own, and it
//! is recorded as a member. Membership lives in the mons' config-key store (`rookery/hosts/<name>`), so
//! every member can answer who belongs.
//!
//! The decisions are pure (`join_token`); this module is their I/O against Ceph.

use std::net::{IpAddr, SocketAddr};

use rookery_ceph::commands::{auth, config_key};
use rookery_ceph::{CephError, Rados};
use serde::{Deserialize, Serialize};

use crate::join_token::{self, IssuedToken, JoinToken, TokenError};
use crate::state::{ClusterState, MonRecord};

/// Where members are recorded, one key per host.
const MEMBERS: &str = "rookery/hosts/";

/// A host of the cluster, as recorded in Ceph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Member {
    pub name: String,
    #[schema(value_type = String)]
    pub address: IpAddr,
    /// The port it answers joining hosts on.
    pub join_port: u16,
    pub joined_unix: u64,
    /// The Ceph user it acts as (`admin` for the host that made the cluster).
    pub user: String,
}

/// What a joining host is given once admitted: enough to reach the mons as its own user and to run its
/// daemons, and nothing more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The cluster's name (the CephCluster's metadata.name).
    pub name: String,
    pub fsid: String,
    pub mons: Vec<MonRecord>,
    /// Its Ceph user, without `client.`.
    pub user: String,
    pub key: String,
    /// The cluster's spec, as the admitting member applies it.
    pub spec: String,
}

/// What a joining host sends over the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: JoinToken,
    /// Where the joining host serves.
    pub address: IpAddr,
    pub join_port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(
        "host {0} is a member of this cluster already; `rookery host rm {0}` removes it first"
    )]
    AlreadyMember(String),
    #[error("this cluster runs on this host's loopback only, so no other host can reach it; a cluster over several hosts is made with `rookery up --address IP`")]
    LoopbackOnly,
    #[error("address {0} is another member's already")]
    AddressTaken(IpAddr),
    #[error(transparent)]
    Ceph(#[from] CephError),
    #[error("the record {key} is damaged: {detail}")]
    Corrupt { key: String, detail: String },
}

impl JoinError {
    /// Whether the joining side gave something wrong (exit 2 there) rather than something failing.
    pub fn bad_input(&self) -> bool {
        !matches!(self, JoinError::Ceph(_) | JoinError::Corrupt { .. })
    }

    pub fn code(&self) -> &'static str {
        match self {
            JoinError::Token(TokenError::Expired { .. }) => "token_expired",
            JoinError::Token(TokenError::Unknown { .. }) => "token_unknown",
            JoinError::Token(_) => "bad_token",
            JoinError::AlreadyMember(_) => "already_member",
            JoinError::LoopbackOnly => "loopback_only",
            JoinError::AddressTaken(_) => "address_taken",
            JoinError::Ceph(_) => "ceph_unavailable",
            JoinError::Corrupt { .. } => "corrupt_record",
        }
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(r: &Rados, key: &str) -> Result<Option<T>, JoinError> {
    match config_key::get(r, key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| JoinError::Corrupt {
                key: key.to_string(),
                detail: e.to_string(),
            }),
    }
}

fn write_json<T: Serialize>(r: &Rados, key: &str, value: &T) -> Result<(), JoinError> {
    let bytes = serde_json::to_vec(value).map_err(|e| JoinError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })?;
    config_key::set(r, key, &bytes)?;
    Ok(())
}

/// The cluster's hosts, by name.
pub fn members(r: &Rados) -> Result<Vec<Member>, JoinError> {
    let mut out = Vec::new();
    for (key, value) in config_key::dump(r, MEMBERS)? {
        let m: Member = serde_json::from_str(&value).map_err(|e| JoinError::Corrupt {
            key,
            detail: e.to_string(),
        })?;
        out.push(m);
    }
    out.sort_by(|a, b| (a.joined_unix, &a.name).cmp(&(b.joined_unix, &b.name)));
    Ok(out)
}

/// Where mons placed on joined hosts are recorded, one key per mon.
const MON_PLACEMENTS: &str = "rookery/mons/";

#[derive(Serialize, Deserialize)]
struct MonPlacement {
    host: String,
}

/// Where daemons spread over joined hosts (standby mgrs, MDS daemons, extra gateways) are recorded: one
/// key per host and daemon, `rookery/daemons/<host>/<daemon>`, so a gateway may run on several hosts.
const DAEMON_PLACEMENTS: &str = "rookery/daemons/";

fn placements(
    r: &Rados,
    prefix: &str,
) -> Result<std::collections::BTreeMap<String, String>, JoinError> {
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in config_key::dump(r, prefix)? {
        let p: MonPlacement = serde_json::from_str(&value).map_err(|e| JoinError::Corrupt {
            key: key.clone(),
            detail: e.to_string(),
        })?;
        if let Some(id) = key.strip_prefix(prefix) {
            out.insert(id.to_string(), p.host);
        }
    }
    Ok(out)
}

/// Mons placed on hosts that joined: id -> host.
pub fn mon_placements(r: &Rados) -> Result<std::collections::BTreeMap<String, String>, JoinError> {
    placements(r, MON_PLACEMENTS)
}

/// Daemons placed on hosts that joined: daemon (`mgr.b`, `mds.myfs-b`, `rgw.s3`) -> hosts.
pub fn daemon_placements(r: &Rados) -> Result<crate::plan::Placements, JoinError> {
    let mut out = crate::plan::Placements::new();
    for (key, _) in config_key::dump(r, DAEMON_PLACEMENTS)? {
        let placed = key
            .strip_prefix(DAEMON_PLACEMENTS)
            .and_then(|rest| rest.split_once('/'));
        if let Some((host, daemon)) = placed {
            out.entry(daemon.to_string())
                .or_default()
                .insert(host.to_string());
        }
    }
    Ok(out)
}

/// Places `daemon` on `host`; that host's supervisor makes its key and runs it.
pub fn place_daemon(r: &Rados, daemon: &str, host: &str) -> Result<(), JoinError> {
    config_key::set(r, &format!("{DAEMON_PLACEMENTS}{host}/{daemon}"), b"{}")?;
    Ok(())
}

/// Takes `daemon` off `host`; that host's supervisor stops it.
pub fn unplace_daemon(r: &Rados, daemon: &str, host: &str) -> Result<(), JoinError> {
    config_key::rm(r, &format!("{DAEMON_PLACEMENTS}{host}/{daemon}"))?;
    Ok(())
}

/// Forgets where mon `id` was placed (it was replaced).
pub fn unplace_mon(r: &Rados, id: &str) -> Result<(), JoinError> {
    config_key::rm(r, &format!("{MON_PLACEMENTS}{id}"))?;
    Ok(())
}

/// Places mon `id` on `host`; that host's supervisor makes it.
pub fn place_mon(r: &Rados, id: &str, host: &str) -> Result<(), JoinError> {
    write_json(
        r,
        &format!("{MON_PLACEMENTS}{id}"),
        &MonPlacement {
            host: host.to_string(),
        },
    )
}

/// Records `member` (idempotent: the same host again replaces its record).
pub fn record_member(r: &Rados, member: &Member) -> Result<(), JoinError> {
    write_json(r, &format!("{MEMBERS}{}", member.name), member)
}

/// The Ceph user a joined host acts as.
pub fn host_user(host: &str) -> String {
    format!("rookery-host-{host}")
}

/// The caps of a joined host's user: it registers and runs its own daemons (OSDs, and mons and
/// managers when placed there), which takes the mons' full trust; it is its own user so that
/// `host rm` revokes exactly this host.
const HOST_CAPS: [(&str, &str); 4] = [
    ("mon", "allow *"),
    ("mgr", "allow *"),
    ("osd", "allow *"),
    ("mds", "allow *"),
];

/// The member that issues a token: it serves joins at `at` with the certificate whose SHA-256 is
/// `fingerprint`.
pub struct Issuer<'a> {
    pub name: &'a str,
    pub at: SocketAddr,
    pub fingerprint: &'a str,
}

/// A token for `host`, valid for `valid_secs`, and when it expires. Only the secret's digest is kept.
pub fn issue(
    r: &Rados,
    state: &ClusterState,
    issuer: &Issuer<'_>,
    host: &str,
    valid_secs: u64,
    now_unix: u64,
) -> Result<(JoinToken, u64), JoinError> {
    let at = issuer.at;
    if at.ip().is_loopback() {
        return Err(JoinError::LoopbackOnly);
    }
    if members(r)?.iter().any(|m| m.name == host) {
        return Err(JoinError::AlreadyMember(host.to_string()));
    }
    forget_expired(r, now_unix)?;
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| CephError::Reply {
        command: "join token".into(),
        detail: format!("no random bytes: {e}"),
    })?;
    let token = JoinToken::new(&state.fsid, host, vec![at], issuer.fingerprint, secret);
    let expires_unix = now_unix + valid_secs;
    let record = IssuedToken {
        host: host.to_string(),
        expires_unix,
        issuer: issuer.name.to_string(),
    };
    write_json(r, &token.record_key(), &record)?;
    Ok((token, expires_unix))
}

/// Removes the records of tokens that expired, so the store keeps only live ones.
fn forget_expired(r: &Rados, now_unix: u64) -> Result<(), JoinError> {
    for key in config_key::ls(r, join_token::RECORDS)? {
        let expired = match read_json::<IssuedToken>(r, &key) {
            Ok(Some(t)) => now_unix >= t.expires_unix,
            Ok(None) => false,
            Err(JoinError::Corrupt { .. }) => true,
            Err(e) => return Err(e),
        };
        if expired {
            config_key::rm(r, &key)?;
        }
    }
    Ok(())
}

/// Admits the host presenting `request`: redeems the token (its record removed before anything is
/// given, so it works once), makes the host's own Ceph user afresh (a key left by an earlier member of
/// that name is never handed on), and records it as a member.
pub fn admit(
    r: &Rados,
    state: &ClusterState,
    spec: &str,
    request: &JoinRequest,
    now_unix: u64,
) -> Result<Grant, JoinError> {
    let token = &request.token;
    if token.cluster != state.fsid {
        return Err(TokenError::Unknown {
            host: token.host.clone(),
        }
        .into());
    }
    join_token::check_host_name(&token.host)
        .map_err(|e| JoinError::Token(TokenError::Damaged(e)))?;
    let key = token.record_key();
    let issued: Option<IssuedToken> = read_json(r, &key)?;
    join_token::redeem(issued.as_ref(), token, now_unix)?;
    let current = members(r)?;
    if current.iter().any(|m| m.name == token.host) {
        return Err(JoinError::AlreadyMember(token.host.clone()));
    }
    if current.iter().any(|m| m.address == request.address)
        || state.mons.iter().any(|m| m.address == request.address)
    {
        return Err(JoinError::AddressTaken(request.address));
    }
    config_key::rm(r, &key)?;
    // A host removed before joins afresh.
    config_key::rm(r, &format!("{REMOVALS}{}", token.host))?;
    let user = host_user(&token.host);
    let entity = format!("client.{user}");
    auth::rm(r, &entity)?;
    let key = auth::get_or_create(r, &entity, &HOST_CAPS)?;
    record_member(
        r,
        &Member {
            name: token.host.clone(),
            address: request.address,
            join_port: request.join_port,
            joined_unix: now_unix,
            user: user.clone(),
        },
    )?;
    Ok(Grant {
        name: state.name.clone(),
        fsid: state.fsid.clone(),
        mons: state.mons.clone(),
        user,
        key,
        spec: spec.to_string(),
    })
}

/// The cluster's spec as the leading host applies it; the other hosts follow it.
const SPEC: &str = "rookery/spec";

pub fn published_spec(r: &Rados) -> Result<Option<String>, JoinError> {
    Ok(config_key::get(r, SPEC)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

pub fn publish_spec(r: &Rados, text: &str) -> Result<(), JoinError> {
    config_key::set(r, SPEC, text.as_bytes())?;
    Ok(())
}

/// Which host leads the cluster-wide work (see [`crate::leadership`]).
const LEADER: &str = "rookery/leader";

pub fn leader(r: &Rados) -> Result<Option<crate::leadership::LeaderRecord>, JoinError> {
    read_json(r, LEADER)
}

pub fn write_leader(r: &Rados, record: &crate::leadership::LeaderRecord) -> Result<(), JoinError> {
    write_json(r, LEADER, record)
}

/// Where removals under way are recorded, one key per host.
const REMOVALS: &str = "rookery/removals/";

/// `rookery host rm NAME`: recorded in Ceph, carried out by the leading host (and, for
/// its own daemons, by the host itself while it runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostRemoval {
    pub host: String,
    /// Purge its OSDs without waiting for their data to be safe elsewhere.
    pub force: bool,
    pub requested_unix: u64,
    /// Carried out: the record stays (until the host joins again) so that the host, if it still runs,
    /// knows it was removed and makes nothing more.
    #[serde(default)]
    pub done: bool,
}

/// Removals under way, by host.
pub fn removals(r: &Rados) -> Result<std::collections::BTreeMap<String, HostRemoval>, JoinError> {
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in config_key::dump(r, REMOVALS)? {
        let removal: HostRemoval =
            serde_json::from_str(&value).map_err(|e| JoinError::Corrupt {
                key,
                detail: e.to_string(),
            })?;
        out.insert(removal.host.clone(), removal);
    }
    Ok(out)
}

pub fn request_removal(r: &Rados, removal: &HostRemoval) -> Result<(), JoinError> {
    write_json(r, &format!("{REMOVALS}{}", removal.host), removal)
}

/// The last of a removal, once the host holds no OSD and no mon: its mons' placements, its empty CRUSH
/// bucket, its Ceph user (so it can do nothing more), its member record and the request go.
pub fn finish_removal(r: &Rados, host: &str) -> Result<(), JoinError> {
    for (id, placed) in placements(r, MON_PLACEMENTS)? {
        if placed == host {
            config_key::rm(r, &format!("{MON_PLACEMENTS}{id}"))?;
        }
    }
    for (daemon, hosts) in daemon_placements(r)? {
        if hosts.contains(host) {
            unplace_daemon(r, &daemon, host)?;
        }
    }
    rookery_ceph::commands::osd::crush_rm(r, host)?;
    auth::rm(r, &format!("client.{}", host_user(host)))?;
    config_key::rm(r, &format!("{MEMBERS}{host}"))?;
    if let Some(mut removal) = removals(r)?.remove(host) {
        removal.done = true;
        request_removal(r, &removal)?;
    }
    Ok(())
}

/// Why a `host rm` did not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(transparent)]
    Refused(#[from] crate::planners::hosts::RemovalRefused),
    #[error(transparent)]
    Join(#[from] JoinError),
}

impl From<CephError> for RemoveError {
    fn from(e: CephError) -> RemoveError {
        RemoveError::Join(JoinError::Ceph(e))
    }
}

/// Checks that `host` may leave (see [`crate::planners::hosts::check_removal`]) and records the
/// request, which the reconcilers carry out. Asked again while under way, it answers the request as
/// recorded.
pub fn remove_host(
    r: &Rados,
    host: &str,
    force: bool,
    now_unix: u64,
) -> Result<HostRemoval, RemoveError> {
    use crate::planners::hosts::{check_removal, OsdFact, RemovalFacts};
    use rookery_ceph::commands::{cluster, osd};
    if let Some(mut existing) = removals(r)?.remove(host).filter(|e| !e.done) {
        // Asked again with --force for a removal stuck waiting on data that will not come back.
        if force && !existing.force {
            existing.force = true;
            request_removal(r, &existing)?;
        }
        return Ok(existing);
    }
    let members = members(r)?;
    // The host that made the cluster acts as client.admin; mons not placed elsewhere are its own.
    let first = members
        .iter()
        .find(|m| m.user == "admin")
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let placements = mon_placements(r)?;
    let quorum: Vec<String> = cluster::mon_stat(r)?
        .quorum
        .into_iter()
        .map(|m| m.name)
        .collect();
    let mons = cluster::mon_dump(r)?
        .mons
        .into_iter()
        .map(|m| {
            let on = placements
                .get(&m.name)
                .cloned()
                .unwrap_or_else(|| first.clone());
            let in_quorum = quorum.contains(&m.name);
            (m.name, on, in_quorum)
        })
        .collect();
    let tree = osd::tree(r)?.hosts();
    let dump = osd::dump(r)?;
    let df = osd::df(r)?;
    let osds = dump
        .osds
        .iter()
        .map(|o| {
            let usage = df.nodes.iter().find(|n| n.id == i64::from(o.osd));
            OsdFact {
                id: o.osd,
                host: tree
                    .iter()
                    .find(|(_, ids)| ids.contains(&o.osd))
                    .map(|(h, _)| h.clone())
                    .unwrap_or_default(),
                serving: o.up == 1 && o.in_ == 1,
                size_bytes: usage.map_or(0, |u| u.kb * 1024),
                used_bytes: usage.map_or(0, |u| u.kb_used * 1024),
            }
        })
        .collect();
    let facts = RemovalFacts {
        members: members.iter().map(|m| m.name.clone()).collect(),
        mons,
        osds,
        largest_pool: dump.pools.iter().map(|p| p.size).max().unwrap_or(0),
    };
    check_removal(&facts, host, force)?;
    let removal = HostRemoval {
        host: host.to_string(),
        force,
        requested_unix: now_unix,
        done: false,
    };
    request_removal(r, &removal)?;
    Ok(removal)
}
