//! Pools: made (replicated or erasure-coded), tagged for their application, and kept at the spec's size,
//! quotas, parameters and device class.

use crate::desired::Desired;
use crate::plan::{class_rule, same_setting, CephView, Step};
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
        if let Some(class) = &pool.device_class {
            let rule = class_rule(class);
            if !ceph.device_classes.contains(class) {
                p.refuse(PoolError::NoSuchDeviceClass {
                    pool: pool.name.clone(),
                    class: class.clone(),
                    classes: ceph.device_classes.iter().cloned().collect(),
                });
            } else {
                match ceph.rules.get(&rule) {
                    None => {
                        p.step(Step::CreateClassRule {
                            rule: rule.clone(),
                            class: class.clone(),
                        });
                        p.step(Step::SetPoolRule {
                            name: pool.name.clone(),
                            rule,
                        });
                    }
                    Some(id) if *id != have.crush_rule => p.step(Step::SetPoolRule {
                        name: pool.name.clone(),
                        rule,
                    }),
                    Some(_) => {}
                }
            }
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
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::DesiredPool;
    use crate::plan::PoolView;
    use crate::planners::tests::{desired, set};

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
