//! One planner per kind of thing the cluster is made of. Each is a pure function of what is desired and
//! what was observed, returns the steps to take now and the differences it refuses to act on (its own
//! error type, so a refusal is a value a caller can match, not a sentence), and has its own unit tests.
//! [`crate::plan::plan`] runs them in the order the cluster is built in.

pub mod config_db;
pub mod filesystems;
pub mod hosts;
pub mod mgr;
pub mod mons;
pub mod object_stores;
pub mod osds;
pub mod pools;
pub mod retire;
pub mod spread;
pub mod users;

use crate::plan::Step;

/// What one planner decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial<E> {
    pub steps: Vec<Step>,
    /// Differences it will not act on, with the reason.
    pub refused: Vec<E>,
}

impl<E> Default for Partial<E> {
    fn default() -> Self {
        Partial {
            steps: Vec::new(),
            refused: Vec::new(),
        }
    }
}

impl<E> Partial<E> {
    pub(crate) fn step(&mut self, step: Step) {
        self.steps.push(step);
    }

    pub(crate) fn refuse(&mut self, e: E) {
        self.refused.push(e);
    }
}

/// `Start` of a daemon unless it runs.
pub(crate) fn start_unless_running(
    running: &std::collections::BTreeSet<String>,
    daemon: String,
) -> Option<Step> {
    (!running.contains(&daemon)).then_some(Step::Start { daemon })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use crate::desired::{Desired, DesiredPool};

    /// One mon, one mgr, three OSDs and `replicapool`, with one mgr module.
    pub(crate) fn desired() -> Desired {
        Desired {
            name: "c".into(),
            mon_ids: vec!["a".into()],
            mon_allow_multiple: false,
            mon_failover: std::time::Duration::from_secs(600),
            mgr_ids: vec!["a".into()],
            mgr_allow_multiple: false,
            osd_count: 3,
            osd_size: 10 << 30,
            devices: Default::default(),
            mgr_modules: vec!["pg_autoscaler".into()],
            pools: vec![DesiredPool {
                name: "replicapool".into(),
                size: 3,
                application: "rbd".into(),
                ..Default::default()
            }],
            conf: Default::default(),
            notices: vec![],
            filesystems: vec![],
            object_stores: vec![],
            object_users: vec![],
        }
    }

    pub(crate) fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }
}
