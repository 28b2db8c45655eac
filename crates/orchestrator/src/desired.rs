//! What the spec asks for, reduced to what the planner needs (a pure translation).

use std::collections::BTreeMap;

use rookery_spec::Resources;

use crate::config::ConfInputs;
use crate::disks::SelectionSpec;

#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub mon_ids: Vec<String>,
    /// Several mons may share a host (`spec.mon.allowMultiplePerNode`); otherwise one per host.
    pub mon_allow_multiple: bool,
    /// How long a mon of a joined host may stay out of quorum before it is replaced on another host
    /// (Rook's `healthCheck.daemonHealth.mon.timeout`).
    pub mon_failover: std::time::Duration,
    pub mgr_ids: Vec<String>,
    /// Several mgrs may share a host (`spec.mgr.allowMultiplePerNode`); otherwise the standbys run on
    /// hosts that joined.
    pub mgr_allow_multiple: bool,
    /// OSD files (the `osdFiles` extension).
    pub osd_count: u32,
    pub osd_size: u64,
    /// Which devices become OSDs, per host.
    pub devices: DesiredDevices,
    pub mgr_modules: Vec<String>,
    /// Block pools, and the pools of filesystems and object stores.
    pub pools: Vec<DesiredPool>,
    pub filesystems: Vec<DesiredFs>,
    pub object_stores: Vec<DesiredStore>,
    pub object_users: Vec<DesiredUser>,
    pub conf: ConfInputs,
    /// Things accepted but adapted to this host, for the user to read.
    pub notices: Vec<String>,
}

/// Rook's device selection: cluster-wide, and per node (merged over the cluster-wide settings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredDevices {
    pub cluster: SelectionSpec,
    pub nodes: BTreeMap<String, SelectionSpec>,
    pub use_all_nodes: bool,
}

impl DesiredDevices {
    /// What `host` selects: its own entry; else, when nodes are listed without it and `useAllNodes` is
    /// off, nothing (as in Rook); else the cluster-wide selection.
    pub fn for_host(&self, host: &str) -> SelectionSpec {
        match self.nodes.get(host) {
            Some(s) => s.clone(),
            None if !self.nodes.is_empty() && !self.use_all_nodes => SelectionSpec::default(),
            None => self.cluster.clone(),
        }
    }

