//! OSDs: unfinished ones finished, stopped ones started (on the device their label is on now), missing
//! OSD files added, blank devices the spec selects taken.

use crate::desired::Desired;
use crate::disks::{self, DevicePlan, Verdict};
use crate::plan::{Observed, OsdBlock, Step};
use crate::planners::{start_unless_running, Partial};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsdError {
    #[error("spec.storage.osdFiles.count is {want} but the cluster has {have} OSD files; remove OSDs with `rookery osd rm ID`, then lower the count")]
    RemovalUnsupported { want: u32, have: u32 },
    #[error("osd.{id} is dead: its device ({device}) is on no device of this host any more; if it is gone for good, remove the OSD with `rookery osd rm {id}`")]
    DeviceGone { id: u32, device: String },
    #[error("spec.storage names device {name}, which this host does not have; attach it or remove it from the spec")]
    DeviceNotFound { name: String },
}

pub fn plan(desired: &Desired, observed: &Observed) -> Partial<OsdError> {
    let mut p = Partial::default();
    for osd in &observed.osds {
        if !osd.store_ready {
            p.step(Step::FinishOsd {
                uuid: osd.uuid.clone(),
            });
            continue;
        }
        let Some(id) = osd.id else { continue };
        match &osd.block {
            OsdBlock::Device {
                recorded,
                found: None,
                ..
            } => {
                // Its process cannot serve without the device: stopped rather than restarted forever.
                let daemon = format!("osd.{id}");
                if observed.running.contains(&daemon) {
                    p.step(Step::Stop { daemon });
                }
                p.refuse(OsdError::DeviceGone {
                    id,
                    device: recorded.display().to_string(),
                })
            }
            OsdBlock::Device {
                found: Some(found),
                linked,
                ..
            } if linked.as_ref() != Some(found) => p.step(Step::LinkOsdBlock {
                id,
                device: found.clone(),
            }),
            _ => {
                if let Some(s) = start_unless_running(&observed.running, format!("osd.{id}")) {
                    p.step(s);
                }
            }
        }
    }
    // OSD files on their way out (`osd rm|replace`) no longer count: the spec's count is lowered with
    // the request.
    let leaving = |uuid: &str| {
        observed
            .osd_requests
            .requests
            .iter()
            .any(|q| q.uuid == uuid)
    };
    let have = observed
        .osds
        .iter()
        .filter(|o| o.block == OsdBlock::File && !leaving(&o.uuid))
        .count() as u32;
    for _ in have..desired.osd_count {
        p.step(Step::AddOsd);
    }
    if have > desired.osd_count {
        p.refuse(OsdError::RemovalUnsupported {
            want: desired.osd_count,
            have,
        });
    }
    if let Some(host) = &observed.devices {
        let spec = desired.devices.for_host(&host.host);
        let selection = spec.compile(host.allow_loop_devices);
        for name in selection.missing(&host.devices) {
            p.refuse(OsdError::DeviceNotFound {
                name: name.to_string(),
            });
        }
        // A finished OSD is where its label is now (its recorded name may belong to another device by
        // now); an unfinished one may have no label yet, so its recorded device is its own.
        let taken_by_ours = |path: &std::path::Path| {
            observed.osds.iter().any(|o| match &o.block {
                OsdBlock::Device {
                    recorded, found, ..
                } => found.as_deref() == Some(path) || (!o.store_ready && recorded == path),
                _ => false,
            })
        };
        if !spec.is_empty() {
            for d in &host.devices {
                if disks::verdict(d, &selection, &host.known) == Verdict::Take
                    && host.settled.contains(&d.path)
                    && !taken_by_ours(&d.path)
                {
                    p.step(Step::AddDeviceOsd {
                        device: d.path.clone(),
                        class: spec.class_of(d),
                    });
                }
            }
        }
    }
    p
}

/// What the spec's selection makes of each of the home host's devices, for `status` (empty when it
/// selects none).
pub fn device_plan(desired: &Desired, observed: &Observed) -> Vec<DevicePlan> {
    let Some(host) = &observed.devices else {
        return Vec::new();
    };
    let spec = desired.devices.for_host(&host.host);
    if spec.is_empty() {
        return Vec::new();
    }
    disks::plan(
        &host.devices,
        &spec.compile(host.allow_loop_devices),
        &host.known,
    )
}

