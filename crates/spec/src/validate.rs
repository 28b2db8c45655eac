use std::collections::BTreeMap;

use crate::load::Report;
use crate::{
    CephBlockPool, CephCluster, CephFilesystem, CephObjectStore, CephObjectStoreUser, PoolSpec,
    Quantity,
};

const FAILURE_DOMAINS: &[&str] = &[
    "osd",
    "host",
    "chassis",
    "rack",
    "row",
    "pdu",
    "pod",
    "room",
    "datacenter",
    "zone",
    "region",
    "root",
];
const DAEMON_TYPES: &[&str] = &["mon", "mgr", "osd", "mds", "client"];
const MAX_OSD_FILES: u32 = 64;

fn is_dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.len() <= 63
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || c == '-')
}

fn check_name(name: &str, r: &mut Report) {
    if name.is_empty() {
        r.error(
            "metadata.name",
            "a name is required",
            "add metadata.name, e.g. `name: my-cluster`",
        );
    } else if !is_dns_label(name) {
        r.error(
            "metadata.name",
            format!("{name:?} is not a valid name"),
            "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
        );
    }
}

struct Daemon {
    kind: &'static str,
    max: u32,
    zero_fix: &'static str,
    max_fix: &'static str,
}

fn check_count(d: &Daemon, count: u32, r: &mut Report) {
    let path = format!("spec.{}.count", d.kind);
    let kind = d.kind;
    if count == 0 {
        return r.error(
            path,
            format!("a cluster needs at least one {kind}"),
            d.zero_fix,
        );
    }
    if count > d.max {
        return r.error(
            path,
            format!("at most {} {kind}s are supported", d.max),
            d.max_fix,
        );
    }
    // Mons vote: with an even count a split in half leaves no majority.
    if kind == "mon" && count.is_multiple_of(2) {
        r.error(
            &path,
            format!("{count} mons cannot form a majority if half of them fail"),
            "use an odd number so a majority can form quorum",
        );
    }
    // Several mons or mgrs on one host need allowMultiplePerNode only where the hosts are known (`up`'s
    // preflight): over several hosts they spread, one each.
}

