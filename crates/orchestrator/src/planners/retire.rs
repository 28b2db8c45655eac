//! OSDs asked to leave (`osd rm`) or to move to a new device under their id (`osd replace`): marked out,
//! left running until Ceph says no data would lose a copy without them, then stopped, purged (or destroyed,
//! for a replacement) and their device freed. A request whose OSD is gone is done and dropped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::osd_requests::OsdRequests;
use crate::plan::{CephView, ObservedOsd, OsdBlock, Step};

/// Where one retiring OSD stands, for `status` and the CLI's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Retiring {
    pub id: u32,
    /// `marking out`, `moving data`, `removing`.
    pub phase: String,
    /// PGs still on it while its data moves.
    pub pgs_left: Option<u32>,
    /// The device its successor is made on (`osd replace`).
    #[schema(value_type = Option<String>)]
    pub replace_with: Option<PathBuf>,
}

pub fn plan(
    requests: &OsdRequests,
    osds: &[ObservedOsd],
    ceph: &CephView,
) -> (Vec<Step>, Vec<Retiring>) {
    let mut steps = Vec::new();
    let mut progress = Vec::new();
    for q in &requests.requests {
        let Some(osd) = osds.iter().find(|o| o.uuid == q.uuid && o.id == Some(q.id)) else {
            steps.push(Step::ForgetOsdRequest {
                uuid: q.uuid.clone(),
            });
            continue;
        };
        let mut show = |phase: &str, pgs_left: Option<u32>| {
            progress.push(Retiring {
                id: q.id,
                phase: phase.to_string(),
                pgs_left,
                replace_with: q.replace_with.clone(),
            })
        };
        let view = ceph.osds.get(&q.id);
        let retire = Step::RetireOsd {
            id: q.id,
            uuid: q.uuid.clone(),
            device: match &osd.block {
                OsdBlock::Device { found, .. } => found.clone(),
                _ => None,
            },
            on_device: !matches!(osd.block, OsdBlock::File),
            replace_with: q.replace_with.clone(),
        };
        match view {
            // Purged already (an earlier pass stopped half-way): finish freeing it.
            None => {
                show("removing", None);
                steps.push(retire);
            }
            Some(v) if v.in_ => {
                show("marking out", None);
                steps.push(Step::MarkOsdOut { id: q.id });
            }
            Some(v) if !v.safe_to_destroy => show("moving data", Some(v.pgs)),
            Some(_) => {
                show("removing", None);
                steps.push(retire);
            }
        }
    }
    (steps, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osd_requests::OsdRequest;
    use crate::plan::OsdView;

    fn request(id: u32, replace_with: Option<&str>) -> OsdRequests {
        OsdRequests {
            requests: vec![OsdRequest {
                id,
                uuid: format!("u{id}"),
                replace_with: replace_with.map(PathBuf::from),
                requested_unix: 0,
            }],
            released: vec![],
        }
    }

    fn osd(id: u32) -> ObservedOsd {
        ObservedOsd {
            uuid: format!("u{id}"),
            id: Some(id),
            store_ready: true,
            block: OsdBlock::Device {
                recorded: "/dev/loop3".into(),
                found: Some("/dev/loop4".into()),
                linked: Some("/dev/loop4".into()),
            },
        }
    }

    fn ceph(in_: bool, safe: bool, pgs: u32) -> CephView {
        CephView {
            osds: [(
                2,
                OsdView {
                    up: true,
                    in_,
                    safe_to_destroy: safe,
                    pgs,
                    nonce: None,
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn out_then_wait_for_the_data_then_retire_on_the_device_the_label_is_on() {
        let q = request(2, None);
        let (steps, shown) = plan(&q, &[osd(2)], &ceph(true, false, 9));
        assert_eq!(steps, [Step::MarkOsdOut { id: 2 }]);
        assert_eq!(shown[0].phase, "marking out");
        let (steps, shown) = plan(&q, &[osd(2)], &ceph(false, false, 9));
        assert!(steps.is_empty(), "nothing is stopped while data moves");
        assert_eq!(shown[0].pgs_left, Some(9));
        let (steps, _) = plan(&q, &[osd(2)], &ceph(false, true, 0));
        assert_eq!(
            steps,
            [Step::RetireOsd {
                id: 2,
                uuid: "u2".into(),
                device: Some("/dev/loop4".into()),
                on_device: true,
                replace_with: None
            }]
        );
    }

    #[test]
    fn a_request_for_an_osd_that_is_gone_or_was_replaced_is_dropped() {
        let q = request(2, Some("/dev/loop9"));
        let mut successor = osd(2);
        successor.uuid = "new".into();
        let (steps, shown) = plan(&q, &[successor], &ceph(true, false, 0));
        assert_eq!(steps, [Step::ForgetOsdRequest { uuid: "u2".into() }]);
        assert!(shown.is_empty());
        // Purged, but the record was not dropped yet: the retirement is finished.
        let (steps, _) = plan(&q, &[osd(2)], &CephView::default());
        assert!(matches!(steps[0], Step::RetireOsd { .. }));
    }
}
