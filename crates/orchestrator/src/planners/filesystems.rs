//! CephFS: the leading host's MDS daemons (keys, started; those placed on joined hosts are
//! [`super::spread`]'s), the filesystem made on its pools, data pools added, `max_mds`
//! and standby-replay kept as the spec says; MDS daemons of filesystems no longer wanted stopped.

use std::collections::BTreeSet;

use crate::desired::Desired;
use crate::plan::{CephView, Observed, Step};
use crate::planners::{start_unless_running, Partial};

/// The filesystem planner refuses nothing: every difference can be acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {}

/// `placing`: daemons placed on joined hosts in this pass (not run here).
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    ceph: &CephView,
    placing: &BTreeSet<&String>,
) -> Partial<FsError> {
    // This host runs each MDS no host was given (nor is being given in this pass); one placed on it
    // runs too (`spread::run_placed`), so it is not stopped here.
    let unplaced =
        |daemon: &String| !ceph.placements.contains_key(daemon) && !placing.contains(daemon);
    let mut p = Partial::default();
    for fs in &desired.filesystems {
        for id in &fs.mds_ids {
            let daemon = format!("mds.{id}");
            if !unplaced(&daemon) {
                continue;
            }
            if !observed.mds_keyrings.contains(id) {
                p.step(Step::CreateMdsKey { id: id.clone() });
                p.step(Step::Start { daemon });
            } else if let Some(s) = start_unless_running(&observed.running, daemon) {
                p.step(s);
            }
        }
        let pools_exist = std::iter::once(&fs.metadata_pool)
            .chain(&fs.data_pools)
            .all(|pool| ceph.pools.contains_key(pool));
        if !pools_exist {
            continue;
        }
        let Some(have) = ceph.filesystems.get(&fs.name) else {
            if let Some(first) = fs.data_pools.first() {
                p.step(Step::CreateFilesystem {
                    name: fs.name.clone(),
                    metadata_pool: fs.metadata_pool.clone(),
                    data_pool: first.clone(),
                });
            }
            continue;
        };
        for pool in &fs.data_pools {
            if !have.data_pools.contains(pool) {
                p.step(Step::AddFsDataPool {
                    name: fs.name.clone(),
                    pool: pool.clone(),
                });
            }
        }
        if have.max_mds != fs.active_count {
            p.step(Step::SetFsOption {
                name: fs.name.clone(),
                var: "max_mds".into(),
                value: fs.active_count.to_string(),
            });
        }
        if have.standby_replay != fs.standby_replay {
            p.step(Step::SetFsOption {
                name: fs.name.clone(),
                var: "allow_standby_replay".into(),
                value: fs.standby_replay.to_string(),
            });
        }
    }
    let wanted: BTreeSet<String> = desired
        .filesystems
        .iter()
        .flat_map(|f| f.mds_ids.iter())
        .map(|id| format!("mds.{id}"))
        .filter(|daemon| {
            unplaced(daemon)
                || ceph
                    .placements
                    .get(daemon)
                    .is_some_and(|hosts| hosts.contains(&observed.home))
        })
        .collect();
    for daemon in &observed.running {
        if daemon.starts_with("mds.") && !wanted.contains(daemon) {
            p.step(Step::Stop {
                daemon: daemon.clone(),
            });
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planners::tests::set;

    #[test]
    fn mds_daemons_of_a_removed_filesystem_are_stopped() {
        let d = crate::planners::tests::desired();
        let o = Observed {
            running: set(&["mon.a", "mds.old-a", "mds.old-b"]),
            ..Default::default()
        };
        assert_eq!(
            plan(&d, &o, &CephView::default(), &BTreeSet::new()).steps,
            [
                Step::Stop {
                    daemon: "mds.old-a".into()
                },
                Step::Stop {
                    daemon: "mds.old-b".into()
                }
            ]
        );
    }
}