pub(crate) fn cluster(c: &mut CephCluster, r: &mut Report) {
    check_name(&c.metadata.name, r);
    let spec = &mut c.spec;
    let mon = Daemon {
        kind: "mon",
        max: 9,
        zero_fix: "use 1 or 3",
        max_fix: "use 1, 3 or 5",
    };
    let mgr = Daemon {
        kind: "mgr",
        max: 2,
        zero_fix: "use 1",
        max_fix: "use 1 or 2",
    };
    check_count(&mon, spec.mon.count, r);
    check_count(&mgr, spec.mgr.count, r);
    network(&spec.network, r);
    if let Some(t) = &spec.health_check.daemon_health.mon.timeout {
        match crate::parse_duration(t) {
            Some(d) if d.as_secs() >= 10 => {}
            Some(_) => r.error(
                "spec.healthCheck.daemonHealth.mon.timeout",
                format!("{t:?} is too short: a mon restarting would be replaced"),
                "use at least 10s (Rook's default is 10m)",
            ),
            None => r.error(
                "spec.healthCheck.daemonHealth.mon.timeout",
                format!("{t:?} is not a duration"),
                "write it as Rook does, e.g. 600s or 10m",
            ),
        }
    }

    for (i, module) in spec.mgr.modules.iter().enumerate() {
        let path = format!("spec.mgr.modules[{i}]");
        let name = &module.name;
        if name.is_empty() {
            r.error(
                format!("{path}.name"),
                "a module name is required",
                "set the name, e.g. `name: pg_autoscaler`",
            );
        } else if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            r.error(
                format!("{path}.name"),
                format!("{name:?} is not a valid mgr module name"),
                "use lowercase letters, digits and '_'",
            );
        } else if name == "rook" && module.enabled {
            r.notice(
                path,
                "the rook orchestrator module is for Kubernetes; not enabled standalone",
            );
        }
    }
    spec.mgr.modules.retain(|m| m.name != "rook");

    let storage = &spec.storage;
    if storage.use_all_nodes {
        r.notice(
            "spec.storage.useAllNodes",
            "every host of the cluster makes its own OSDs (osdFiles.count files each, or its selected devices), so pool sizes are not checked against osdFiles.count",
        );
    }
    selection(
        "spec.storage",
        storage.device_filter.as_deref(),
        storage.device_path_filter.as_deref(),
        &storage.devices,
        &storage.config,
        r,
    );
    for (i, node) in storage.nodes.iter().enumerate() {
        let at = format!("spec.storage.nodes[{i}]");
        if node.name.is_empty() {
            r.error(
                format!("{at}.name"),
                "a node entry needs the node's name",
                "add name: <the host's name, as `hostname` prints it>",
            );
        }
        selection(
            &at,
            node.device_filter.as_deref(),
            node.device_path_filter.as_deref(),
            &node.devices,
            &node.config,
            r,
        );
    }
    let count = storage.osd_files.as_ref().map_or(0, |f| f.count);
    if count == 0 && !storage.selects_devices() {
        r.error(
            "spec.storage",
            "no OSDs would be created",
            "add storage.osdFiles: {count: 3, size: 10Gi}, or select devices (useAllDevices, deviceFilter, devices)",
        );
    }
    if let Some(files) = &storage.osd_files {
        if files.count > MAX_OSD_FILES {
            r.error(
                "spec.storage.osdFiles.count",
                format!(
                    "{} OSD files is more than the limit of {MAX_OSD_FILES}",
                    files.count
                ),
                format!("use at most {MAX_OSD_FILES}"),
            );
        }
        if files.size < Quantity::GI {
            r.error(
                "spec.storage.osdFiles.size",
                format!("{} is too small; bluestore needs at least 1Gi", files.size),
                "use 1Gi or more, e.g. 10Gi",
            );
        } else if files.size > Quantity::PI {
            r.error(
                "spec.storage.osdFiles.size",
                format!("{} is more than the limit of 1Pi", files.size),
                "use 1Pi or less",
            );
        }
    }
    check_ceph_config(&spec.ceph_config, r);
}

/// Rook's per-device OSD settings (`storage.config`, `devices[].config`) that rookery does not apply.
const UNSUPPORTED_OSD_CONFIG: &[(&str, &str)] = &[
    (
        "metadataDevice",
        "BlueStore keeps its DB on the data device",
    ),
    (
        "databaseSizeMB",
        "BlueStore keeps its DB on the data device",
    ),
    ("walSizeMB", "BlueStore keeps its WAL on the data device"),
    ("journalSizeMB", "journals are a FileStore setting"),
    ("encryptedDevice", "OSD encryption is not supported yet"),
    ("initialWeight", "CRUSH weights follow the device's size"),
    ("primaryAffinity", "set it with `ceph osd primary-affinity`"),
];

/// A device selection: its filters compile, its named devices look like devices, its settings are known.
fn selection(
    at: &str,
    device_filter: Option<&str>,
    device_path_filter: Option<&str>,
    devices: &[crate::DeviceEntry],
    config: &BTreeMap<String, String>,
    r: &mut Report,
) {
    for (field, value) in [
        ("deviceFilter", device_filter),
        ("devicePathFilter", device_path_filter),
    ] {
        let Some(value) = value else { continue };
        if let Err(e) = regex::Regex::new(value) {
            r.error(
                format!("{at}.{field}"),
                format!("{value:?} is not a regular expression: {e}"),
                "use a regular expression such as '^sd[b-d]$' or '^/dev/disk/by-id/ata-.*'",
            );
        } else if value.is_empty() {
            r.error(
                format!("{at}.{field}"),
                "an empty filter matches every device",
                "remove it, or set useAllDevices: true if every blank disk is meant",
            );
        }
    }
    for (i, d) in devices.iter().enumerate() {
        let target = d.target();
        let ok = if target.starts_with('/') {
            target.starts_with("/dev/") && !target.contains("/../")
        } else {
            !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        };
        if !ok {
            r.error(
                format!("{at}.devices[{i}].name"),
                format!("{target:?} does not name a device"),
                "use a kernel name (vdb), a path under /dev (/dev/vdb) or a stable name (/dev/disk/by-id/...)",
            );
        }
        osd_config(&format!("{at}.devices[{i}].config"), &d.config, r);
    }
    osd_config(&format!("{at}.config"), config, r);
}