    fn from_spec(storage: &rookery_spec::StorageSpec) -> DesiredDevices {
        let named = |devices: &[rookery_spec::DeviceEntry]| -> Vec<(String, Option<String>)> {
            devices
                .iter()
                .map(|d| (d.target().to_string(), d.config.get("deviceClass").cloned()))
                .collect()
        };
        let cluster = SelectionSpec {
            use_all_devices: storage.use_all_devices,
            device_filter: storage.device_filter.clone(),
            device_path_filter: storage.device_path_filter.clone(),
            devices: named(&storage.devices),
            device_class: storage.config.get("deviceClass").cloned(),
        };
        let nodes = storage
            .nodes
            .iter()
            .map(|n| {
                let own = SelectionSpec {
                    use_all_devices: n.use_all_devices.unwrap_or(cluster.use_all_devices),
                    device_filter: n.device_filter.clone().or(cluster.device_filter.clone()),
                    device_path_filter: n
                        .device_path_filter
                        .clone()
                        .or(cluster.device_path_filter.clone()),
                    devices: if n.devices.is_empty() {
                        cluster.devices.clone()
                    } else {
                        named(&n.devices)
                    },
                    device_class: n
                        .config
                        .get("deviceClass")
                        .cloned()
                        .or(cluster.device_class.clone()),
                };
                (n.name.clone(), own)
            })
            .collect();
        DesiredDevices {
            cluster,
            nodes,
            use_all_nodes: storage.use_all_nodes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredPool {
    pub name: String,
    pub size: u32,
    pub application: String,
    /// 0 means no limit.
    pub quota_bytes: u64,
    pub quota_objects: u64,
    /// `osd pool set` settings.
    pub parameters: BTreeMap<String, String>,
    pub device_class: Option<String>,
    /// (data chunks, coding chunks) for an erasure-coded pool; None for a replicated one.
    pub erasure: Option<(u32, u32)>,
    /// Volumes may be larger than the quota (a CephBlockPool's `rookery.io/over-commit` annotation).
    pub over_commit: bool,
    /// Copies on different hosts once there are enough (`failureDomain: host`); else on different OSDs.
    pub across_hosts: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredFs {
    pub name: String,
    pub metadata_pool: String,
    /// The first is the default data pool.
    pub data_pools: Vec<String>,
    pub active_count: u32,
    pub standby_replay: bool,
    /// `<fs>-a`, `<fs>-b`, ...: one standby per active MDS.
    pub mds_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredStore {
    pub name: String,
    pub port: u16,
    /// Every pool the zone uses (metadata pools, `.rgw.root`, the data pool).
    pub pools: Vec<String>,
    /// How many hosts run a gateway of it (`spec.gateway.instances`), each on `port`.
    pub instances: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredUser {
    pub store: String,
    pub settings: rookery_objects::admin::UserSettings,
}

impl DesiredUser {
    /// A fingerprint of the settings, recorded once applied so a change is noticed.
    pub fn digest(&self) -> String {
        let s = &self.settings;
        crate::spec_digest(&format!(
            "{}\n{}\n{}\n{:?}\n{:?}\n{:?}",
            s.uid, s.display_name, s.caps, s.max_buckets, s.max_size, s.max_objects
        ))
    }
}

/// The pool a PoolSpec describes, tagged for `application`.
fn desired_pool(name: String, spec: &rookery_spec::PoolSpec, application: &str) -> DesiredPool {
    let quotas = spec.quotas.clone().unwrap_or_default();
    DesiredPool {
        name,
        size: spec.replicated.size,
        application: application.to_string(),
        quota_bytes: quotas.bytes(),
        quota_objects: quotas.max_objects.unwrap_or(0),
        parameters: spec.parameters.clone(),
        device_class: spec.device_class.clone(),
        erasure: spec
            .erasure_coded
            .as_ref()
            .map(|e| (e.data_chunks, e.coding_chunks)),
        over_commit: false,
        across_hosts: spec.failure_domain == "host",
    }
}

/// RGW's capability text for a user's `capabilities` (Rook's names are RGW's).
fn caps_text(caps: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<String> = caps
        .iter()
        .map(|(k, v)| {
            let perm = match v.replace(' ', "").as_str() {
                "read,write" => "*".to_string(),
                other => other.to_string(),
            };
            format!("{k}={perm}")
        })
        .collect();
    parts.sort();
    parts.join(";")
}

/// Daemon ids follow Ceph's habit: a, b, c, ...
fn letter_ids(count: u32) -> Vec<String> {
    (0..count)
        .map(|i| {
            let (q, r) = (i / 26, i % 26);
            let c = char::from(b'a' + r as u8);
            if q == 0 {
                c.to_string()
            } else {
                format!("{c}{q}")
            }
        })
        .collect()
}

impl Desired {
    /// None when the resources hold no CephCluster.
    pub fn from_resources(res: &Resources) -> Option<Desired> {
        let cluster = res.cluster.as_ref()?;
        let spec = &cluster.spec;
        let files = spec.storage.osd_files.clone();
        let mut notices: Vec<String> = res.notices.iter().map(|n| n.to_string()).collect();
        let mut pools: Vec<DesiredPool> = res
            .pools
            .iter()
            .map(|p| {
                if p.spec.failure_domain == "host" && p.spec.replicated.size > 1 && p.spec.erasure_coded.is_none() {
                    notices.push(format!(
                        "CephBlockPool/{}: spec.failureDomain: host: replicas are spread across OSDs until the cluster has as many hosts with OSDs as the pool has copies, then across hosts",
                        p.metadata.name
                    ));
                }
                DesiredPool {
                    over_commit: p.over_commit(),
                    ..desired_pool(p.pool_name().to_string(), &p.spec, "rbd")
                }
            })
            .collect();
        let mut filesystems = Vec::new();
        for fs in &res.filesystems {
            let name = fs.metadata.name.clone();
            pools.push(desired_pool(
                fs.metadata_pool_name(),
                &fs.spec.metadata_pool,
                "cephfs",
            ));
            for (pool, spec) in fs.data_pool_names().into_iter().zip(&fs.spec.data_pools) {
                pools.push(desired_pool(pool, spec, "cephfs"));
            }
            let mds = &fs.spec.metadata_server;
            filesystems.push(DesiredFs {
                metadata_pool: fs.metadata_pool_name(),
                data_pools: fs.data_pool_names(),
                active_count: mds.active_count,
                standby_replay: mds.active_standby,
                mds_ids: letter_ids(mds.active_count * 2)
                    .into_iter()
                    .map(|l| format!("{name}-{l}"))
                    .collect(),
                name,
            });
        }
        let mut object_stores = Vec::new();
        for st in &res.object_stores {
            let mut names = Vec::new();
            for pool in st.metadata_pool_names() {
                // `.rgw.root` is shared by every store; the first one made creates it.
                if !pools.iter().any(|p| p.name == pool) {
                    pools.push(desired_pool(pool.clone(), &st.spec.metadata_pool, "rgw"));
                }
                names.push(pool);
            }
            pools.push(desired_pool(st.data_pool_name(), &st.spec.data_pool, "rgw"));
            names.push(st.data_pool_name());
            object_stores.push(DesiredStore {
                name: st.metadata.name.clone(),
                port: u16::try_from(st.spec.gateway.port).unwrap_or(0),
                pools: names,
                instances: st.spec.gateway.instances,
            });
        }
        let object_users = res
            .object_users
            .iter()
            .map(|u| {
                let quotas = u.spec.quotas.clone().unwrap_or_default();
                DesiredUser {
                    store: u.spec.store.clone(),
                    settings: rookery_objects::admin::UserSettings {
                        uid: u.metadata.name.clone(),
                        display_name: u
                            .spec
                            .display_name
                            .clone()
                            .unwrap_or_else(|| u.metadata.name.clone()),
                        caps: caps_text(&u.spec.capabilities),
                        max_buckets: quotas.max_buckets,
                        max_size: quotas.max_size.map(|q| q.0),
                        max_objects: quotas.max_objects,
                    },
                }
            })
            .collect();
        Some(Desired {
            name: cluster.metadata.name.clone(),
            mon_ids: letter_ids(spec.mon.count),
            mon_allow_multiple: spec.mon.allow_multiple_per_node,
            mon_failover: spec.health_check.mon_timeout(),
            mgr_ids: letter_ids(spec.mgr.count),
            mgr_allow_multiple: spec.mgr.allow_multiple_per_node,
            osd_count: files.as_ref().map(|f| f.count).unwrap_or(0),
            osd_size: files.as_ref().map(|f| f.size.0).unwrap_or(0),
            devices: DesiredDevices::from_spec(&spec.storage),
            mgr_modules: spec
                .mgr
                .modules
                .iter()
                .filter(|m| m.enabled)
                .map(|m| m.name.clone())
                .collect(),
            conf: ConfInputs {
                osd_file_size: files.map(|f| f.size.0).unwrap_or(0),
                overrides: spec.ceph_config.clone(),
                gateways: object_stores
                    .iter()
                    .map(|s| (s.name.clone(), s.port))
                    .collect(),
            },
            pools,
            filesystems,
            object_stores,
            object_users,
            notices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_letters() {
        assert_eq!(letter_ids(3), vec!["a", "b", "c"]);
        assert_eq!(letter_ids(27)[26], "a1");
    }

    #[test]
    fn default_resources_translate() {
        let d = Desired::from_resources(&rookery_spec::default_resources()).unwrap();
        assert_eq!(d.mon_ids, vec!["a"]);
        assert_eq!(d.mgr_ids, vec!["a"]);
        assert_eq!(d.osd_count, 3);
        assert_eq!(d.osd_size, 10 << 30);
        assert_eq!(
            d.pools,
            vec![DesiredPool {
                name: "replicapool".into(),
                size: 3,
                application: "rbd".into(),
                ..Default::default()
            }]
        );
    }
}
