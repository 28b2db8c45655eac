//! Pools: made (replicated or erasure-coded), tagged for their application, and kept at the spec's size,
//! quotas, parameters and device class.

use crate::desired::Desired;
use crate::plan::{
    pool_rule, same_setting, spreads_over_hosts, CephView, Step, DEFAULT_RULE, HOST_RULE,
};
use crate::planners::Partial;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error(
        "pool {pool}: an erasure-coded pool's chunks cannot change ({size} now); create a new pool"
    )]
    ErasureChunksFixed { pool: String, size: u32 },
    #[error("pool {pool}: no OSD has device class {class:?} (this cluster has: {}); change spec.deviceClass", .classes.join(", "))]
    NoSuchDeviceClass {
        pool: String,
        class: String,
        classes: Vec<String>,
    },
}

pub fn plan(desired: &Desired, ceph: &CephView) -> Partial<PoolError> {
    let mut p = Partial::default();
    for pool in &desired.pools {
        let Some(have) = ceph.pools.get(&pool.name) else {
            p.step(match pool.erasure {
                Some((k, m)) => Step::CreateErasurePool {
                    name: pool.name.clone(),
                    data_chunks: k,
                    coding_chunks: m,
                },
                None => Step::CreatePool {
                    name: pool.name.clone(),
                    size: pool.size,
                },
            });
            p.step(Step::EnablePoolApplication {
                name: pool.name.clone(),
                application: pool.application.clone(),
            });
            continue;
        };
        if let Some((k, m)) = pool.erasure {
            if have.size != k + m {
                p.refuse(PoolError::ErasureChunksFixed {
                    pool: pool.name.clone(),
                    size: have.size,
                });
            }
        } else if have.size != pool.size {
            p.step(Step::SetPoolSize {
                name: pool.name.clone(),
                size: pool.size,
            });
        }
        for (field, want, got) in [
            ("max_bytes", pool.quota_bytes, have.quota_bytes),
            ("max_objects", pool.quota_objects, have.quota_objects),
        ] {
            if want != got {
                p.step(Step::SetPoolQuota {
                    name: pool.name.clone(),
                    field: field.into(),
                    value: want,
                });
            }
        }
        for (key, want) in &pool.parameters {
            let current = have.parameters.get(key).cloned().flatten();
            if !current.is_some_and(|c| same_setting(want, &c)) {
                p.step(Step::SetPoolParameter {
                    name: pool.name.clone(),
                    key: key.clone(),
                    value: want.clone(),
                });
            }
        }
        let class_missing = pool
            .device_class
            .as_ref()
            .filter(|c| !ceph.device_classes.contains(*c));
        if let Some(class) = class_missing {
            p.refuse(PoolError::NoSuchDeviceClass {
                pool: pool.name.clone(),
                class: class.clone(),
                classes: ceph.device_classes.iter().cloned().collect(),
            });
        } else if pool.erasure.is_none() {
            // An erasure-coded pool's rule comes with its profile.
            let by_host = spreads_over_hosts(pool.across_hosts, pool.size, ceph.hosts_staying());
            let class = pool.device_class.as_deref();
            use_rule(&mut p, ceph, &pool.name, have.crush_rule, class, by_host);
        }
        // The mark lives in the application's metadata, so it waits for the application to be enabled.
        if pool.over_commit != have.over_commit && have.applications.contains(&pool.application) {
            p.step(Step::SetPoolOverCommit {
                name: pool.name.clone(),
                allowed: pool.over_commit,
            });
        }
        if !have.applications.contains(&pool.application) {
            p.step(Step::EnablePoolApplication {
                name: pool.name.clone(),
                application: pool.application.clone(),
            });
        }
    }
    // Pools the spec does not name (the mgr's) follow the hosts too, when they are on one of the two
    // rules rookery chooses between.
    for (name, have) in &ceph.pools {
        if desired.pools.iter().any(|d| &d.name == name) {
            continue;
        }
        let on = |rule: &str| ceph.rules.get(rule) == Some(&have.crush_rule);
        if on(DEFAULT_RULE) || on(HOST_RULE) {
            let by_host = spreads_over_hosts(true, have.size, ceph.hosts_staying());
            use_rule(&mut p, ceph, name, have.crush_rule, None, by_host);
        }
    }
    p
}