fn osd_config(at: &str, config: &BTreeMap<String, String>, r: &mut Report) {
    for (key, value) in config {
        let path = format!("{at}.{key}");
        match key.as_str() {
            "osdsPerDevice" => match value.parse::<u32>() {
                Ok(0) => r.error(
                    path,
                    "0 OSDs per device would leave the device unused",
                    "use 1, or leave the device out of the selection",
                ),
                Ok(1) => {}
                Ok(n) => r.error(
                    path,
                    format!("{n} OSDs per device needs LVM to split the device; rookery makes one raw BlueStore OSD per device"),
                    "use 1",
                ),
                Err(_) => r.error(
                    path,
                    format!("{value:?} is not a number of OSDs"),
                    "use 1",
                ),
            },
            "deviceClass" => {
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    r.error(
                        path,
                        format!("{value:?} is not a device class name"),
                        "use letters, digits, '-' and '_', e.g. ssd, hdd or nvme",
                    );
                }
            }
            other => match UNSUPPORTED_OSD_CONFIG.iter().find(|(k, _)| *k == other) {
                Some((_, why)) => r.error(path, format!("not supported: {why}"), "remove it"),
                None => r.error(
                    path,
                    format!("{other:?} is not an OSD setting"),
                    "use osdsPerDevice or deviceClass",
                ),
            },
        }
    }
}

fn is_section(name: &str) -> bool {
    match name.split_once('.') {
        None => name == "global" || DAEMON_TYPES.contains(&name),
        Some((daemon, id)) => {
            DAEMON_TYPES.contains(&daemon)
                && !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        }
    }
}

fn check_ceph_config(config: &BTreeMap<String, BTreeMap<String, String>>, r: &mut Report) {
    for (section, options) in config {
        let path = format!("spec.cephConfig.{section}");
        if !is_section(section) {
            r.error(
                &path,
                format!("{section:?} is not a Ceph config section"),
                "use global, mon, mgr, osd, mds, client or a daemon name such as osd.0 or client.admin",
            );
        }
        for (option, value) in options {
            let valid =
                |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ' ';
            if option.is_empty() || !option.chars().all(valid) {
                r.error(
                    format!("{path}.{option}"),
                    format!("{option:?} is not a valid option name"),
                    "use lowercase letters, digits and '_', as in osd_pool_default_size",
                );
            }
            if value.contains(['\n', '\r']) {
                r.error(
                    format!("{path}.{option}"),
                    "a config value cannot span lines",
                    "put the value on one line",
                );
            }
        }
    }
}

fn name_path(p: &CephBlockPool) -> &'static str {
    if p.spec.name.is_some() {
        "spec.name"
    } else {
        "metadata.name"
    }
}

pub(crate) fn pool(p: &CephBlockPool, r: &mut Report) {
    check_name(&p.metadata.name, r);
    if let Some(name) = &p.spec.name {
        check_pool_name(name, "spec.name", r);
    }
    pool_spec(&p.spec, "spec", r);
    if let Some(v) = p
        .metadata
        .annotations
        .get(crate::OVER_COMMIT_ANNOTATION)
        .filter(|v| !["true", "false"].contains(&v.as_str()))
    {
        r.error(
            format!("metadata.annotations.{}", crate::OVER_COMMIT_ANNOTATION),
            format!("{v:?} is neither \"true\" nor \"false\""),
            "write \"true\" to let this pool's volumes be larger than its quota (writes stop when the pool is full, and status warns), or remove the annotation",
        );
    }
}

fn check_pool_name(name: &str, path: &str, r: &mut Report) {
    let valid = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    if name.is_empty() || name.len() > 128 || name.starts_with('-') || !name.chars().all(valid) {
        r.error(
            path,
            format!("{name:?} is not a valid pool name"),
            "use 1 to 128 letters, digits, '_', '.' and '-', not starting with '-'",
        );
    }
}

