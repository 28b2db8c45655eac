//! Typed replies of the mon and mgr commands rookery uses (Ceph 16+ JSON). Fields we do not read are not
//! declared; every field has a default so a newer Ceph adding or dropping one does not break parsing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `status` (what `ceph -s` shows).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Status {
    pub fsid: String,
    pub health: Health,
    pub quorum_names: Vec<String>,
    pub monmap: MonMapSummary,
    pub osdmap: OsdMapSummary,
    pub pgmap: PgMapSummary,
    pub mgrmap: MgrMapSummary,
    pub servicemap: ServiceMap,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Health {
    pub status: String,
    pub checks: BTreeMap<String, HealthCheck>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HealthCheck {
    pub severity: String,
    pub summary: HealthSummary,
    pub muted: bool,
    /// Only in `health detail`.
    pub detail: Vec<HealthDetail>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HealthDetail {
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HealthSummary {
    pub message: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MonMapSummary {
    pub epoch: u64,
    pub num_mons: u32,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdMapSummary {
    pub epoch: u64,
    pub num_osds: u32,
    pub num_up_osds: u32,
    pub num_in_osds: u32,
    pub num_remapped_pgs: u32,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PgMapSummary {
    pub pgs_by_state: Vec<PgStateCount>,
    pub num_pgs: u32,
    pub num_pools: u32,
    pub num_objects: u64,
    pub data_bytes: u64,
    pub bytes_used: u64,
    pub bytes_avail: u64,
    pub bytes_total: u64,
    /// Client I/O over the last few seconds (absent, so zero, while idle).
    pub read_bytes_sec: u64,
    pub write_bytes_sec: u64,
    pub read_op_per_sec: u64,
    pub write_op_per_sec: u64,
    /// Recovery: object copies missing or misplaced, and how fast they are being made (absent while
    /// everything is clean).
    pub degraded_objects: u64,
    pub misplaced_objects: u64,
    pub recovering_objects_per_sec: u64,
    pub recovering_bytes_per_sec: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PgStateCount {
    pub state_name: String,
    pub count: u32,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MgrMapSummary {
    pub available: bool,
    pub num_standbys: u32,
}

/// The services that registered with the mgr (`status.servicemap`), e.g. `rgw` gateways.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServiceMap {
    pub services: BTreeMap<String, Service>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Service {
    /// By daemon id (a gateway's is its gid). Ceph mixes a `"summary": ""` string into this map, which
    /// is no daemon and is left out.
    #[serde(deserialize_with = "daemons_only")]
    pub daemons: BTreeMap<String, ServiceDaemon>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServiceDaemon {
    pub gid: u64,
    pub metadata: ServiceDaemonMetadata,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServiceDaemonMetadata {
    /// The daemon's name without its type, e.g. the store of a gateway `rgw.<store>`.
    pub id: String,
    /// A gateway's first frontend, e.g. `beast endpoint=127.0.0.1:8080 tcp_nodelay=1`.
    #[serde(rename = "frontend_config#0")]
    pub frontend_config: String,
}

fn daemons_only<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, ServiceDaemon>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Daemon(ServiceDaemon),
        Other(serde::de::IgnoredAny),
    }
    let all = BTreeMap::<String, Entry>::deserialize(d)?;
    Ok(all
        .into_iter()
        .filter_map(|(k, e)| match e {
            Entry::Daemon(daemon) => Some((k, daemon)),
            Entry::Other(_) => None,
        })
        .collect())
}

impl Status {
    /// PGs that are not `active+clean`.
    pub fn unclean_pgs(&self) -> u32 {
        self.pgmap
            .pgs_by_state
            .iter()
            .filter(|s| s.state_name != "active+clean")
            .map(|s| s.count)
            .sum()
    }

    pub fn is_health_ok(&self) -> bool {
        self.health.status == "HEALTH_OK"
    }
}

/// `mon stat`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MonStat {
    pub epoch: u64,
    pub num_mons: u32,
    pub leader: String,
    pub quorum: Vec<MonRank>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MonRank {
    pub rank: i32,
    pub name: String,
}

/// `mon dump`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MonDump {
    pub epoch: u64,
    pub fsid: String,
    pub mons: Vec<MonInfo>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MonInfo {
    pub name: String,
    pub rank: i32,
    pub public_addr: String,
    pub public_addrs: AddrVec,
}

/// A daemon's addresses, one per protocol (`v2`, `v1`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AddrVec {
    pub addrvec: Vec<EntityAddr>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct EntityAddr {
    #[serde(rename = "type")]
    pub kind: String,
    /// `ip:port`.
    pub addr: String,
    pub nonce: u64,
}

impl AddrVec {
    /// The socket address of protocol `kind` (`v2`, `v1`).
    pub fn of(&self, kind: &str) -> Option<std::net::SocketAddr> {
        self.addrvec
            .iter()
            .find(|a| a.kind == kind)
            .and_then(|a| a.addr.parse().ok())
    }
}

/// `osd dump`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdDump {
    pub epoch: u64,
    pub fsid: String,
    pub flags: String,
    pub osds: Vec<OsdInfo>,
    pub pools: Vec<PoolInfo>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdInfo {
    pub osd: u32,
    pub uuid: String,
    pub up: u8,
    #[serde(rename = "in")]
    pub in_: u8,
    pub weight: f64,
    pub public_addrs: AddrVec,
}

impl OsdInfo {
    /// The nonce of the OSD instance this map knows, which tells one run of the daemon from the next.
    /// Ceph daemons use their pid (`Messenger::get_pid_nonce`; a random one as pid 1 in a container or
    /// when CEPH_USE_RANDOM_NONCE is set). 0 and 1 mean none.
    pub fn instance_nonce(&self) -> Option<u64> {
        let nonce = self.public_addrs.addrvec.first()?.nonce;
        Some(nonce).filter(|&n| n > 1)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PoolInfo {
    pub pool: i64,
    pub pool_name: String,
    pub size: u32,
    pub min_size: u32,
    pub pg_num: u32,
    pub crush_rule: i64,
    pub quota_max_bytes: u64,
    pub quota_max_objects: u64,
    /// 1: replicated, 3: erasure-coded.
    #[serde(rename = "type")]
    pub pool_type: i32,
    /// Comma-separated flags, e.g. `hashpspool,ec_overwrites`.
    pub flags_names: String,
    pub application_metadata: BTreeMap<String, serde_json::Value>,
}

impl PoolInfo {
    /// Whether the pool's volumes may be larger than its quota (rookery's key in the `rbd` application
    /// metadata, set from the CephBlockPool's `rookery.io/over-commit` annotation).
    pub fn allows_over_commit(&self) -> bool {
        self.application_metadata
            .get("rbd")
            .and_then(|m| m.get(crate::commands::pool::OVER_COMMIT_KEY))
            .is_some_and(|v| v == "true")
    }
}

/// One entry of `osd metadata`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdMetadata {
    pub id: u32,
    pub hostname: String,
    pub osd_objectstore: String,
    pub bluestore_bdev_size: String,
}

/// `osd df` (a mgr command).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdDf {
    pub nodes: Vec<OsdDfNode>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdDfNode {
    pub id: i64,
    pub name: String,
    pub kb: u64,
    pub kb_used: u64,
    pub kb_avail: u64,
    pub utilization: f64,
    pub pgs: u32,
}

/// `df`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Df {
    pub stats: DfStats,
    pub pools: Vec<DfPool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DfStats {
    pub total_bytes: u64,
    pub total_avail_bytes: u64,
    pub total_used_raw_bytes: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DfPool {
    pub name: String,
    pub id: i64,
    pub stats: DfPoolStats,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DfPoolStats {
    pub stored: u64,
    pub objects: u64,
    pub bytes_used: u64,
    pub max_avail: u64,
    /// Fraction (0 to 1) of what the pool can hold that is used.
    pub percent_used: f64,
    /// 0 when the pool has no quota.
    pub quota_bytes: u64,
    /// Client reads and writes since the pool was made (`df detail` only).
    pub rd: u64,
    pub rd_bytes: u64,
    pub wr: u64,
    pub wr_bytes: u64,
}

/// One entry of `osd crush rule dump`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CrushRule {
    pub rule_id: i64,
    pub rule_name: String,
}

/// `osd tree`: the CRUSH hierarchy (root, hosts, OSDs).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdTree {
    pub nodes: Vec<CrushNode>,
}

/// A bucket or an OSD of `osd tree`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CrushNode {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub children: Vec<i64>,
}

impl OsdTree {
    /// Host buckets that hold at least one OSD, with their OSDs' ids.
    pub fn hosts(&self) -> Vec<(String, Vec<u32>)> {
        self.nodes
            .iter()
            .filter(|n| n.kind == "host")
            .map(|n| {
                let mut osds: Vec<u32> = n
                    .children
                    .iter()
                    .filter_map(|c| u32::try_from(*c).ok())
                    .collect();
                osds.sort_unstable();
                (n.name.clone(), osds)
            })
            .filter(|(_, osds): &(String, Vec<u32>)| !osds.is_empty())
            .collect()
    }
}

/// `mgr stat`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MgrStat {
    pub epoch: u64,
    pub available: bool,
    pub active_name: String,
    pub num_standby: u32,
}

/// `mgr module ls`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MgrModules {
    pub enabled_modules: Vec<String>,
    /// On in every mgr of this release, whatever `mgr module enable` said.
    pub always_on_modules: Vec<String>,
}

impl MgrModules {
    /// Every module that runs: enabled ones and those always on.
    pub fn running(&self) -> impl Iterator<Item = &str> {
        self.enabled_modules
            .iter()
            .chain(&self.always_on_modules)
            .map(String::as_str)
    }
}

/// One entry of `auth get-or-create` (and `auth get`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthEntry {
    pub entity: String,
    pub key: String,
    pub caps: BTreeMap<String, String>,
}

/// One entry of `fs ls`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FsListEntry {
    pub name: String,
    pub metadata_pool: String,
    pub data_pools: Vec<String>,
}

/// `fs dump`: the FSMap.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FsDump {
    pub epoch: u64,
    /// MDS daemons that serve no filesystem yet.
    pub standbys: Vec<MdsInfo>,
    pub filesystems: Vec<FsDumpEntry>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FsDumpEntry {
    pub id: i64,
    pub mdsmap: MdsMap,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MdsMap {
    pub fs_name: String,
    pub max_mds: u32,
    pub flags: u64,
    /// The flags by name, which newer Ceph (17+) adds beside the bits.
    pub flags_state: Option<MdsMapFlags>,
    pub metadata_pool: i64,
    pub data_pools: Vec<i64>,
    /// By `gid_<n>`: the daemons holding a rank or following one.
    pub info: BTreeMap<String, MdsInfo>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MdsMapFlags {
    pub allow_standby_replay: Option<bool>,
}

impl MdsMap {
    pub fn allows_standby_replay(&self) -> bool {
        // CEPH_MDSMAP_ALLOW_STANDBY_REPLAY is flag bit 5; pacific reports only the bits.
        self.flags_state
            .as_ref()
            .and_then(|f| f.allow_standby_replay)
            .unwrap_or(self.flags & 0x20 != 0)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct MdsInfo {
    pub gid: u64,
    pub name: String,
    /// e.g. `up:active`, `up:standby-replay`, `up:standby`.
    pub state: String,
    /// -1 for a standby.
    pub rank: i64,
}

impl Default for MdsInfo {
    fn default() -> Self {
        MdsInfo {
            gid: 0,
            name: String::new(),
            state: String::new(),
            rank: -1,
        }
    }
}

/// `fs subvolume info`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SubvolumeInfo {
    /// Path inside the filesystem, what a mount of the subvolume roots at.
    pub path: String,
    /// None: no quota (Ceph says "infinite").
    #[serde(deserialize_with = "number_or_none")]
    pub bytes_quota: Option<u64>,
    pub bytes_used: u64,
    /// `YYYY-MM-DD HH:MM:SS`.
    pub created_at: String,
    pub data_pool: String,
    /// `complete` once usable; a clone is `pending` or `in-progress` until then.
    pub state: String,
    #[serde(rename = "type")]
    pub kind: String,
}

fn number_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(serde_json::Value::deserialize(d)?.as_u64())
}

/// One entry of `fs subvolume ls` or `fs subvolume snapshot ls`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NameEntry {
    pub name: String,
}

/// `fs subvolume snapshot info`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SubvolumeSnapshotInfo {
    /// `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub created_at: String,
    pub data_pool: String,
    /// "yes" or "no".
    pub has_pending_clones: String,
}

/// `fs clone status`: the `status` object of the reply.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CloneStatus {
    /// `pending`, `in-progress`, `complete`, `failed` or `canceled`.
    pub state: String,
    pub failure: Option<CloneFailure>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CloneFailure {
    pub errno: String,
    pub error_msg: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parses_and_counts_unclean_pgs() {
        let json = r#"{"fsid":"f","health":{"status":"HEALTH_WARN","checks":{"PG_AVAILABILITY":
            {"severity":"HEALTH_WARN","summary":{"message":"Reduced data availability","count":2},"muted":false}},"mutes":[]},
            "quorum_names":["a"],"monmap":{"epoch":1,"num_mons":1},
            "osdmap":{"epoch":9,"num_osds":3,"num_up_osds":3,"num_in_osds":3,"num_remapped_pgs":0},
            "pgmap":{"pgs_by_state":[{"state_name":"active+clean","count":7},{"state_name":"peering","count":2}],
            "num_pgs":9,"num_pools":1,"num_objects":0,"data_bytes":0,"bytes_used":1,"bytes_avail":2,"bytes_total":3},
            "mgrmap":{"available":true,"num_standbys":0,"modules":["iostat"]},"newfield":1}"#;
        let s: Status = serde_json::from_str(json).unwrap();
        assert_eq!(s.unclean_pgs(), 2);
        assert!(!s.is_health_ok());
        assert_eq!(s.health.checks["PG_AVAILABILITY"].summary.count, 2);
    }
}

/// `rbd perf image stats` (the mgr's rbd_support module): each image's I/O over the last few seconds,
/// as rows of figures named by `stat_descriptors`, keyed `POOL_INDEX/IMAGE` (the index into
/// `pool_descriptors`, whose values are `POOL` or `POOL/NAMESPACE`). Idle images are left out.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RbdPerfImageStats {
    pub stat_descriptors: Vec<String>,
    pub pool_descriptors: BTreeMap<String, String>,
    pub stats: Vec<BTreeMap<String, Vec<f64>>>,
}

