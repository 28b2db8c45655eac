//! The `ceph.rook.io/v1` resources rookery accepts, their defaults, and the
//! validation that turns a user's YAML into either a usable spec or a complete
//! list of what to fix.

mod load;
mod quantity;
mod schema;
mod validate;

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use load::load;
pub use quantity::Quantity;

pub const API_VERSION: &str = "ceph.rook.io/v1";

/// Everything found in one input, after validation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub cluster: Option<CephCluster>,
    pub pools: Vec<CephBlockPool>,
    #[serde(default)]
    pub filesystems: Vec<CephFilesystem>,
    #[serde(default)]
    pub object_stores: Vec<CephObjectStore>,
    #[serde(default)]
    pub object_users: Vec<CephObjectStoreUser>,
    pub notices: Vec<Notice>,
}

/// A field accepted but not applied standalone; shown to the user as a note, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// One problem in the input; `path` is a field path such as `spec.mon.count`,
/// prefixed by the document when the input has several, or a YAML position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{path}: {message}. {fix}")]
pub struct SpecError {
    pub path: String,
    pub message: String,
    pub fix: String,
}

/// Every problem found, so the user can fix them all in one pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", one_per_line(.0))]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// The machine-readable name API clients get for any validation failure (the field paths say
    /// which fields are wrong).
    pub fn code(&self) -> &'static str {
        "invalid_spec"
    }
}