/// Network settings are accepted where they say what rookery does: daemons on the host's network.
fn network(n: &crate::NetworkSpec, r: &mut Report) {
    if let Some(provider) = n.provider.as_deref().filter(|p| !["", "host"].contains(p)) {
        r.error(
            "spec.network.provider",
            format!("{provider:?} networking is not supported: rookery runs every daemon on the host's network"),
            "use provider: host, or remove it",
        );
    }
    if n.host_network == Some(false) {
        r.error(
            "spec.network.hostNetwork",
            "rookery runs every daemon on the host's network",
            "set hostNetwork: true, or remove it",
        );
    }
}

/// A pool is either replicated or erasure coded: a document that sets both for one pool is refused
/// (as Rook refuses it) instead of one of them being dropped. Read from the document itself, because
/// the typed spec always has a `replicated` (its default).
pub(crate) fn one_redundancy(kind: Option<&str>, doc: &serde_yaml::Value, r: &mut Report) {
    let spec = &doc["spec"];
    let mut pools = Vec::new();
    match kind {
        Some("CephBlockPool") => pools.push(("spec".to_string(), spec)),
        Some("CephFilesystem") => {
            pools.push(("spec.metadataPool".to_string(), &spec["metadataPool"]));
            if let Some(data) = spec["dataPools"].as_sequence() {
                for (i, p) in data.iter().enumerate() {
                    pools.push((format!("spec.dataPools[{i}]"), p));
                }
            }
        }
        Some("CephObjectStore") => {
            pools.push(("spec.metadataPool".to_string(), &spec["metadataPool"]));
            pools.push(("spec.dataPool".to_string(), &spec["dataPool"]));
        }
        _ => {}
    }
    for (at, pool) in pools {
        let set = |key: &str| pool.get(key).is_some_and(|v| !v.is_null());
        if set("replicated") && set("erasureCoded") {
            r.error(
                format!("{at}.erasureCoded"),
                format!("both {at}.replicated and {at}.erasureCoded are set; a pool is one or the other"),
                "keep replicated (whole copies) or erasureCoded (data and coding chunks), and remove the other",
            );
        }
    }
}

/// Checks one pool's settings; `at` is where the pool sits (`spec`, `spec.dataPools[0]`).
pub(crate) fn pool_spec(spec: &PoolSpec, at: &str, r: &mut Report) {
    let domain = &spec.failure_domain;
    if !FAILURE_DOMAINS.contains(&domain.as_str()) {
        r.error(
            format!("{at}.failureDomain"),
            format!("{domain:?} is not a CRUSH failure domain"),
            format!("use one of {}", FAILURE_DOMAINS.join(", ")),
        );
    }
    if let Some(ec) = &spec.erasure_coded {
        if ec.data_chunks < 2 {
            r.error(
                format!("{at}.erasureCoded.dataChunks"),
                format!("{} data chunks", ec.data_chunks),
                "use at least 2 (for example dataChunks: 2, codingChunks: 1)",
            );
        }
        if ec.coding_chunks < 1 {
            r.error(
                format!("{at}.erasureCoded.codingChunks"),
                format!("{} coding chunks leave no redundancy", ec.coding_chunks),
                "use at least 1",
            );
        }
        pool_parameters(spec, at, r);
        return;
    }
    let replicated = &spec.replicated;
    if !(1..=10).contains(&replicated.size) {
        r.error(
            format!("{at}.replicated.size"),
            format!("{} replicas is out of range", replicated.size),
            "use a size from 1 to 10, usually 3",
        );
    } else if replicated.size == 1 && replicated.require_safe_replica_size {
        r.error(
            format!("{at}.replicated.size"),
            "a pool with one replica has no redundancy",
            "set requireSafeReplicaSize: false to accept a pool with no redundancy",
        );
    }
    pool_parameters(spec, at, r);
}