/// Whether the OSDs run: every OSD file the spec asks for, and every other OSD the cluster has that is
/// not dead (object stores wait for it: their set-up blocks on PGs).
pub fn all_running(desired: &Desired, observed: &Observed) -> bool {
    let running = |o: &&&crate::plan::ObservedOsd| {
        o.id.is_some_and(|id| observed.running.contains(&format!("osd.{id}")))
    };
    let alive: Vec<_> = observed
        .osds
        .iter()
        .filter(|o| !matches!(o.block, OsdBlock::Device { found: None, .. }))
        .collect();
    let files_running = alive
        .iter()
        .filter(|o| o.block == OsdBlock::File)
        .filter(running)
        .count() as u32;
    !alive.is_empty() && files_running >= desired.osd_count && alive.iter().all(|o| running(&o))
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
            block: OsdBlock::File,
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

    fn blank(name: &str) -> rookery_platform::devices::Device {
        crate::disks::tests::device(name, rookery_platform::devices::DeviceKind::Loop, 6)
    }

    fn with_devices(devices: Vec<rookery_platform::devices::Device>, settled: &[&str]) -> Observed {
        Observed {
            osds: (0..3).map(|i| osd(Some(i), true)).collect(),
            running: set(&["osd.0", "osd.1", "osd.2"]),
            devices: Some(crate::plan::HostDevices {
                host: "h".into(),
                devices,
                settled: settled.iter().map(|s| format!("/dev/{s}").into()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn settled_blank_devices_the_spec_selects_become_osds() {
        let mut d = desired();
        d.devices.cluster = crate::disks::SelectionSpec {
            device_filter: Some("^loop[5-6]$".into()),
            device_class: Some("ssd".into()),
            devices: vec![("loop9".into(), None)],
            ..Default::default()
        };
        let o = with_devices(
            vec![blank("loop5"), blank("loop6"), blank("loop7")],
            &["loop5", "loop7"],
        );
        let p = plan(&d, &o);
        assert_eq!(
            p.steps,
            [Step::AddDeviceOsd {
                device: "/dev/loop5".into(),
                class: Some("ssd".into())
            }],
            "loop6 has not settled, loop7 is not selected"
        );
        assert_eq!(
            p.refused,
            [OsdError::DeviceNotFound {
                name: "loop9".into()
            }]
        );
        let plan = device_plan(&d, &o);
        assert_eq!(plan.len(), 3);
        assert_eq!(
            plan[2].verdict,
            Verdict::Skip {
                reason: crate::disks::Reason::LoopNotNamed
            }
        );
        // Another host listed in nodes[] without this one: nothing is taken here.
        d.devices
            .nodes
            .insert("other".into(), d.devices.cluster.clone());
        assert!(plan_steps_empty(&d, &o));
    }

    fn plan_steps_empty(d: &Desired, o: &Observed) -> bool {
        plan(d, o).steps.is_empty() && device_plan(d, o).is_empty()
    }

    #[test]
    fn device_osds_follow_their_label_and_a_gone_one_is_dead_not_started() {
        let d = desired();
        let mut o = with_devices(vec![], &[]);
        let on = |found: Option<&str>, linked: Option<&str>| OsdBlock::Device {
            recorded: "/dev/loop5".into(),
            found: found.map(Into::into),
            linked: linked.map(Into::into),
        };
        o.osds.push(ObservedOsd {
            block: on(Some("/dev/loop8"), Some("/dev/loop5")),
            ..osd(Some(3), true)
        });
        o.osds.push(ObservedOsd {
            block: on(None, Some("/dev/loop6")),
            ..osd(Some(4), true)
        });
        o.osds.push(ObservedOsd {
            block: on(Some("/dev/loop7"), Some("/dev/loop7")),
            ..osd(Some(5), true)
        });
        let p = plan(&d, &o);
        assert_eq!(
            p.steps,
            [
                Step::LinkOsdBlock {
                    id: 3,
                    device: "/dev/loop8".into()
                },
                Step::Start {
                    daemon: "osd.5".into()
                }
            ]
        );
        assert_eq!(
            p.refused,
            [OsdError::DeviceGone {
                id: 4,
                device: "/dev/loop5".into()
            }]
        );
        assert!(p.refused[0].to_string().contains("rookery osd rm 4"));
        o.running = set(&["osd.0", "osd.1", "osd.2", "osd.3", "osd.5"]);
        assert!(
            all_running(&d, &o),
            "a dead OSD does not hold the rest back"
        );
        o.running.insert("osd.4".into());
        assert!(plan(&d, &o).steps.contains(&Step::Stop {
            daemon: "osd.4".into()
        }));
    }
}