fn one_per_line(errors: &[SpecError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CephCluster {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ClusterSpec,
}

impl Default for CephCluster {
    fn default() -> Self {
        CephCluster {
            api_version: API_VERSION.into(),
            kind: "CephCluster".into(),
            metadata: ObjectMeta::default(),
            spec: ClusterSpec::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kubernetes annotations; rookery reads its own (`rookery.io/...`) and keeps the rest as given.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The CephBlockPool annotation that lets volumes be larger than the pool's quota (Rook's spec has no
/// such field): `"true"` or `"false"`.
pub const OVER_COMMIT_ANNOTATION: &str = "rookery.io/over-commit";

impl CephBlockPool {
    /// Whether the pool's volumes may together (or each) be larger than its quota.
    pub fn over_commit(&self) -> bool {
        self.metadata
            .annotations
            .get(OVER_COMMIT_ANNOTATION)
            .is_some_and(|v| v == "true")
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterSpec {
    pub mon: MonSpec,
    pub mgr: MgrSpec,
    pub storage: StorageSpec,
    /// Section (`global`, `osd`, `osd.0`, ...) to option to value.
    #[serde(deserialize_with = "scalar::nested")]
    pub ceph_config: BTreeMap<String, BTreeMap<String, String>>,
    /// Rook's network settings: rookery runs every daemon on the host's network, so only the values
    /// that say so are accepted.
    #[serde(skip_serializing_if = "NetworkSpec::is_unset")]
    pub network: NetworkSpec,
    /// Rook's health checks; rookery reads how long a mon may stay out of quorum before it is
    /// replaced on another host (`daemonHealth.mon.timeout`).
    #[serde(skip_serializing_if = "HealthCheckSpec::is_unset")]
    pub health_check: HealthCheckSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct HealthCheckSpec {
    pub daemon_health: DaemonHealthSpec,
}

impl HealthCheckSpec {
    pub fn is_unset(&self) -> bool {
        self == &HealthCheckSpec::default()
    }

    /// How long a mon may stay out of quorum before it is replaced (Rook's default: 10 minutes).
    pub fn mon_timeout(&self) -> std::time::Duration {
        self.daemon_health
            .mon
            .timeout
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(std::time::Duration::from_secs(600))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct DaemonHealthSpec {
    pub mon: MonHealthSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MonHealthSpec {
    /// A Go duration (`600s`, `10m`, `1h30m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A Go duration as Rook writes them: numbers with units `ms`, `s`, `m`, `h` (`90s`, `1h30m`).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, scale) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
            .into_iter()
            .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total += number * scale;
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkSpec {
    /// `host` (or empty): the daemons use the host's network, as rookery always does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Rook's older spelling of `provider: host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
}

impl NetworkSpec {
    pub fn is_unset(&self) -> bool {
        self == &NetworkSpec::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MonSpec {
    pub count: u32,
    pub allow_multiple_per_node: bool,
}

impl Default for MonSpec {
    fn default() -> Self {
        MonSpec {
            count: 1,
            allow_multiple_per_node: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MgrSpec {
    pub count: u32,
    pub allow_multiple_per_node: bool,
    pub modules: Vec<MgrModule>,
}

impl Default for MgrSpec {
    fn default() -> Self {
        MgrSpec {
            count: 1,
            allow_multiple_per_node: false,
            modules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MgrModule {
    pub name: String,
    pub enabled: bool,
}

impl Default for MgrModule {
    fn default() -> Self {
        MgrModule {
            name: String::new(),
            enabled: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct StorageSpec {
    pub use_all_nodes: bool,
    /// Every blank, unused disk of a node becomes an OSD (loop devices only where the host allows them).
    pub use_all_devices: bool,
    /// A regular expression on device names (`^sd[b-d]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_filter: Option<String>,
    /// A regular expression on device paths and their /dev/disk/by-* names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_path_filter: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceEntry>,
    /// OSD settings for every selected device: `osdsPerDevice`, `deviceClass`.
    #[serde(
        deserialize_with = "scalar::flat",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub config: BTreeMap<String, String>,
    /// Per-node selections; a node's own settings win over the cluster-wide ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStorage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub osd_files: Option<OsdFiles>,
}

impl StorageSpec {
    /// Whether any device selection is set, here or on a node (then the OSD count is known only once
    /// the devices are seen).
    pub fn selects_devices(&self) -> bool {
        self.use_all_devices
            || self.device_filter.is_some()
            || self.device_path_filter.is_some()
            || !self.devices.is_empty()
            || self.nodes.iter().any(NodeStorage::selects_devices)
    }
}

/// One device named in `devices[]`: a kernel name (`vdb`), a path or a /dev/disk/by-* name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceEntry {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_path: Option<String>,
    #[serde(
        deserialize_with = "scalar::flat",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub config: BTreeMap<String, String>,
}

impl DeviceEntry {
    /// What names the device: `fullPath` when given, else `name`.
    pub fn target(&self) -> &str {
        self.full_path.as_deref().unwrap_or(&self.name)
    }
}

/// `storage.nodes[]`: one node's own selection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStorage {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_all_devices: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_path_filter: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceEntry>,
    #[serde(
        deserialize_with = "scalar::flat",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub config: BTreeMap<String, String>,
}

impl NodeStorage {
    pub fn selects_devices(&self) -> bool {
        self.use_all_devices == Some(true)
            || self.device_filter.is_some()
            || self.device_path_filter.is_some()
            || !self.devices.is_empty()
    }
}

/// rookery extension (no Rook equivalent): OSDs on sparse files inside the cluster's data dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct OsdFiles {
    pub count: u32,
    pub size: Quantity,
}

impl Default for OsdFiles {
    fn default() -> Self {
        OsdFiles {
            count: 0,
            size: Quantity(10 << 30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CephBlockPool {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PoolSpec,
}

impl Default for CephBlockPool {
    fn default() -> Self {
        CephBlockPool {
            api_version: API_VERSION.into(),
            kind: "CephBlockPool".into(),
            metadata: ObjectMeta::default(),
            spec: PoolSpec::default(),
        }
    }
}

impl CephBlockPool {
    /// The Ceph pool name: Rook lets `spec.name` override the object name so
    /// that pools like `.mgr`, which are not valid object names, can be managed.
    pub fn pool_name(&self) -> &str {
        self.spec.name.as_deref().unwrap_or(&self.metadata.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PoolSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub failure_domain: String,
    pub replicated: ReplicatedSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
    #[serde(deserialize_with = "scalar::flat")]
    pub parameters: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quotas: Option<QuotaSpec>,
    /// Set instead of `replicated`: data is split into `dataChunks` pieces plus `codingChunks` parities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erasure_coded: Option<ErasureCodedSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ErasureCodedSpec {
    pub data_chunks: u32,
    pub coding_chunks: u32,
}

impl Default for PoolSpec {
    fn default() -> Self {
        PoolSpec {
            name: None,
            failure_domain: "host".into(),
            replicated: ReplicatedSpec::default(),
            device_class: None,
            parameters: BTreeMap::new(),
            quotas: None,
            erasure_coded: None,
        }
    }
}

/// Rook's pool quotas: `maxSize` (a quantity) or `maxBytes` (a number) cap the stored bytes, `maxObjects`
/// the object count. Unset or 0 means no limit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct QuotaSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<u64>,
}

impl QuotaSpec {
    /// The byte limit (`maxSize` wins over `maxBytes`, as in Rook); 0 is none.
    pub fn bytes(&self) -> u64 {
        self.max_size.map(|q| q.0).or(self.max_bytes).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ReplicatedSpec {
    pub size: u32,
    pub require_safe_replica_size: bool,
}

/// As in Rook, whose CRDs give `requireSafeReplicaSize` no default: one copy is refused only where the
/// spec asks for safe sizes (Rook's small examples use one copy without saying so).
impl Default for ReplicatedSpec {
    fn default() -> Self {
        ReplicatedSpec {
            size: 3,
            require_safe_replica_size: false,
        }
    }
}

/// A kind's envelope: apiVersion, kind, metadata and its spec.
macro_rules! resource {
    ($name:ident, $kind:literal, $spec:ty) => {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", default)]
        pub struct $name {
            pub api_version: String,
            pub kind: String,
            pub metadata: ObjectMeta,
            pub spec: $spec,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    api_version: API_VERSION.into(),
                    kind: $kind.into(),
                    metadata: ObjectMeta::default(),
                    spec: <$spec>::default(),
                }
            }
        }
    };
}

resource!(CephFilesystem, "CephFilesystem", FilesystemSpec);
resource!(CephObjectStore, "CephObjectStore", ObjectStoreSpec);
resource!(CephObjectStoreUser, "CephObjectStoreUser", ObjectUserSpec);

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FilesystemSpec {
    pub metadata_pool: PoolSpec,
    /// Each data pool's Ceph name is `<fs>-<name>`, or `<fs>-data<index>` when it has no name (as in Rook).
    pub data_pools: Vec<PoolSpec>,
    pub preserve_pools_on_delete: bool,
    pub preserve_filesystem_on_delete: bool,
    pub metadata_server: MetadataServerSpec,
}

impl CephFilesystem {
    pub fn metadata_pool_name(&self) -> String {
        format!("{}-metadata", self.metadata.name)
    }

    pub fn data_pool_names(&self) -> Vec<String> {
        let fs = &self.metadata.name;
        self.spec
            .data_pools
            .iter()
            .enumerate()
            .map(|(i, p)| match &p.name {
                Some(n) => format!("{fs}-{n}"),
                None => format!("{fs}-data{i}"),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MetadataServerSpec {
    pub active_count: u32,
    /// Standbys follow the active MDS's journal (standby-replay) and take over faster.
    pub active_standby: bool,
}

impl Default for MetadataServerSpec {
    fn default() -> Self {
        MetadataServerSpec {
            active_count: 1,
            active_standby: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectStoreSpec {
    pub metadata_pool: PoolSpec,
    pub data_pool: PoolSpec,
    pub preserve_pools_on_delete: bool,
    pub gateway: GatewaySpec,
}

impl CephObjectStore {
    /// The pools RGW's zone uses, named as Rook names them; the last one holds object data.
    pub fn metadata_pool_names(&self) -> Vec<String> {
        let s = &self.metadata.name;
        let mut names: Vec<String> = [
            "rgw.control",
            "rgw.meta",
            "rgw.log",
            "rgw.buckets.index",
            "rgw.buckets.non-ec",
            "rgw.otp",
        ]
        .iter()
        .map(|p| format!("{s}.{p}"))
        .collect();
        names.push(".rgw.root".into());
        names
    }

    pub fn data_pool_name(&self) -> String {
        format!("{}.rgw.buckets.data", self.metadata.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewaySpec {
    /// HTTP port on 127.0.0.1; 0 means not set.
    pub port: u32,
    /// How many hosts serve the store, each on `port` (one gateway per host).
    pub instances: u32,
}

impl Default for GatewaySpec {
    fn default() -> Self {
        GatewaySpec {
            port: 0,
            instances: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectUserSpec {
    pub store: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// RGW admin capabilities: `user`, `bucket`, `metadata`, `usage`, `zone` -> `read`, `write`, `read, write`
    /// or `*`.
    #[serde(deserialize_with = "scalar::flat")]
    pub capabilities: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quotas: Option<ObjectUserQuotas>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectUserQuotas {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_buckets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<u64>,
}

/// The embedded default spec, as text (what `rookery up` saves for a new default cluster).
pub const DEFAULT_YAML: &str = include_str!("../default.yaml");

/// The cluster `rookery up` creates when given no file.
pub fn default_resources() -> Resources {
    // default.yaml is what users see and copy, so it is the source of truth;
    // the hand-built value only guards against a broken edit to that file
    // (a unit test keeps the two identical).
    load(DEFAULT_YAML).unwrap_or_else(|_| builtin_default())
}

fn builtin_default() -> Resources {
    let mut cluster = CephCluster::default();
    cluster.metadata.name = "rookery".into();
    cluster.spec.storage.osd_files = Some(OsdFiles {
        count: 3,
        ..OsdFiles::default()
    });
    let mut pool = CephBlockPool::default();
    pool.metadata.name = "replicapool".into();
    pool.spec.failure_domain = "osd".into();
    Resources {
        cluster: Some(cluster),
        pools: vec![pool],
        notices: Vec::new(),
        ..Resources::default()
    }
}

/// Rook users write config values as strings, but YAML also lets them write
/// `1` or `true`; Ceph takes all of them as text, so accept any scalar.
mod scalar {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{Deserializer, Error, Visitor};
    use serde::Deserialize;

    struct Scalar(String);

    impl<'de> Deserialize<'de> for Scalar {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Scalar;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string, number or boolean")
                }
                fn visit_str<E: Error>(self, v: &str) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_owned()))
                }
                fn visit_bool<E: Error>(self, v: bool) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_i64<E: Error>(self, v: i64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_u64<E: Error>(self, v: u64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_f64<E: Error>(self, v: f64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
            }
            d.deserialize_any(V)
        }
    }

    pub fn flat<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
        let map = BTreeMap::<String, Scalar>::deserialize(d)?;
        Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
    }

    pub fn nested<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, D::Error> {
        let map = BTreeMap::<String, BTreeMap<String, Scalar>>::deserialize(d)?;
        Ok(map
            .into_iter()
            .map(|(section, opts)| (section, opts.into_iter().map(|(k, v)| (k, v.0)).collect()))
            .collect())
    }
}

#[cfg(test)]
mod tests;