/// Whether a pool's copies (or chunks) fit on the cluster's OSDs.
pub(crate) fn pool_fits(spec: &PoolSpec, at: &str, osds: u32, r: &mut Report) {
    if let Some(ec) = &spec.erasure_coded {
        let need = ec.data_chunks + ec.coding_chunks;
        if need > osds {
            r.error(
                format!("{at}.erasureCoded"),
                format!("{} data + {} coding chunks need {need} OSDs but the cluster has only {osds}", ec.data_chunks, ec.coding_chunks),
                format!("use dataChunks + codingChunks <= {osds}, raise spec.storage.osdFiles.count to {need}, or, on a cluster over several hosts, set spec.storage.useAllNodes: true (each host makes osdFiles.count OSDs)"),
            );
        }
        return;
    }
    let size = spec.replicated.size;
    if size > osds {
        r.error(
            format!("{at}.replicated.size"),
            format!("the pool keeps {size} replicas but the cluster has only {osds} OSDs"),
            format!(
                "lower replicated.size to {osds}, raise spec.storage.osdFiles.count to {size}, or, on a cluster over several hosts, set spec.storage.useAllNodes: true (each host makes osdFiles.count OSDs)"
            ),
        );
    }
}

pub(crate) fn filesystem(fs: &CephFilesystem, r: &mut Report) {
    check_name(&fs.metadata.name, r);
    if fs.spec.metadata_pool.erasure_coded.is_some() {
        r.error(
            "spec.metadataPool.erasureCoded",
            "CephFS metadata must be in a replicated pool",
            "remove erasureCoded and set replicated.size",
        );
    } else {
        pool_spec(&fs.spec.metadata_pool, "spec.metadataPool", r);
    }
    if fs.spec.data_pools.is_empty() {
        r.error(
            "spec.dataPools",
            "a filesystem needs at least one data pool",
            "add dataPools: [{name: data0, replicated: {size: 3}}]",
        );
    }
    for (i, p) in fs.spec.data_pools.iter().enumerate() {
        let at = format!("spec.dataPools[{i}]");
        if let Some(name) = &p.name {
            check_pool_name(name, &format!("{at}.name"), r);
        }
        if i == 0 && p.erasure_coded.is_some() {
            r.error(
                format!("{at}.erasureCoded"),
                "the first data pool holds every file's backtrace and must be replicated",
                "make the first data pool replicated and add the erasure-coded one after it",
            );
        }
        pool_spec(p, &at, r);
    }
    let names = fs.data_pool_names();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            r.error(
                format!("spec.dataPools[{i}].name"),
                format!("data pool {n:?} is listed twice"),
                "give each data pool a unique name",
            );
        }
    }
    let mds = &fs.spec.metadata_server;
    if mds.active_count == 0 {
        r.error(
            "spec.metadataServer.activeCount",
            "a filesystem needs at least one active MDS",
            "use activeCount: 1",
        );
    } else if mds.active_count > 4 {
        r.error(
            "spec.metadataServer.activeCount",
            format!("{} active MDS daemons on one host", mds.active_count),
            "use an activeCount from 1 to 4; one is enough for most filesystems",
        );
    }
}

pub(crate) fn object_store(s: &CephObjectStore, r: &mut Report) {
    check_name(&s.metadata.name, r);
    if s.spec.metadata_pool.erasure_coded.is_some() {
        r.error(
            "spec.metadataPool.erasureCoded",
            "RGW metadata must be in replicated pools",
            "remove erasureCoded and set replicated.size",
        );
    } else {
        pool_spec(&s.spec.metadata_pool, "spec.metadataPool", r);
    }
    pool_spec(&s.spec.data_pool, "spec.dataPool", r);
    let gw = &s.spec.gateway;
    if gw.port == 0 {
        r.error(
            "spec.gateway.port",
            "the gateway needs a port",
            "set gateway.port, e.g. 8080",
        );
    } else if gw.port > 65535 {
        r.error(
            "spec.gateway.port",
            format!("{} is not a TCP port", gw.port),
            "use a port from 1 to 65535, e.g. 8080",
        );
    }
    if gw.instances == 0 {
        r.error(
            "spec.gateway.instances",
            "0 gateway instances would leave the store unserved",
            "use instances: 1, or one per host that should serve it",
        );
    }
}

