//! OSDs: unfinished ones finished, stopped ones started, missing ones added.

use crate::desired::Desired;
use crate::plan::{Observed, Step};
use crate::planners::{start_unless_running, Partial};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsdError {
    #[error("spec.storage.osdFiles.count is {want} but the cluster has {have} OSDs; removing OSDs is not supported yet")]
    RemovalUnsupported { want: u32, have: u32 },
}

pub fn plan(desired: &Desired, observed: &Observed) -> Partial<OsdError> {
    let mut p = Partial::default();
    for osd in &observed.osds {
        if !osd.store_ready {
            p.step(Step::FinishOsd {
                uuid: osd.uuid.clone(),
            });
        } else if let Some(id) = osd.id {
            if let Some(s) = start_unless_running(&observed.running, format!("osd.{id}")) {
                p.step(s);
            }
        }
    }
    let have = observed.osds.len() as u32;
    for _ in have..desired.osd_count {
        p.step(Step::AddOsd);
    }
    if have > desired.osd_count {
        p.refuse(OsdError::RemovalUnsupported {
            want: desired.osd_count,
            have,
        });
    }
    p
}

/// Whether all the OSDs the spec asks for run (object stores wait for it: their set-up blocks on PGs).
pub fn all_running(desired: &Desired, observed: &Observed) -> bool {
    desired.osd_count > 0
        && observed
            .osds
            .iter()
            .filter(|o| {
                o.id.is_some_and(|id| observed.running.contains(&format!("osd.{id}")))
            })
            .count() as u32
            >= desired.osd_count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ObservedOsd;
    use crate::planners::tests::{desired, set};

    fn osd(id: Option<u32>, ready: bool) -> ObservedOsd {
        ObservedOsd {
            uuid: format!("u{}", id.map_or(-1, i64::from)),
            id,
            store_ready: ready,
        }
    }

    #[test]
    fn unfinished_are_finished_stopped_started_missing_added() {
        let d = desired();
        let o = Observed {
            osds: vec![osd(Some(0), true), osd(None, false)],
            ..Default::default()
        };
        assert_eq!(
            plan(&d, &o).steps,
            [
                Step::Start {
                    daemon: "osd.0".into()
                },
                Step::FinishOsd { uuid: "u-1".into() },
                Step::AddOsd
            ]
        );
        assert!(!all_running(&d, &o));
    }

    #[test]
    fn fewer_osds_in_the_spec_is_refused_not_done() {
        let mut d = desired();
        d.osd_count = 1;
        let o = Observed {
            osds: vec![osd(Some(0), true), osd(Some(1), true)],
            running: set(&["osd.0", "osd.1"]),
            ..Default::default()
        };
        let p = plan(&d, &o);
        assert!(p.steps.is_empty());
        assert_eq!(
            p.refused,
            [OsdError::RemovalUnsupported { want: 1, have: 2 }]
        );
        assert!(all_running(&d, &o));
    }
}
