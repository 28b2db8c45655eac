//! The mgr daemons and the mgr modules the spec asks for.

use crate::desired::Desired;
use crate::plan::{CephView, Observed, Step};
use crate::planners::{start_unless_running, Partial};

/// The mgr planner refuses nothing here (standby mgrs waiting for a host are [`super::spread`]'s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MgrError {}

/// The mgrs the leading host runs: all of them where several may share a host, else the first; the
/// standbys go to hosts that joined ([`super::spread`]).
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