/// RGW user ids: what Rook accepts for a CephObjectStoreUser name, which also keeps them safe in URLs
/// and file names.
pub(crate) const USER_CAPABILITIES: &[&str] = &[
    "user", "users", "bucket", "buckets", "metadata", "usage", "zone", "info",
];

pub(crate) fn object_user(u: &CephObjectStoreUser, r: &mut Report) {
    check_name(&u.metadata.name, r);
    if u.spec.store.is_empty() {
        r.error(
            "spec.store",
            "the user needs an object store",
            "set spec.store to the name of a CephObjectStore",
        );
    }
    if let Some(d) = &u.spec.display_name {
        if d.contains(['\n', '\r']) || d.len() > 256 {
            r.error(
                "spec.displayName",
                "the display name spans lines or is over 256 characters",
                "use one short line",
            );
        }
    }
    for (k, v) in &u.spec.capabilities {
        let ok = ["*", "read", "write", "read, write", "read,write"].contains(&v.trim());
        if !USER_CAPABILITIES.contains(&k.as_str()) {
            r.error(
                format!("spec.capabilities.{k}"),
                format!("{k:?} is not a capability rookery grants"),
                format!("use one of {}", USER_CAPABILITIES.join(", ")),
            );
        } else if !ok {
            r.error(
                format!("spec.capabilities.{k}"),
                format!("{v:?} is not an access level"),
                "use read, write, \"read, write\" or \"*\"",
            );
        }
    }
}

/// Pool settings `parameters` may set (`ceph osd pool set NAME KEY VALUE`); anything else would only fail
/// later, inside the reconciler.
pub(crate) const POOL_PARAMETERS: &[&str] = &[
    "compression_mode",
    "compression_algorithm",
    "compression_required_ratio",
    "compression_min_blob_size",
    "compression_max_blob_size",
    "target_size_bytes",
    "target_size_ratio",
    "pg_num",
    "pgp_num",
    "pg_num_min",
    "pg_autoscale_mode",
    "min_size",
    "noscrub",
    "nodeep-scrub",
    "csum_type",
    "fast_read",
];

fn pool_parameters(spec: &PoolSpec, at: &str, r: &mut Report) {
    for (k, v) in &spec.parameters {
        if !POOL_PARAMETERS.contains(&k.as_str()) {
            r.error(
                format!("{at}.parameters.{k}"),
                format!("{k:?} is not a pool setting rookery applies"),
                format!("use one of {}", POOL_PARAMETERS.join(", ")),
            );
        } else if v.trim().is_empty() || v.contains('\n') {
            r.error(
                format!("{at}.parameters.{k}"),
                "the value is empty or spans lines",
                "give a single value",
            );
        }
    }
    let modes = ["none", "passive", "aggressive", "force"];
    if let Some(m) = spec.parameters.get("compression_mode") {
        if !modes.contains(&m.as_str()) {
            r.error(
                format!("{at}.parameters.compression_mode"),
                format!("{m:?} is not a compression mode"),
                format!("use one of {}", modes.join(", ")),
            );
        }
    }
    if let Some(c) = &spec.device_class {
        if c.is_empty()
            || !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            r.error(
                format!("{at}.deviceClass"),
                format!("{c:?} is not a device class name"),
                "use a class such as hdd, ssd or nvme",
            );
        }
    }
}

/// Checks that need every pool (and the cluster's OSD count, when it is
/// known); returns one report per pool, in order. Pools that failed to parse
/// cleanly are only checked for name clashes, since their size may be a default.
pub(crate) fn pools_together(pools: &[(&CephBlockPool, bool)], osds: Option<u32>) -> Vec<Report> {
    let mut reports: Vec<Report> = pools.iter().map(|_| Report::default()).collect();
    for (i, (p, clean)) in pools.iter().enumerate() {
        let name = p.pool_name();
        if pools[..i].iter().any(|(q, _)| q.pool_name() == name) {
            reports[i].error(
                name_path(p),
                format!("pool name {name:?} is used by another CephBlockPool"),
                "give each pool a unique name",
            );
        }
        if let Some(osds) = osds.filter(|_| *clean) {
            pool_fits(&p.spec, "spec", osds, &mut reports[i]);
        }
    }
    reports
}
