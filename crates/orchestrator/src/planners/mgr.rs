//! The mgr daemons and the mgr modules the spec asks for.

use std::collections::BTreeSet;

use crate::desired::Desired;
use crate::plan::{CephView, Observed, Step};
use crate::planners::{start_unless_running, Partial};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MgrError {
    #[error("standby mgr.{id} waits for a host of its own: join another host (`rookery host add NAME` prints its token), or set spec.mgr.count to 1")]
    NoHostForMgr { id: String },
}

/// The mgrs this host runs: all of them where several may share a host, else the first; the standbys
/// go to hosts that joined.
fn local_ids(desired: &Desired) -> &[String] {
    if desired.mgr_allow_multiple {
        &desired.mgr_ids
    } else {
        &desired.mgr_ids[..desired.mgr_ids.len().min(1)]
    }
}

pub fn plan_daemons(desired: &Desired, observed: &Observed) -> Partial<MgrError> {
    let mut p = Partial::default();
    for id in local_ids(desired) {
        let daemon = format!("mgr.{id}");
        if !observed.mgr_keyrings.contains(id) {
            // Started in the same pass: steps run in order and stop at the first failure.
            p.step(Step::CreateMgrKey { id: id.clone() });
            p.step(Step::Start { daemon });
        } else if let Some(s) = start_unless_running(&observed.running, daemon) {
            p.step(s);
        }
    }
    p
}

/// Standby mgrs not run here get a joined host that runs and has no mgr yet.
pub fn place(desired: &Desired, observed: &Observed, ceph: &CephView) -> Partial<MgrError> {
    let mut p = Partial::default();
    let local = local_ids(desired);
    let mut taken: BTreeSet<&String> = ceph.mgr_placements.values().collect();
    let alive = |h: &String| {
        ceph.crush_hosts.get(h).is_none_or(|osds| {
            osds.iter()
                .any(|id| ceph.osds.get(id).is_some_and(|v| v.up))
        })
    };
    for id in desired.mgr_ids.iter().filter(|id| !local.contains(id)) {
        if ceph.mgr_placements.contains_key(id) {
            continue;
        }
        let host = ceph.members.iter().find(|h| {
            **h != observed.home
                && !ceph.removals.contains_key(*h)
                && alive(h)
                && !taken.contains(h)
        });
        match host {
            Some(h) => {
                p.step(Step::PlaceMgr {
                    id: id.clone(),
                    host: h.clone(),
                });
                taken.insert(h);
            }
            None => p.refuse(MgrError::NoHostForMgr { id: id.clone() }),
        }
    }
    p
}

/// On a host that joined: the standby mgrs placed here get their key and run; one placed elsewhere
/// since stops.
pub fn plan_joined(observed: &Observed, ceph: &CephView) -> Vec<Step> {
    let mut steps = Vec::new();
    for (id, host) in &ceph.mgr_placements {
        if *host != observed.home {
            continue;
        }
        let daemon = format!("mgr.{id}");
        if !observed.mgr_keyrings.contains(id) {
            steps.push(Step::CreateMgrKey { id: id.clone() });
            steps.push(Step::Start { daemon });
        } else if let Some(s) = start_unless_running(&observed.running, daemon) {
            steps.push(s);
        }
    }
    for daemon in observed.running.iter().filter(|d| d.starts_with("mgr.")) {
        let id = &daemon["mgr.".len()..];
        if ceph.mgr_placements.get(id) != Some(&observed.home) {
            steps.push(Step::Stop {
                daemon: daemon.clone(),
            });
        }
    }
    steps
}

/// Modules to enable, or why not yet (no mgr available).
pub fn plan_modules(desired: &Desired, ceph: &CephView) -> (Partial<MgrError>, Option<String>) {
    let mut p = Partial::default();
    if !ceph.mgr_available {
        let waiting = (!desired.mgr_modules.is_empty())
            .then(|| "waiting for a mgr to become available".to_string());
        return (p, waiting);
    }
    for m in &desired.mgr_modules {
        if !ceph.modules_enabled.contains(m) {
            p.step(Step::EnableMgrModule { name: m.clone() });
        }
    }
    (p, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planners::tests::{desired, set};

    #[test]
    fn standby_mgrs_go_to_joined_hosts_that_run() {
        let mut d = desired();
        d.mgr_ids = vec!["a".into(), "b".into()];
        let o = Observed {
            home: "h1".into(),
            ..Default::default()
        };
        // Only the first runs here.
        assert_eq!(plan_daemons(&d, &o).steps.len(), 2);
        let mut ceph = CephView {
            members: vec!["h1".into()],
            ..Default::default()
        };
        assert_eq!(
            place(&d, &o, &ceph).refused,
            [MgrError::NoHostForMgr { id: "b".into() }]
        );
        ceph.members.push("h2".into());
        assert_eq!(
            place(&d, &o, &ceph).steps,
            [Step::PlaceMgr {
                id: "b".into(),
                host: "h2".into()
            }]
        );
        ceph.mgr_placements.insert("b".into(), "h2".into());
        assert!(place(&d, &o, &ceph).steps.is_empty());
        let joined = Observed {
            home: "h2".into(),
            ..Default::default()
        };
        assert_eq!(
            plan_joined(&joined, &ceph),
            [
                Step::CreateMgrKey { id: "b".into() },
                Step::Start {
                    daemon: "mgr.b".into()
                }
            ]
        );
    }

    #[test]
    fn a_mgr_without_a_key_gets_one_and_starts_in_the_same_pass() {
        let d = desired();
        let mut o = Observed::default();
        assert_eq!(
            plan_daemons(&d, &o).steps,
            [
                Step::CreateMgrKey { id: "a".into() },
                Step::Start {
                    daemon: "mgr.a".into()
                }
            ]
        );
        o.mgr_keyrings = set(&["a"]);
        assert_eq!(
            plan_daemons(&d, &o).steps,
            [Step::Start {
                daemon: "mgr.a".into()
            }]
        );
        o.running = set(&["mgr.a"]);
        assert!(plan_daemons(&d, &o).steps.is_empty());
    }

    #[test]
    fn modules_wait_for_an_available_mgr() {
        let d = desired();
        let mut ceph = CephView::default();
        let (p, waiting) = plan_modules(&d, &ceph);
        assert!(p.steps.is_empty());
        assert!(waiting.is_some());
        ceph.mgr_available = true;
        let (p, waiting) = plan_modules(&d, &ceph);
        assert_eq!(
            p.steps,
            [Step::EnableMgrModule {
                name: "pg_autoscaler".into()
            }]
        );
        assert!(waiting.is_none());
        ceph.modules_enabled = set(&["pg_autoscaler"]);
        assert!(plan_modules(&d, &ceph).0.steps.is_empty());
    }
}
