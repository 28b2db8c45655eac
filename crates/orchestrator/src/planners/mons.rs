//! Keys, ceph.conf and the mons: what a cluster needs before anything else can talk to it.

use crate::desired::Desired;
use crate::plan::{Observed, Step};
use crate::planners::{start_unless_running, Partial};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonError {
    #[error("mon.{id}: adding mons to an existing cluster is not supported yet; set spec.mon.count back to {have}")]
    AddingMonsUnsupported { id: String, have: usize },
}

/// What the mons need now. `bootstrapping` is true while nothing else can be planned (no keys, stale
/// config, or mon stores still to make).
pub fn plan(desired: &Desired, observed: &Observed) -> (Partial<MonError>, bool) {
    let mut p = Partial::default();
    if !observed.keys {
        p.step(Step::CreateKeys);
        return (p, true);
    }
    if !observed.conf_current {
        p.step(Step::WriteConfig);
        return (p, true);
    }
    let mut making_stores = false;
    for id in &desired.mon_ids {
        if !observed.mon_stores.contains(id) {
            if observed.mon_stores.is_empty() {
                p.step(Step::CreateMonStore { id: id.clone() });
                making_stores = true;
            } else {
                p.refuse(MonError::AddingMonsUnsupported {
                    id: id.clone(),
                    have: observed.mon_stores.len(),
                });
            }
        } else if let Some(s) = start_unless_running(&observed.running, format!("mon.{id}")) {
            p.step(s);
        }
    }
    (p, making_stores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planners::tests::{desired, set};

    #[test]
    fn keys_then_config_then_stores_then_starts() {
        let d = desired();
        let mut o = Observed::default();
        assert_eq!(plan(&d, &o).0.steps, [Step::CreateKeys]);
        o.keys = true;
        assert_eq!(plan(&d, &o).0.steps, [Step::WriteConfig]);
        o.conf_current = true;
        let (p, bootstrapping) = plan(&d, &o);
        assert_eq!(p.steps, [Step::CreateMonStore { id: "a".into() }]);
        assert!(bootstrapping);
        o.mon_stores = set(&["a"]);
        let (p, bootstrapping) = plan(&d, &o);
        assert_eq!(
            p.steps,
            [Step::Start {
                daemon: "mon.a".into()
            }]
        );
        assert!(!bootstrapping);
        o.running = set(&["mon.a"]);
        assert!(plan(&d, &o).0.steps.is_empty());
    }

    #[test]
    fn a_mon_added_to_a_running_cluster_is_refused() {
        let mut d = desired();
        d.mon_ids.push("b".into());
        let o = Observed {
            keys: true,
            conf_current: true,
            mon_stores: set(&["a"]),
            running: set(&["mon.a"]),
            ..Default::default()
        };
        let (p, _) = plan(&d, &o);
        assert!(p.steps.is_empty());
        assert_eq!(
            p.refused,
            [MonError::AddingMonsUnsupported {
                id: "b".into(),
                have: 1
            }]
        );
    }
}
