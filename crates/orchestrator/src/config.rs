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
        // PG states reach `status` through two 5 s timers (OSD -> mgr stats, mgr -> mon digest); on a
        // small cluster 1 s costs little and makes health visible seconds sooner.
        ("mgr_stats_period", "1"),
        ("mon_mgr_digest_period", "1"),
        // Every pool, key and filesystem change waits for the mons' next proposal; the 1 s default
        // batching window made each step of setting up a store or filesystem take a second.
        ("paxos_propose_interval", "0.1"),
    ] {
        g(&mut c, k, v);
    }
    for p in placement {
        c.set(&p.section, &p.key, p.value.as_str());
    }
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
    for (k, v) in [
        // The lowest target Ceph accepts; OSDs still peak near 1 GiB.
        ("osd_memory_target", "939524096"),
        ("osd_memory_cache_min", "67108864"),
        ("osd_op_num_shards", "2"),
        ("osd_op_num_threads_per_shard", "1"),
        // A just-made store is empty; checking it costs a second per OSD at creation.
        ("bluestore_fsck_on_mkfs", "false"),
    ] {
        c.set("osd", k, v);
    }
    // The default cache target is 4 GiB; a small host runs several MDS daemons.
    c.set("mds", "mds_cache_memory_limit", "134217728");
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
        c.set(&section, "rgw_thread_pool_size", "64");
        if let Some(log) = &client_log {
            c.set(&section, "log_file", log.as_str());
        }
    }
    for (section, options) in &inputs.overrides {
        for (k, v) in options {
            c.set(section, k, v.as_str());
        }
    }
    c.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MonRecord;

    #[test]
    fn overrides_win_and_paths_point_into_the_data_dir() {
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
        };
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "global".to_string(),
            BTreeMap::from([("mon_data_avail_warn".to_string(), "10".to_string())]),
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
        assert!(text.contains("mon_data_avail_warn = 10"));
        assert!(!text.contains("mon_data_avail_warn = 2"));
        assert!(text.contains("bluestore_block_path = /d/osd/$cluster-$id.block"));
        assert!(text.contains("mgr_data = /d/mgr/$cluster-$id"));
        assert!(
            text.contains("[client.rgw.s3]")
                && text.contains("log_file = /d/log/$cluster-$name.log")
        );
        assert!(text.contains("bluestore_block_size = 1073741824"));
    }
}
