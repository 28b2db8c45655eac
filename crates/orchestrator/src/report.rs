//! What `rookery status` shows, gathered natively, with health explained in plain words. Built by the
//! supervisor for its API, and by the CLI itself when no supervisor answers.

use std::collections::BTreeMap;

use rookery_ceph::commands::{cluster, fs, mgr, osd};
use rookery_ceph::types::{FsDump, Status};
use rookery_ceph::Rados;
use rookery_platform::DaemonStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::state::ClusterState;

/// The cluster as `rookery status` shows it (`GET /v1/status`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ClusterReport {
    pub name: String,
    pub fsid: String,
    pub data_dir: String,
    /// The supervisor that answered; null when the CLI gathered the report itself.
    pub supervisor: Option<SupervisorInfo>,
    /// HEALTH_OK, every OSD up and in, every PG active+clean, and (with a supervisor) the spec carried
    /// out.
    pub ready: bool,
    /// Why not ready, in plain words.
    pub not_ready: Vec<String>,
    pub daemons: Vec<DaemonStatus>,
    /// What Ceph reports; null when it could not be asked (`ceph_error` says why).
    pub ceph: Option<CephReport>,
    /// Why Ceph could not be asked, when it could not.
    pub ceph_error: Option<String>,
    /// What the supervisor's reconciler last did; null without a supervisor.
    pub reconcile: Option<ReconcileInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SupervisorInfo {
    pub pid: u32,
    pub rss_bytes: u64,
    pub uptime_secs: u64,
    pub version: String,
    /// Where `/metrics` is served over TCP (loopback only), when asked for with `--metrics-port`.
    #[serde(default)]
    pub metrics_address: Option<String>,
    /// Where the web dashboard is served (loopback only), when asked for with `--dashboard-port`.
    #[serde(default)]
    pub dashboard_address: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ReconcileInfo {
    /// The digest (`orchestrator::spec_digest`) of the spec text the last pass reconciled to.
    pub spec_digest: String,
    /// Nothing is left to do for that spec.
    pub converged: bool,
    /// The steps still to do, each with its reason.
    pub pending: Vec<String>,
    /// What the reconciler waits for before it can go on.
    pub waiting: Option<String>,
    /// Differences from the spec that rookery refuses to carry out, and why.
    pub blocked: Vec<String>,
    pub last_error: Option<String>,
    pub notices: Vec<String>,
    /// The last few things the reconciler did.
    pub recent: Vec<crate::Event>,
    /// What the spec's device selection makes of each device of the host (empty: it selects none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<crate::disks::DevicePlan>,
    /// What needs a person (a dead OSD), with the command that deals with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// OSDs on their way out (`osd rm`, `osd replace`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring: Vec<crate::planners::retire::Retiring>,
    /// Hosts on their way out (`host rm`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaving: Vec<crate::planners::hosts::Leaving>,
    /// The host that carries out the cluster-wide work (a cluster over several hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
}

impl ReconcileInfo {
    /// The supervisor has finished with the spec whose text has `digest`: nothing is left to do, or
    /// what is left cannot be done (and `blocked` says why).
    pub fn settled_on(&self, digest: &str) -> bool {
        self.spec_digest == digest && (self.converged || !self.blocked.is_empty())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CephReport {
    /// `HEALTH_OK`, `HEALTH_WARN` or `HEALTH_ERR`.
    pub health: String,
    pub checks: Vec<CheckReport>,
    pub mons: Vec<MonReport>,
    pub mgr: MgrReport,
    pub osds: Vec<OsdReport>,
    pub pools: Vec<PoolReport>,
    pub capacity: Capacity,
    pub pgs: PgReport,
    #[serde(default)]
    pub activity: Activity,
    #[serde(default)]
    pub filesystems: Vec<FsReport>,
    #[serde(default)]
    pub object_stores: Vec<StoreReport>,
    /// The hosts of a cluster over several hosts (empty for a cluster of one host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostReport>,
}

/// One host of the cluster and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    /// `up` (every daemon it holds is up), `degraded` (some are not), `down` (none is).
    pub state: String,
    pub mons: Vec<String>,
    /// Its mons not in quorum.
    pub mons_out: Vec<String>,
    pub osds: Vec<u32>,
    pub osds_down: Vec<u32>,
}

/// The hosts as their daemons say: each member's mons (by address) and OSDs (by CRUSH host bucket).
pub fn hosts_report(
    members: &[crate::join::Member],
    crush_hosts: &[(String, Vec<u32>)],
    mons: &[(String, std::net::IpAddr, bool)],
    osds_up: &BTreeMap<u32, bool>,
) -> Vec<HostReport> {
    members
        .iter()
        .map(|m| {
            let own_mons: Vec<&(String, std::net::IpAddr, bool)> =
                mons.iter().filter(|(_, a, _)| *a == m.address).collect();
            let osds = crush_hosts
                .iter()
                .find(|(h, _)| *h == m.name)
                .map(|(_, o)| o.clone())
                .unwrap_or_default();
            let osds_down: Vec<u32> = osds
                .iter()
                .copied()
                .filter(|id| !osds_up.get(id).copied().unwrap_or(false))
                .collect();
            let mons_out: Vec<String> = own_mons
                .iter()
                .filter(|(_, _, q)| !q)
                .map(|(n, _, _)| n.clone())
                .collect();
            let held = own_mons.len() + osds.len();
            let down = mons_out.len() + osds_down.len();
            let state = if down == 0 {
                "up"
            } else if down == held {
                "down"
            } else {
                "degraded"
            };
            HostReport {
                name: m.name.clone(),
                address: m.address.to_string(),
                state: state.into(),
                mons: own_mons.iter().map(|(n, _, _)| n.clone()).collect(),
                mons_out,
                osds,
                osds_down,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct FsReport {
    pub name: String,
    pub max_mds: u32,
    /// Each MDS serving this filesystem and its state (`up:active`, `up:standby-replay`).
    pub mds: Vec<MdsReport>,
    /// MDS daemons waiting for any filesystem.
    pub standbys: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MdsReport {
    pub name: String,
    pub state: String,
    pub rank: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct StoreReport {
    pub name: String,
    /// Where S3 clients connect, from the gateway's own registration.
    pub endpoint: String,
    /// An HTTP request to the endpoint was answered just now.
    #[serde(default)]
    pub responding: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CheckReport {
    pub code: String,
    pub severity: String,
    pub message: String,
    /// What it means and what to do.
    pub explanation: String,
    /// What the check is about, for the checks where the summary does not say (which pool or OSD is
    /// full, and the volumes in a full pool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// rookery's own check (not Ceph's): volumes over-committed past their pool's quota.
pub const OVER_QUOTA: &str = "VOLUME_OVER_QUOTA";

/// The volumes of `pool` larger than its quota, each with the figures (headers read, no image opened).
fn over_quota(r: &Rados, pool: &str, quota: u64) -> Vec<String> {
    let Ok(io) = r.ioctx(pool) else {
        return Vec::new();
    };
    rookery_ceph::rbd_objects::sizes(&io)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, size)| *size > quota)
        .map(|(name, size)| {
            format!(
                "volume {pool}/{name} is {} MiB; the quota of pool {pool} is {} MiB",
                size >> 20,
                quota >> 20
            )
        })
        .collect()
}

/// Checks whose summary names no pool or OSD ("1 pool(s) full"): their details are asked for.
const DETAILED_CHECKS: &[&str] = &[
    "POOL_FULL",
    "POOL_NEAR_FULL",
    "POOL_NEARFULL",
    "POOL_BACKFILLFULL",
    "OSD_FULL",
    "OSD_NEARFULL",
    "OSD_BACKFILLFULL",
];

/// The pool a health detail line names (`pool 'replicapool' is full (running out of quota)`).
fn pool_named(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("pool '")?;
    rest.split_once('\'').map(|(name, _)| name)
}

/// The lines of a full pool check, and the volumes the pool holds (a few named, the rest counted).
fn detail_lines(lines: &[String], volumes_of: &dyn Fn(&str) -> Option<Vec<String>>) -> Vec<String> {
    let mut out = lines.to_vec();
    for line in lines {
        let Some(pool) = pool_named(line) else {
            continue;
        };
        match volumes_of(pool) {
            Some(v) if v.is_empty() => {}
            Some(v) => {
                const SHOWN: usize = 10;
                let more = v.len().saturating_sub(SHOWN);
                let named = v.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
                out.push(if more > 0 {
                    format!("volumes in pool {pool}: {named} and {more} more")
                } else {
                    format!("volumes in pool {pool}: {named}")
                });
            }
            None => {}
        }
    }
    out
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MonReport {
    pub name: String,
    pub address: String,
    pub in_quorum: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MgrReport {
    pub active: String,
    pub available: bool,
    pub standbys: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OsdReport {
    pub id: u32,
    pub up: bool,
    #[serde(rename = "in")]
    pub in_: bool,
    pub host: String,
    pub backing: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    /// The instance the OSD map has for this OSD (its address nonce): after a host restart the map
    /// still shows the OSDs of before as up until the new instances announce themselves.
    #[serde(default)]
    pub map_nonce: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PoolReport {
    pub name: String,
    pub size: u32,
    pub min_size: u32,
    pub pg_num: u32,
    pub applications: Vec<String>,
    pub stored_bytes: u64,
    pub objects: u64,
    /// What the pool can still take, after its copies (Ceph's estimate from the fullest OSD).
    #[serde(default)]
    pub max_avail_bytes: u64,
    /// How full the pool is, 0 to 1: of its quota when it has one and that is the nearer limit, else
    /// of what its OSDs can hold.
    #[serde(default)]
    pub used_ratio: f64,
    /// 0 when the pool has no quota.
    #[serde(default)]
    pub quota_bytes: u64,
    /// Client operations and bytes since the pool was made.
    #[serde(default)]
    pub io: IoCounts,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct IoCounts {
    pub read_ops: u64,
    pub read_bytes: u64,
    pub write_ops: u64,
    pub write_bytes: u64,
}

/// Client I/O and recovery across the cluster over the last few seconds, as the mgr measures it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Activity {
    pub read_bytes_per_sec: u64,
    pub write_bytes_per_sec: u64,
    pub read_ops_per_sec: u64,
    pub write_ops_per_sec: u64,
    /// Object copies missing (degraded) or on the wrong OSDs (misplaced): 0 when all is clean.
    pub degraded_objects: u64,
    pub misplaced_objects: u64,
    pub recovering_objects_per_sec: u64,
    pub recovering_bytes_per_sec: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Capacity {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub avail_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PgReport {
    pub total: u32,
    /// How many PGs are in each state, by Ceph's state name (`active+clean`, ...).
    pub by_state: BTreeMap<String, u32>,
}

/// Plain-language meaning of Ceph's health check codes, and what to do.
pub fn explain(code: &str) -> &'static str {
    match code {
        "OSD_DOWN" => "an OSD process is not running or not answering; the supervisor restarts it (see `rookery status` daemons); if it keeps dying, read log/osd.N.stdout in the data dir",
        "OSD_HOST_DOWN" | "OSD_ROOT_DOWN" => "all OSDs of a host are down; check that the supervisor runs (`rookery up` starts it again)",
        "PG_AVAILABILITY" => "some data cannot be read or written right now, usually while OSDs start or peer; it clears by itself within seconds once all OSDs are up",
        "PG_DEGRADED" => "some data has fewer copies than the pool wants, usually because an OSD is down; it heals by itself when the OSD returns",
        "MON_DOWN" => "a mon is not in quorum; the supervisor restarts it",
        "MGR_DOWN" => "no mgr is active, so statistics are stale; the supervisor restarts it",
        "TOO_FEW_OSDS" => "a pool wants more copies than there are OSDs; add OSDs (spec.storage.osdFiles.count) or lower the pool's replicated.size",
        "OSD_NEARFULL" | "OSD_FULL" | "OSD_BACKFILLFULL" => "an OSD is almost full; delete data or add OSDs",
        "POOL_NEAR_FULL" | "POOL_NEARFULL" | "POOL_FULL" => "a pool (named below) is at or near its quota (85%), or its OSDs are near full: volumes' file systems refuse new data (ENOSPC) a margin before the pool is full, and other writes stop when it is full; raise the quota (spec.quotas.maxSize), delete volumes or snapshots, or add OSDs",
        OVER_QUOTA => "volumes (named below) were made larger than their pool's quota on purpose (--over-commit): writes to the pool stop once it reaches the quota, whichever volume writes; raise the quota (spec.quotas.maxSize) or shrink the plan",
        "MON_DISK_LOW" | "MON_DISK_CRIT" => "the filesystem of the data dir is almost full; free disk space",
        "SLOW_OPS" => "requests take longer than 30 s, usually a hung OSD or an overloaded disk",
        "RECENT_CRASH" => "a daemon crashed recently; the supervisor restarted it. Its log is in the data dir's log/ folder",
        "POOL_NO_REDUNDANCY" => "a pool keeps only one copy: losing one OSD loses its data; raise replicated.size",
        "POOL_APP_NOT_ENABLED" => "a pool is not tagged with the application that uses it; rookery tags its own pools",
        "OSDMAP_FLAGS" => "cluster-wide flags such as noout are set; they pause recovery or rebalancing",
        "PG_NOT_SCRUBBED" | "PG_NOT_DEEP_SCRUBBED" => "data consistency checks are behind schedule; harmless in the short term",
        "AUTH_INSECURE_GLOBAL_ID_RECLAIM" | "AUTH_INSECURE_GLOBAL_ID_RECLAIM_ALLOWED" => "a client or setting allows insecure reauthentication; upgrade clients",
        _ => "see https://docs.ceph.com/en/latest/rados/operations/health-checks/ for this code",
    }
}

/// Asks Ceph for everything `status` shows: a handful of native calls, each well under a millisecond.
pub fn ceph_report(r: &Rados, state: &ClusterState) -> Result<CephReport, rookery_ceph::CephError> {
    let status = cluster::status(r)?;
    let fs_dump = fs::dump(r).unwrap_or_default();
    let mons = cluster::mon_dump(r)?;
    let dump = osd::dump(r)?;
    let meta = osd::metadata(r).unwrap_or_default();
    let df = cluster::df(r)?;
    // `osd df` is served by the mgr, which may be down; the rest of the report stands without it.
    let osd_df = osd::df(r).unwrap_or_default();
    let mgr = mgr::stat(r)?;

    let mut checks: Vec<CheckReport> = status
        .health
        .checks
        .iter()
        .map(|(code, c)| CheckReport {
            code: code.clone(),
            severity: c.severity.clone(),
            message: c.summary.message.clone(),
            explanation: explain(code).to_string(),
            details: Vec::new(),
        })
        .collect();
    if checks
        .iter()
        .any(|c| DETAILED_CHECKS.contains(&c.code.as_str()))
    {
        let detail = cluster::health_detail(r).unwrap_or_default();
        // Each volume with the claim it serves, so a Kubernetes user sees which claims are affected.
        let volumes_of = |pool: &str| {
            let io = r.ioctx(pool).ok()?;
            let claims = rookery_volumes::index::read(&io)
                .map(|i| i.claims)
                .unwrap_or_default();
            let names = rookery_ceph::rbd_objects::directory(&io, "").ok()?;
            Some(
                names
                    .into_iter()
                    .map(|(name, _)| match claims.get(&name) {
                        Some(claim) => format!("{name} (claim {claim})"),
                        None => name,
                    })
                    .collect(),
            )
        };
        for c in checks
            .iter_mut()
            .filter(|c| DETAILED_CHECKS.contains(&c.code.as_str()))
        {
            let lines: Vec<String> = detail
                .checks
                .get(&c.code)
                .map(|d| d.detail.iter().map(|l| l.message.clone()).collect())
                .unwrap_or_default();
            c.details = detail_lines(&lines, &volumes_of);
        }
    }
    let over: Vec<String> = dump
        .pools
        .iter()
        .filter(|p| p.quota_max_bytes > 0)
        .flat_map(|p| over_quota(r, &p.pool_name, p.quota_max_bytes))
        .collect();
    if !over.is_empty() {
        checks.push(CheckReport {
            code: OVER_QUOTA.into(),
            severity: "HEALTH_WARN".into(),
            message: format!("{} volume(s) larger than their pool's quota", over.len()),
            explanation: explain(OVER_QUOTA).to_string(),
            details: over,
        });
    }
    let osds: Vec<OsdReport> = dump
        .osds
        .iter()
        .map(|o| {
            let df = osd_df.nodes.iter().find(|n| n.id == i64::from(o.osd));
            let m = meta.iter().find(|m| m.id == o.osd);
            let backing = state
                .osds
                .iter()
                .find(|rec| rec.id == Some(o.osd))
                .and_then(|rec| rec.block.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            OsdReport {
                id: o.osd,
                up: o.up == 1,
                in_: o.in_ == 1,
                host: m.map(|m| m.hostname.clone()).unwrap_or_default(),
                backing,
                size_bytes: df
                    .map(|d| d.kb * 1024)
                    .or_else(|| m.and_then(|m| m.bluestore_bdev_size.parse().ok()))
                    .unwrap_or(0),
                used_bytes: df.map(|d| d.kb_used * 1024).unwrap_or(0),
                map_nonce: o.instance_nonce(),
            }
        })
        .collect();
    let pools = dump
        .pools
        .iter()
        .map(|p| {
            let usage = df.pools.iter().find(|d| d.name == p.pool_name);
            PoolReport {
                name: p.pool_name.clone(),
                size: p.size,
                min_size: p.min_size,
                pg_num: p.pg_num,
                applications: p.application_metadata.keys().cloned().collect(),
                stored_bytes: usage.map(|u| u.stats.stored).unwrap_or(0),
                objects: usage.map(|u| u.stats.objects).unwrap_or(0),
                max_avail_bytes: usage.map(|u| u.stats.max_avail).unwrap_or(0),
                used_ratio: usage.map(used_ratio).unwrap_or(0.0),
                quota_bytes: p.quota_max_bytes,
                io: usage
                    .map(|u| IoCounts {
                        read_ops: u.stats.rd,
                        read_bytes: u.stats.rd_bytes,
                        write_ops: u.stats.wr,
                        write_bytes: u.stats.wr_bytes,
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let crush_hosts = osd::tree(r).map(|t| t.hosts()).unwrap_or_default();
    let hosts = match crate::join::members(r) {
        Ok(members) => hosts_report(
            &members,
            &crush_hosts,
            &mons
                .mons
                .iter()
                .filter_map(|m| {
                    let ip = m.public_addrs.of("v2").or(m.public_addrs.of("v1"))?.ip();
                    Some((m.name.clone(), ip, status.quorum_names.contains(&m.name)))
                })
                .collect::<Vec<_>>(),
            &dump.osds.iter().map(|o| (o.osd, o.up == 1)).collect(),
        ),
        Err(e) => {
            tracing::debug!(error = %e, "the members could not be read");
            Vec::new()
        }
    };
    let crush_host = |id: u32| {
        crush_hosts
            .iter()
            .find(|(_, osds)| osds.contains(&id))
            .map(|(h, _)| h.clone())
    };
    let osds: Vec<OsdReport> = osds
        .into_iter()
        .map(|o: OsdReport| OsdReport {
            host: crush_host(o.id).unwrap_or(o.host),
            ..o
        })
        .collect();
    Ok(CephReport {
        health: status.health.status.clone(),
        checks,
        mons: mons
            .mons
            .iter()
            .map(|m| MonReport {
                name: m.name.clone(),
                address: m.public_addr.clone(),
                in_quorum: status.quorum_names.contains(&m.name),
            })
            .collect(),
        mgr: MgrReport {
            active: mgr.active_name,
            available: mgr.available,
            standbys: mgr.num_standby,
        },
        osds,
        pools,
        capacity: Capacity {
            total_bytes: df.stats.total_bytes,
            used_bytes: df.stats.total_used_raw_bytes,
            avail_bytes: df.stats.total_avail_bytes,
        },
        activity: Activity {
            read_bytes_per_sec: status.pgmap.read_bytes_sec,
            write_bytes_per_sec: status.pgmap.write_bytes_sec,
            read_ops_per_sec: status.pgmap.read_op_per_sec,
            write_ops_per_sec: status.pgmap.write_op_per_sec,
            degraded_objects: status.pgmap.degraded_objects,
            misplaced_objects: status.pgmap.misplaced_objects,
            recovering_objects_per_sec: status.pgmap.recovering_objects_per_sec,
            recovering_bytes_per_sec: status.pgmap.recovering_bytes_per_sec,
        },
        filesystems: filesystems(&fs_dump),
        object_stores: object_stores(&status),
        hosts,
        pgs: PgReport {
            total: status.pgmap.num_pgs,
            by_state: status
                .pgmap
                .pgs_by_state
                .iter()
                .map(|s| (s.state_name.clone(), s.count))
                .collect(),
        },
    })
}

/// One volume's I/O rates (the mgr's `rbd perf image stats`) with the claim it serves, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeIo {
    pub claim: String,
    pub io: rookery_ceph::types::ImageIo,
}

/// The I/O of every volume busy in the last few seconds, with their claims from the pools' volume
/// indexes (one omap read per pool with busy volumes).
pub fn volume_io(r: &Rados) -> Result<Vec<VolumeIo>, rookery_ceph::CephError> {
    let images = mgr::rbd_image_stats(r)?.images();
    let mut claims: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut out = Vec::with_capacity(images.len());
    for io in images {
        if !claims.contains_key(&io.pool) {
            let of_pool = r
                .ioctx(&io.pool)
                .ok()
                .and_then(|ctx| rookery_volumes::index::read(&ctx).ok())
                .map(|i| i.claims.into_iter().collect())
                .unwrap_or_default();
            claims.insert(io.pool.clone(), of_pool);
        }
        let claim = claims
            .get(&io.pool)
            .and_then(|c| c.get(&io.image))
            .cloned()
            .unwrap_or_default();
        out.push(VolumeIo { claim, io });
    }
    Ok(out)
}

/// The client I/O counters of every OSD the map has up, asked of the OSDs themselves (`tell osd.N perf
/// dump osd`, 16 at a time); an OSD that does not answer is left out.
pub fn osd_io(
    r: &Rados,
) -> Result<Vec<(u32, rookery_ceph::types::OsdPerfCounters)>, rookery_ceph::CephError> {
    let up: Vec<u32> = osd::dump(r)?
        .osds
        .iter()
        .filter(|o| o.up == 1)
        .map(|o| o.osd)
        .collect();
    let mut out = Vec::with_capacity(up.len());
    for batch in up.chunks(16) {
        std::thread::scope(|scope| {
            let asked: Vec<_> = batch
                .iter()
                .map(|id| (*id, scope.spawn(move || osd::perf(r, *id))))
                .collect();
            for (id, handle) in asked {
                match handle.join() {
                    Ok(Ok(p)) => out.push((id, p.osd)),
                    Ok(Err(e)) => tracing::debug!(osd = id, error = %e, "no I/O counters"),
                    Err(_) => tracing::debug!(osd = id, "asking for I/O counters panicked"),
                }
            }
        });
    }
    Ok(out)
}

/// How full a pool is: Ceph's fraction of what the OSDs can still give it, or of its quota when that
/// is nearer (Ceph's `percent_used` ignores quotas).
fn used_ratio(usage: &rookery_ceph::types::DfPool) -> f64 {
    let s = &usage.stats;
    let of_quota = if s.quota_bytes > 0 {
        s.stored as f64 / s.quota_bytes as f64
    } else {
        0.0
    };
    s.percent_used.max(of_quota).clamp(0.0, 1.0)
}

fn filesystems(dump: &FsDump) -> Vec<FsReport> {
    let standbys: Vec<String> = dump.standbys.iter().map(|m| m.name.clone()).collect();
    let mut out = Vec::new();
    for fs in &dump.filesystems {
        let map = &fs.mdsmap;
        let mut mds: Vec<MdsReport> = map
            .info
            .values()
            .map(|m| MdsReport {
                name: m.name.clone(),
                state: m.state.clone(),
                rank: m.rank,
            })
            .collect();
        mds.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(FsReport {
            name: map.fs_name.clone(),
            max_mds: map.max_mds,
            mds,
            standbys: standbys.clone(),
        });
    }
    out
}

/// Whether `http://ADDRESS:PORT` answers an HTTP request within half a second: a gateway whose process
/// runs but whose frontend hangs is not healthy.
fn answers_http(endpoint: &str) -> bool {
    use std::io::{Read, Write};
    let Some(addr) = endpoint
        .strip_prefix("http://")
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
    else {
        return false;
    };
    let limit = std::time::Duration::from_millis(500);
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, limit) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(limit));
    let _ = s.set_write_timeout(Some(limit));
    let request = format!("HEAD / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// Gateways as they registered in the service map: store (their id) and the endpoint they serve.
fn object_stores(status: &Status) -> Vec<StoreReport> {
    let mut out: Vec<StoreReport> = status
        .servicemap
        .services
        .get("rgw")
        .into_iter()
        .flat_map(|rgw| rgw.daemons.values())
        .filter(|d| !d.metadata.id.is_empty())
        .map(|d| {
            let endpoint = d
                .metadata
                .frontend_config
                .split_whitespace()
                .find_map(|w| w.strip_prefix("endpoint="))
                .map(|e| format!("http://{e}"))
                .unwrap_or_default();
            let responding = answers_http(&endpoint);
            StoreReport {
                name: d.metadata.id.clone(),
                endpoint,
                responding,
            }
        })
        .collect();
    // A restarted gateway registers anew before its old entry expires; one line per store, the live one.
    out.sort_by(|a, b| a.name.cmp(&b.name).then(b.responding.cmp(&a.responding)));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// The OSDs the map shows up whose recorded instance is not the one the platform runs now: all daemons
/// killed at once (a host restart), the mon comes back with a map where every OSD is up, and clients sent
/// there wait until the new instance boots.
/// `is_current` is the platform's answer ([`rookery_platform::Platform::is_current_instance`]).
pub fn stale_in_map(
    ceph: &CephReport,
    is_current: impl Fn(&str, u64) -> Option<bool>,
) -> Vec<String> {
    ceph.osds
        .iter()
        .filter(|o| o.up)
        .filter_map(|o| {
            let name = format!("osd.{}", o.id);
            let current = is_current(&name, o.map_nonce?)?;
            (!current).then_some(name)
        })
        .collect()
}

/// Why the cluster is not ready yet (empty when it is): HEALTH_OK, the expected number of OSDs all up
/// and in, none of them `stale` in the map (see [`stale_in_map`]), a mgr available, PGs present and
/// all active+clean.
pub fn not_ready(ceph: &CephReport, expected_osds: u32, stale: &[String]) -> Vec<String> {
    let mut why = Vec::new();
    if !stale.is_empty() {
        why.push(format!(
            "{} restarted and not yet back in the OSD map",
            stale.join(", ")
        ));
    }
    let up = ceph.osds.iter().filter(|o| o.up).count() as u32;
    let inn = ceph.osds.iter().filter(|o| o.in_).count() as u32;
    if (ceph.osds.len() as u32) < expected_osds {
        why.push(format!(
            "{} of {expected_osds} OSDs created",
            ceph.osds.len()
        ));
    }
    if up < ceph.osds.len() as u32 || inn < ceph.osds.len() as u32 {
        why.push(format!("{up} of {} OSDs up, {inn} in", ceph.osds.len()));
    }
    let out: Vec<&str> = ceph
        .mons
        .iter()
        .filter(|m| !m.in_quorum)
        .map(|m| m.name.as_str())
        .collect();
    if !out.is_empty() {
        why.push(format!("mon {} not in quorum", out.join(", ")));
    }
    if !ceph.mgr.available {
        why.push("no mgr active yet".into());
    }
    if ceph.pgs.total == 0 {
        why.push("no placement groups yet".into());
    } else {
        let clean = ceph.pgs.by_state.get("active+clean").copied().unwrap_or(0);
        if clean < ceph.pgs.total {
            why.push(format!("{clean} of {} PGs active+clean", ceph.pgs.total));
        }
    }
    for st in ceph.object_stores.iter().filter(|s| !s.responding) {
        why.push(format!(
            "object store {} does not answer at {}",
            st.name, st.endpoint
        ));
    }
    if ceph.health != "HEALTH_OK" {
        let codes: Vec<&str> = ceph.checks.iter().map(|c| c.code.as_str()).collect();
        why.push(format!("{} ({})", ceph.health, codes.join(", ")));
    }
    why
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pool_is_as_full_as_its_nearer_limit() {
        let pool = |stored, quota_bytes, percent_used| rookery_ceph::types::DfPool {
            stats: rookery_ceph::types::DfPoolStats {
                stored,
                quota_bytes,
                percent_used,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(super::used_ratio(&pool(10, 0, 0.25)), 0.25);
        assert_eq!(super::used_ratio(&pool(50, 100, 0.25)), 0.5);
        assert_eq!(super::used_ratio(&pool(10, 100, 0.25)), 0.25);
        // Past the quota (written before it was lowered) is still "full", not more.
        assert_eq!(super::used_ratio(&pool(300, 100, 0.25)), 1.0);
    }

    #[test]
    fn a_full_pool_is_named_with_its_volumes() {
        let lines = vec!["pool 'small' is full (running out of quota)".to_string()];
        let many: Vec<String> = (0..12).map(|i| format!("v{i}")).collect();
        let out = super::detail_lines(&lines, &|pool: &str| {
            (pool == "small").then(|| many.clone())
        });
        assert_eq!(out[0], lines[0]);
        assert_eq!(
            out[1],
            "volumes in pool small: v0, v1, v2, v3, v4, v5, v6, v7, v8, v9 and 2 more"
        );
        let osd = vec!["osd.1 is full".to_string()];
        assert_eq!(super::detail_lines(&osd, &|_: &str| None), osd);
        assert_eq!(super::pool_named("pool 'a b' has 5 bytes"), Some("a b"));
    }

    use super::*;

    #[test]
    fn hosts_are_up_degraded_or_down_by_what_they_hold() {
        let member = |name: &str, last: u8| crate::join::Member {
            name: name.into(),
            address: std::net::IpAddr::from([10, 0, 0, last]),
            join_port: 7443,
            joined_unix: 0,
            user: "admin".into(),
        };
        let ip = |last: u8| std::net::IpAddr::from([10, 0, 0, last]);
        let hosts = hosts_report(
            &[member("h1", 1), member("h2", 2), member("h3", 3)],
            &[
                ("h1".into(), vec![0, 1]),
                ("h2".into(), vec![2, 3]),
                ("h3".into(), vec![4]),
            ],
            &[
                ("a".into(), ip(1), true),
                ("b".into(), ip(2), false),
                ("c".into(), ip(3), true),
            ],
            &[(0, true), (1, true), (2, false), (3, false), (4, false)]
                .into_iter()
                .collect(),
        );
        let states: Vec<(&str, &str)> = hosts
            .iter()
            .map(|h| (h.name.as_str(), h.state.as_str()))
            .collect();
        assert_eq!(states, [("h1", "up"), ("h2", "down"), ("h3", "degraded")]);
        assert_eq!(hosts[1].mons_out, ["b"]);
        assert_eq!(hosts[1].osds_down, [2, 3]);
    }

    #[test]
    fn readiness_lists_every_reason() {
        let mut c = CephReport {
            health: "HEALTH_OK".into(),
            ..Default::default()
        };
        c.mgr.available = true;
        c.osds = (0..3)
            .map(|id| OsdReport {
                id,
                up: true,
                in_: true,
                ..Default::default()
            })
            .collect();
        c.pgs = PgReport {
            total: 9,
            by_state: BTreeMap::from([("active+clean".into(), 9)]),
        };
        assert!(not_ready(&c, 3, &[]).is_empty());
        // The map still has the process of before a restart: not ready until the new one is in it.
        c.osds[2].map_nonce = Some(100);
        let running = |instance: u64| {
            move |name: &str, nonce: u64| (name == "osd.2").then_some(nonce == instance)
        };
        assert!(stale_in_map(&c, running(100)).is_empty());
        // A platform that cannot tell (no such daemon) does not hold readiness back.
        assert!(stale_in_map(&c, |_: &str, _: u64| None).is_empty());
        let stale = stale_in_map(&c, running(200));
        assert_eq!(stale, ["osd.2"]);
        let why = not_ready(&c, 3, &stale);
        assert_eq!(why, ["osd.2 restarted and not yet back in the OSD map"]);
        c.osds[2].map_nonce = None;
        assert!(stale_in_map(&c, running(200)).is_empty());
        c.osds[1].up = false;
        c.pgs.by_state = BTreeMap::from([("active+clean".into(), 5), ("peering".into(), 4)]);
        c.health = "HEALTH_WARN".into();
        c.checks.push(CheckReport {
            code: "OSD_DOWN".into(),
            ..Default::default()
        });
        let why = not_ready(&c, 4, &[]);
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(why.iter().any(|w| w.contains("5 of 9 PGs")));
        assert!(why.iter().any(|w| w.contains("OSD_DOWN")));
    }
}
