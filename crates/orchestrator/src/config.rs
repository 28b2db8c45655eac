//! ceph.conf for a standalone cluster: settings that fit one small host (see ceph-notes: pitfalls 2-7,
//! 12-13, 17), then the spec's `cephConfig`, which wins.

use std::collections::BTreeMap;

use rookery_ceph::conf::CephConf;

use rookery_platform::Host;

use rookery_platform::ConfSetting;

use crate::state::ClusterState;

/// What ceph.conf depends on besides the state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfInputs {
    pub osd_file_size: u64,
    pub overrides: BTreeMap<String, BTreeMap<String, String>>,
    /// Object stores and the port of each one's gateway.
    pub gateways: Vec<(String, u16)>,
}

/// ceph.conf for the daemons on `host`; `placement` is where the platform keeps their stores, keys, logs
/// and sockets ([`rookery_platform::Stores::conf_settings`]).
pub fn render(
    state: &ClusterState,
    inputs: &ConfInputs,
    host: &Host,
    placement: &[ConfSetting],
) -> String {
    let mut c = CephConf::default();
    let g = |c: &mut CephConf, k: &str, v: &str| c.set("global", k, v);
    g(&mut c, "fsid", &state.fsid);
    g(&mut c, "mon_host", &state.mon_host());
    g(
        &mut c,
        "mon_initial_members",
        &state
            .mons
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    // Daemons bind where the host serves (loopback for a standalone cluster).
    let address = host.address.to_string();
    g(&mut c, "public_network", &host.public_network);
    g(&mut c, "public_addr", &address);
    g(&mut c, "cluster_addr", &address);
    g(
        &mut c,
        "ms_bind_ipv6",
        if host.address.is_ipv6() {
            "true"
        } else {
            "false"
        },
    );
    let overridden =
        |key: &str| database_key(key) && inputs.overrides.values().any(|o| o.contains_key(key));
    for (k, v) in [
        // cephx everywhere, no insecure reclaim.
        ("auth_cluster_required", "cephx"),
        ("auth_service_required", "cephx"),
        ("auth_client_required", "cephx"),
        ("auth_allow_insecure_global_id_reclaim", "false"),
        ("mon_warn_on_insecure_global_id_reclaim_allowed", "false"),
        // One host: replicas go to different OSDs (must be set before the mon store is made).
        ("osd_crush_chooseleaf_type", "0"),
        ("osd_pool_default_size", "3"),
        ("osd_pool_default_min_size", "2"),
        ("osd_pool_default_pg_num", "8"),
        ("osd_pool_default_pgp_num", "8"),
        // The autoscaler overshoots mon_max_pg_per_osd when every PG lives on every OSD.
        ("osd_pool_default_pg_autoscale_mode", "off"),
        ("mon_max_pg_per_osd", "500"),
        ("mon_allow_pool_delete", "true"),
        // The data dir's disk is shared with everything else on the host; warn only when really low.
        ("mon_data_avail_warn", "2"),
        ("mon_data_avail_crit", "1"),
        ("mon_memory_target", "268435456"),
        ("mgr_initial_modules", "iostat"),
        // A hung OSD must be marked down even though all OSDs share one host.
        ("mon_osd_reporter_subtree_level", "osd"),
        ("osd_heartbeat_grace", "10"),
        ("mon_osd_down_out_interval", "60"),
        ("mon_warn_on_pool_no_redundancy", "true"),
        // A pool at 85% of its quota is named as nearfull (POOL_NEAR_FULL), as OSDs are at 85% of their
        // capacity; Ceph's default (0) says nothing until the pool is full. Volumes' file systems stop
        // taking new data a margin before the quota (see the volumes crate's `room`), so this is where
        // their users see ENOSPC coming.
        ("mon_pool_quota_warn_threshold", "85"),
        // PG states reach `status` through two 5 s timers (OSD -> mgr stats, mgr -> mon digest); on a
        // small cluster 1 s costs little and makes health visible seconds sooner.
        ("mgr_stats_period", "1"),
        ("mon_mgr_digest_period", "1"),
        // Every pool, key and filesystem change waits for the mons' next proposal; the 1 s default
        // batching window made each step of setting up a store or filesystem take a second.
        ("paxos_propose_interval", "0.1"),
    ] {
        if !overridden(k) {
            g(&mut c, k, v);
        }
    }
    for p in placement {
        c.set(&p.section, &p.key, p.value.as_str());
    }
    // A mon of this host binds where the state records it: in the monmap already, or joining it.
    for m in state
        .mons
        .iter()
        .filter(|m| m.host.as_deref() == Some(host.name.as_str()))
    {
        c.set(&format!("mon.{}", m.id), "public_addrv", m.addrvec());
    }
    // OSDs file themselves under their host's CRUSH bucket: the rookery host name, which hosts on one
    // machine (the tests' namespaces) do not share with the machine's own name.
    c.set(
        "osd",
        "crush_location",
        format!("root=default host={}", host.name),
    );
    // A gateway logs where the other clients do (its own section would otherwise inherit none).
    let client_log = placement
        .iter()
        .find(|p| p.section == "client" && p.key == "log_file")
        .map(|p| p.value.clone());
    c.set("osd", "osd_objectstore", "bluestore");
    c.set("osd", "bluestore_block_create", "true");
    c.set(
        "osd",
        "bluestore_block_size",
        inputs.osd_file_size.to_string(),
    );
    for (section, k, v) in DAEMON_DEFAULTS {
        if !overridden(k) {
            c.set(section, k, *v);
        }
    }
    for (store, port) in &inputs.gateways {
        let section = format!("client.rgw.{store}");
        // The zone is named after the store, so its pools are `<store>.rgw.*` as in Rook.
        for k in ["rgw_realm", "rgw_zonegroup", "rgw_zone"] {
            c.set(&section, k, store.as_str());
        }
        // Loopback only; without tcp_nodelay every small GET waits ~40 ms for a delayed ACK.
        c.set(
            &section,
            "rgw_frontends",
            format!(
                "beast endpoint={} tcp_nodelay=1",
                std::net::SocketAddr::new(host.address, *port)
            ),
        );
        for (k, v) in GATEWAY_DEFAULTS {
            if !overridden(k) {
                c.set(&section, k, *v);
            }
        }
        if let Some(log) = &client_log {
            c.set(&section, "log_file", log.as_str());
        }
    }
    // The spec's options live in the mons' config database (see `database`), where running daemons
    // see changes; only those a daemon needs before it can reach the mons stay here.
    for (section, options) in &inputs.overrides {
        for (k, v) in options.iter().filter(|(k, _)| !database_key(k)) {
            c.set(section, k, v.as_str());
        }
    }
    c.render()
}

/// rookery's own settings for the daemons (the lowest targets Ceph accepts on a small host). Written to
/// ceph.conf, unless the spec sets the same option: then they move to the config database with it, so
/// that the spec's value is not hidden behind a file value (a daemon prefers its file over the mons).
const DAEMON_DEFAULTS: &[(&str, &str, &str)] = &[
    // The lowest target Ceph accepts; OSDs still peak near 1 GiB.
    ("osd", "osd_memory_target", "939524096"),
    ("osd", "osd_memory_cache_min", "67108864"),
    ("osd", "osd_op_num_shards", "2"),
    ("osd", "osd_op_num_threads_per_shard", "1"),
    // RocksDB's memtables of 16.2 (256 MiB each, up to 4, and a 1 GiB WAL) are sized for large disks:
    // a flush needs that much free space at once, and an OSD file of a few GiB that is nearly full
    // aborted when BlueFS could not allocate 282 MiB for one ("unrecognized error code"), then stalled
    // its PGs in peering for the 10 min of `bluefs_failed_shared_alloc_cooldown`. Ceph 18 ships 16 MiB
    // memtables; 32 MiB keeps a flush small on any OSD and the memtables within 128 MiB of memory.
    (
        "osd",
        "bluestore_rocksdb_options_annex",
        "write_buffer_size=33554432,max_total_wal_size=268435456",
    ),
    // A just-made store is empty; checking it costs a second per OSD at creation.
    ("osd", "bluestore_fsck_on_mkfs", "false"),
    // A stopping OSD tells the mons at once, so a restart is not mistaken for an OSD still up.
    ("osd", "osd_fast_shutdown_notify_mon", "true"),
    // The default cache target is 4 GiB; a small host runs several MDS daemons.
    ("mds", "mds_cache_memory_limit", "134217728"),
];

/// rookery's own settings for gateways, the ones `rookery bench objects` holds its reference gateway
/// to: 64 threads (the default 512 cost 100 MiB and nothing in speed), and no per-request log lines
/// written or gathered: at debug_rgw 1/5 a 4 KiB GET took 1.2 ms against 1.0 ms without (the access
/// log comes back with `cephConfig: {"client.rgw.<store>": {debug_rgw: "1/5"}}` in the spec).
const GATEWAY_DEFAULTS: &[(&str, &str)] = &[
    ("rgw_thread_pool_size", "64"),
    ("debug_rgw", "0/0"),
    ("debug_ms", "0/0"),
    ("debug_objecter", "0/0"),
    ("debug_rados", "0/0"),
];

/// Whether a spec option belongs in the mons' config database rather than ceph.conf: all but those
/// a daemon or tool reads before it talks to the mons (identity, addresses, auth, where its files are,
/// how OSD stores are made with `--no-mon-config`).
fn database_key(key: &str) -> bool {
    const FILE_ONLY: &[&str] = &[
        "fsid",
        "mon_host",
        "mon_initial_members",
        "public_network",
        "public_addr",
        "cluster_network",
        "cluster_addr",
        "ms_bind_ipv6",
        "ms_bind_ipv4",
        // Read when the mon store is made.
        "osd_crush_chooseleaf_type",
        "run_dir",
        "crash_dir",
        "log_file",
        "keyring",
        "mon_data",
        "mgr_data",
        "osd_data",
        "mds_data",
        "osd_objectstore",
        "bluestore_block_path",
        "bluestore_block_size",
        "bluestore_block_create",
        "bluestore_fsck_on_mkfs",
        "rgw_frontends",
        "rgw_realm",
        "rgw_zonegroup",
        "rgw_zone",
    ];
    !(FILE_ONLY.contains(&key) || key.starts_with("auth_") || key.starts_with("ms_"))
}

/// What the mons' config database should hold: (section, option) -> value. The spec's `cephConfig`
/// (options a daemon can take from the mons), plus rookery's own values of the options it overrides,
/// in their sections, so daemons it does not name keep them.
pub fn database(inputs: &ConfInputs) -> BTreeMap<(String, String), String> {
    let mut db = BTreeMap::new();
    for (section, options) in &inputs.overrides {
        for (k, v) in options.iter().filter(|(k, _)| database_key(k)) {
            db.insert((section.clone(), k.clone()), v.clone());
        }
    }
    for (section, k, v) in DAEMON_DEFAULTS {
        let overridden = inputs.overrides.values().any(|o| o.contains_key(*k));
        let key = (section.to_string(), k.to_string());
        if overridden && !db.contains_key(&key) {
            db.insert(key, v.to_string());
        }
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MonRecord;

    #[test]
    fn spec_options_leave_the_file_and_paths_point_into_the_data_dir() {
        let placement = rookery_platform::local_stores::DataDirStores { root: "/d".into() };
        let state = ClusterState {
            name: "c".into(),
            fsid: "F".into(),
            mons: vec![MonRecord {
                id: "a".into(),
                host: Some("h1".into()),
                address: "10.0.0.5".parse().unwrap(),
                v2_port: 4000,
                v1_port: 4001,
            }],
            osds: vec![],
            created_unix: 0,
            ceph_version: None,
            config_applied: Default::default(),
            config_settled: None,
            member_user: None,
            removed: false,
        };
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "global".to_string(),
            BTreeMap::from([("mon_data_avail_warn".to_string(), "10".to_string())]),
        );
        overrides.insert(
            "client.rgw.s3".to_string(),
            BTreeMap::from([("debug_rgw".to_string(), "1/5".to_string())]),
        );
        let text = render(
            &state,
            &ConfInputs {
                osd_file_size: 1 << 30,
                overrides,
                gateways: vec![("s3".into(), 8080)],
            },
            &rookery_platform::Host {
                name: "h1".into(),
                address: "10.0.0.5".parse().unwrap(),
                public_network: "10.0.0.0/24".into(),
                labels: Default::default(),
            },
            &rookery_platform::Stores::conf_settings(&placement, "h1"),
        );
        assert!(
            text.contains("mon_host = [v2:10.0.0.5:4000,v1:10.0.0.5:4001]"),
            "{text}"
        );
        assert!(
            text.contains("public_network = 10.0.0.0/24")
                && text.contains("public_addr = 10.0.0.5"),
            "{text}"
        );
        assert!(
            text.contains("[client.rgw.s3]")
                && text.contains("rgw_frontends = beast endpoint=10.0.0.5:8080 tcp_nodelay=1")
                && text.contains("rgw_zone = s3"),
            "{text}"
        );
        // The spec's value goes to the config database, and rookery's own leaves the file.
        assert!(!text.contains("mon_data_avail_warn"), "{text}");
        assert!(!text.contains("debug_rgw"), "{text}");
        assert!(
            text.contains("rgw_thread_pool_size = 64") && text.contains("debug_rados = 0/0"),
            "{text}"
        );
        assert!(text.contains("bluestore_block_path = /d/osd/$cluster-$id.block"));
        assert!(text.contains("mgr_data = /d/mgr/$cluster-$id"));
        assert!(
            text.contains("[client.rgw.s3]")
                && text.contains("log_file = /d/log/$cluster-$name.log")
        );
        assert!(text.contains("bluestore_block_size = 1073741824"));
    }
}

#[cfg(test)]
mod database_tests {
    use super::*;

    #[test]
    fn spec_options_go_to_the_database_with_the_defaults_they_displace() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "osd.1".to_string(),
            BTreeMap::from([
                ("osd_memory_target".to_string(), "2147483648".to_string()),
                ("bluestore_block_size".to_string(), "1".to_string()),
            ]),
        );
        overrides.insert(
            "global".to_string(),
            BTreeMap::from([("osd_pool_default_size".to_string(), "1".to_string())]),
        );
        let db = database(&ConfInputs {
            overrides,
            ..Default::default()
        });
        let get = |s: &str, k: &str| db.get(&(s.to_string(), k.to_string())).cloned();
        assert_eq!(
            get("osd.1", "osd_memory_target").as_deref(),
            Some("2147483648")
        );
        // The other OSDs keep rookery's target, now from the database too.
        assert_eq!(
            get("osd", "osd_memory_target").as_deref(),
            Some("939524096")
        );
        assert_eq!(get("global", "osd_pool_default_size").as_deref(), Some("1"));
        // How stores are made stays in the file (mkfs runs without the mons).
        assert_eq!(get("osd.1", "bluestore_block_size"), None);
        assert_eq!(db.len(), 3);
    }
}