/// One image's I/O rates, from [`RbdPerfImageStats`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageIo {
    pub pool: String,
    pub image: String,
    pub read_ops_per_sec: f64,
    pub write_ops_per_sec: f64,
    pub read_bytes_per_sec: f64,
    pub write_bytes_per_sec: f64,
    /// Mean latency of the interval's operations.
    pub read_latency_secs: f64,
    pub write_latency_secs: f64,
}

impl RbdPerfImageStats {
    /// One entry per image with I/O (images of a namespace keep `POOL/NAMESPACE` as their pool).
    pub fn images(&self) -> Vec<ImageIo> {
        let at = |name: &str| self.stat_descriptors.iter().position(|d| d == name);
        let (wo, ro, wb, rb, wl, rl) = (
            at("write_ops"),
            at("read_ops"),
            at("write_bytes"),
            at("read_bytes"),
            at("write_latency"),
            at("read_latency"),
        );
        let value =
            |row: &[f64], i: Option<usize>| i.and_then(|i| row.get(i)).copied().unwrap_or(0.0);
        let mut out = Vec::new();
        for entry in &self.stats {
            for (key, row) in entry {
                let Some((index, image)) = key.split_once('/') else {
                    continue;
                };
                let Some(pool) = self.pool_descriptors.get(index) else {
                    continue;
                };
                out.push(ImageIo {
                    pool: pool.clone(),
                    image: image.to_string(),
                    read_ops_per_sec: value(row, ro),
                    write_ops_per_sec: value(row, wo),
                    read_bytes_per_sec: value(row, rb),
                    write_bytes_per_sec: value(row, wb),
                    // Ceph reports nanoseconds.
                    read_latency_secs: value(row, rl) / 1e9,
                    write_latency_secs: value(row, wl) / 1e9,
                });
            }
        }
        out
    }
}

/// `tell osd.N perf dump osd`: the counters of the `osd` logger that tell its client I/O.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdPerfDump {
    pub osd: OsdPerfCounters,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OsdPerfCounters {
    pub op_r: u64,
    pub op_w: u64,
    pub op_r_out_bytes: u64,
    pub op_w_in_bytes: u64,
    pub op_r_latency: LatencySum,
    pub op_w_latency: LatencySum,
}

/// A Ceph latency counter: how many operations, and their total time in seconds.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LatencySum {
    pub avgcount: u64,
    pub sum: f64,
}
