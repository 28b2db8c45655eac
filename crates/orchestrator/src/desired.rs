//! What the spec asks for, reduced to what the planner needs (a pure translation).

use std::collections::BTreeMap;

use rookery_spec::Resources;

use crate::config::ConfInputs;

#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub mon_ids: Vec<String>,
    pub mgr_ids: Vec<String>,
    pub osd_count: u32,
    pub osd_size: u64,
    pub mgr_modules: Vec<String>,
    pub pools: Vec<DesiredPool>,
    pub conf: ConfInputs,
    /// Things accepted but adapted to this host, for the user to read.
    pub notices: Vec<String>,
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
        let pools = res
            .pools
            .iter()
            .map(|p| {
                if p.spec.failure_domain == "host" && p.spec.replicated.size > 1 && p.spec.erasure_coded.is_none() {
                    notices.push(format!(
                        "CephBlockPool/{}: spec.failureDomain: host: this standalone cluster has one host, so replicas are spread across OSDs instead",
                        p.metadata.name
                    ));
                }
                let quotas = p.spec.quotas.clone().unwrap_or_default();
                DesiredPool {
                    name: p.pool_name().to_string(),
                    size: p.spec.replicated.size,
                    application: "rbd".to_string(),
                    quota_bytes: quotas.bytes(),
                    quota_objects: quotas.max_objects.unwrap_or(0),
                    parameters: p.spec.parameters.clone(),
                    device_class: p.spec.device_class.clone(),
                    erasure: p.spec.erasure_coded.as_ref().map(|e| (e.data_chunks, e.coding_chunks)),
                }
            })
            .collect();
        Some(Desired {
            name: cluster.metadata.name.clone(),
            mon_ids: letter_ids(spec.mon.count),
            mgr_ids: letter_ids(spec.mgr.count),
            osd_count: files.as_ref().map(|f| f.count).unwrap_or(0),
            osd_size: files.as_ref().map(|f| f.size.0).unwrap_or(0),
            mgr_modules: spec
                .mgr
                .modules
                .iter()
                .filter(|m| m.enabled)
                .map(|m| m.name.clone())
                .collect(),
            pools,
            conf: ConfInputs {
                osd_file_size: files.map(|f| f.size.0).unwrap_or(0),
                overrides: spec.ceph_config.clone(),
            },
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