/// Moves a replicated pool to the rule for its class and spread, made first when missing.
fn use_rule(
    p: &mut Partial<PoolError>,
    ceph: &CephView,
    pool: &str,
    current: i64,
    class: Option<&str>,
    by_host: bool,
) {
    let rule = pool_rule(class, by_host);
    match ceph.rules.get(&rule) {
        None if rule == DEFAULT_RULE => {}
        None => {
            let create = Step::CreateRule {
                rule: rule.clone(),
                class: class.map(String::from),
                domain: if by_host { "host" } else { "osd" }.into(),
            };
            if !p.steps.contains(&create) {
                p.step(create);
            }
            p.step(Step::SetPoolRule {
                name: pool.to_string(),
                rule,
            });
        }
        Some(id) if *id != current => p.step(Step::SetPoolRule {
            name: pool.to_string(),
            rule,
        }),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::DesiredPool;
    use crate::plan::PoolView;
    use crate::planners::tests::{desired, set};
    use std::collections::BTreeMap;

    fn ec_pool() -> DesiredPool {
        DesiredPool {
            name: "ec".into(),
            erasure: Some((2, 1)),
            application: "rbd".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_pool_is_made_then_tagged() {
        let mut d = desired();
        d.pools.push(ec_pool());
        let p = plan(&d, &CephView::default());
        assert_eq!(
            p.steps,
            [
                Step::CreatePool {
                    name: "replicapool".into(),
                    size: 3
                },
                Step::EnablePoolApplication {
                    name: "replicapool".into(),
                    application: "rbd".into()
                },
                Step::CreateErasurePool {
                    name: "ec".into(),
                    data_chunks: 2,
                    coding_chunks: 1
                },
                Step::EnablePoolApplication {
                    name: "ec".into(),
                    application: "rbd".into()
                },
            ]
        );
        assert!(p.refused.is_empty());
    }

    #[test]
    fn copies_move_to_hosts_once_there_are_enough_and_back_when_there_are_not() {
        let mut d = desired();
        d.pools[0].across_hosts = true;
        let mut ceph = CephView::default();
        ceph.rules.insert(DEFAULT_RULE.into(), 0);
        for name in ["replicapool", ".mgr"] {
            ceph.pools.insert(
                name.into(),
                PoolView {
                    size: 3,
                    applications: set(&[if name == ".mgr" { "mgr" } else { "rbd" }]),
                    crush_rule: 0,
                    ..Default::default()
                },
            );
        }
        let hosts = |n: usize| -> BTreeMap<String, Vec<u32>> {
            (0..n).map(|i| (format!("h{i}"), vec![i as u32])).collect()
        };
        // Two hosts for three copies: they stay on different OSDs.
        ceph.crush_hosts = hosts(2);
        assert!(plan(&d, &ceph).steps.is_empty());
        // A third host: the rule is made and both pools move (the mgr's too).
        ceph.crush_hosts = hosts(3);
        let set_rule = |pool: &str, rule: &str| Step::SetPoolRule {
            name: pool.into(),
            rule: rule.into(),
        };
        assert_eq!(
            plan(&d, &ceph).steps,
            [
                Step::CreateRule {
                    rule: HOST_RULE.into(),
                    class: None,
                    domain: "host".into()
                },
                set_rule("replicapool", HOST_RULE),
                set_rule(".mgr", HOST_RULE),
            ]
        );
        ceph.rules.insert(HOST_RULE.into(), 1);
        for v in ceph.pools.values_mut() {
            v.crush_rule = 1;
        }
        assert!(plan(&d, &ceph).steps.is_empty());
        // A pool that asks for OSDs stays there.
        d.pools[0].across_hosts = false;
        assert_eq!(
            plan(&d, &ceph).steps,
            [set_rule("replicapool", DEFAULT_RULE)]
        );
        // A host gone for good: back to different OSDs.
        d.pools[0].across_hosts = true;
        ceph.crush_hosts = hosts(2);
        assert_eq!(
            plan(&d, &ceph).steps,
            [
                set_rule("replicapool", DEFAULT_RULE),
                set_rule(".mgr", DEFAULT_RULE)
            ]
        );
    }

    #[test]
    fn changed_chunks_and_unknown_device_classes_are_refused() {
        let mut d = desired();
        d.pools = vec![ec_pool()];
        d.pools[0].device_class = Some("nvme".into());
        let mut ceph = CephView {
            device_classes: set(&["hdd"]),
            ..Default::default()
        };
        ceph.pools.insert(
            "ec".into(),
            PoolView {
                size: 4,
                applications: set(&["rbd"]),
                ..Default::default()
            },
        );
        let p = plan(&d, &ceph);
        assert!(p.steps.is_empty(), "{:?}", p.steps);
        assert_eq!(
            p.refused,
            [
                PoolError::ErasureChunksFixed {
                    pool: "ec".into(),
                    size: 4
                },
                PoolError::NoSuchDeviceClass {
                    pool: "ec".into(),
                    class: "nvme".into(),
                    classes: vec!["hdd".into()]
                }
            ]
        );
        assert!(p.refused[1].to_string().contains("this cluster has: hdd"));
    }

    #[test]
    fn over_commit_is_marked_and_unmarked_once_the_pool_is_tagged() {
        let mut d = desired();
        d.pools = vec![DesiredPool {
            over_commit: true,
            ..ec_pool()
        }];
        let view = |applications: &[&str], over_commit: bool| {
            let mut ceph = CephView::default();
            ceph.pools.insert(
                "ec".into(),
                PoolView {
                    size: 3,
                    applications: set(applications),
                    over_commit,
                    ..Default::default()
                },
            );
            ceph
        };
        let mark = |allowed| Step::SetPoolOverCommit {
            name: "ec".into(),
            allowed,
        };
        // Untagged: tagged first, marked on the next pass.
        assert!(!plan(&d, &view(&[], false)).steps.contains(&mark(true)));
        assert_eq!(plan(&d, &view(&["rbd"], false)).steps, [mark(true)]);
        assert!(plan(&d, &view(&["rbd"], true)).steps.is_empty());
        d.pools[0].over_commit = false;
        assert_eq!(plan(&d, &view(&["rbd"], true)).steps, [mark(false)]);
    }
}
