//! Daemons spread over the cluster's hosts: standby mgrs, each filesystem's MDS daemons after its
//! first, and each object store's gateways after its first. The host that leads (see
//! [`crate::leadership`]) runs the first of each group; the others go each to another host that runs
//! and holds none of the group yet, recorded in Ceph (`rookery/daemons/<host>/<daemon>`) for that
//! host's supervisor to start. An MDS with no such host runs on the leading host meanwhile; a standby
//! mgr or a gateway (which serves on its store's port) waits for one.

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::Desired;
use crate::plan::{CephView, Observed, Placements, Step};
use crate::planners::{start_unless_running, Partial};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpreadError {
    #[error("standby {daemon} waits for a host of its own: join another host (`rookery host add NAME` prints its token), or set spec.mgr.count to 1")]
    NoHostForMgr { daemon: String },
    #[error("gateway {instance} of object store {store} waits for a host of its own (every gateway of a store serves on its port on its host): add a host to the cluster (`rookery host add NAME` prints a join token), or lower spec.gateway.instances")]
    NoHostForGateway { store: String, instance: usize },
}

/// The kinds of daemon that are spread, by the prefix of their names.
const SPREAD_KINDS: [&str; 3] = ["mgr.", "mds.", "rgw."];

/// Daemons that should run on different hosts, the leading host's own excluded: `slots` names the
/// daemon each further host runs (a gateway's name repeats, one per instance).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    slots: Vec<String>,
    kind: GroupKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupKind {
    Mgr,
    Mds,
    Gateway { store: String },
}

impl GroupKind {
    /// What a slot left without a host means (None: the leading host runs it meanwhile).
    fn unplaced(&self, daemon: &str, slot: usize) -> Option<SpreadError> {
        match self {
            GroupKind::Mgr => Some(SpreadError::NoHostForMgr {
                daemon: daemon.to_string(),
            }),
            GroupKind::Mds => None,
            GroupKind::Gateway { store } => Some(SpreadError::NoHostForGateway {
                store: store.clone(),
                instance: slot + 2,
            }),
        }
    }
}

/// The groups the spec asks for. Gateways are spread only once the store serves on the leading host
/// (`ready_stores`): its zone must exist before any gateway starts.
fn groups(desired: &Desired, ready_stores: &BTreeSet<String>) -> Vec<Group> {
    let mut out = Vec::new();
    if !desired.mgr_allow_multiple && desired.mgr_ids.len() > 1 {
        out.push(Group {
            slots: desired.mgr_ids[1..]
                .iter()
                .map(|id| format!("mgr.{id}"))
                .collect(),
            kind: GroupKind::Mgr,
        });
    }
    for fs in &desired.filesystems {
        out.push(Group {
            slots: fs
                .mds_ids
                .iter()
                .skip(1)
                .map(|id| format!("mds.{id}"))
                .collect(),
            kind: GroupKind::Mds,
        });
    }
    for store in desired
        .object_stores
        .iter()
        .filter(|s| ready_stores.contains(&s.name))
    {
        let extra = store.instances.saturating_sub(1) as usize;
        out.push(Group {
            slots: vec![format!("rgw.{}", store.name); extra],
            kind: GroupKind::Gateway {
                store: store.name.clone(),
            },
        });
    }
    out
}

/// The leading host's plan: slots without a host get one; placements the spec no longer asks for go,
/// and so do those on a host down for longer than the spec's daemon timeout (they are placed again on
/// a host that runs, or, for an MDS, run by the leader meanwhile).
pub fn place(
    desired: &Desired,
    observed: &Observed,
    ceph: &CephView,
    ready_stores: &BTreeSet<String>,
) -> Partial<SpreadError> {
    let mut p = Partial::default();
    let candidates: Vec<&String> = ceph
        .members
        .iter()
        .filter(|h| **h != observed.home && !ceph.removals.contains_key(*h) && ceph.runs(h))
        .collect();
    let gone = |h: &String| {
        observed
            .hosts_down_for
            .get(h)
            .is_some_and(|d| *d >= desired.mon_failover)
    };
    // Placements that count: those on hosts that are not gone.
    let live: Placements = ceph
        .placements
        .iter()
        .map(|(d, hosts)| {
            (
                d.clone(),
                hosts.iter().filter(|h| !gone(h)).cloned().collect(),
            )
        })
        .collect();
    for (daemon, hosts) in &ceph.placements {
        for host in hosts.iter().filter(|h| gone(h)) {
            p.step(Step::UnplaceDaemon {
                daemon: daemon.clone(),
                host: host.clone(),
            });
        }
    }
    let groups = groups(desired, ready_stores);
    for g in &groups {
        let mut holding: BTreeSet<&String> = g
            .slots
            .iter()
            .filter_map(|d| live.get(d))
            .flatten()
            .collect();
        let mut placed: BTreeMap<&String, usize> = g
            .slots
            .iter()
            .map(|d| (d, live.get(d).map_or(0, BTreeSet::len)))
            .collect();
        for (slot, daemon) in g.slots.iter().enumerate() {
            if let Some(left) = placed.get_mut(daemon).filter(|n| **n > 0) {
                *left -= 1;
                continue;
            }
            match candidates.iter().find(|h| !holding.contains(**h)) {
                Some(host) => {
                    p.step(Step::PlaceDaemon {
                        daemon: daemon.clone(),
                        host: (*host).clone(),
                    });
                    holding.insert(host);
                }
                None => {
                    if let Some(e) = g.kind.unplaced(daemon, slot) {
                        p.refuse(e);
                    }
                }
            }
        }
    }
    // A gateway's store is spread only once it serves here: until then its placements stay as they
    // are rather than being taken back.
    let mut wanted: BTreeMap<&String, usize> = BTreeMap::new();
    for d in groups.iter().flat_map(|g| &g.slots) {
        *wanted.entry(d).or_default() += 1;
    }
    for (daemon, hosts) in &live {
        let store_waits = daemon.strip_prefix("rgw.").is_some_and(|s| {
            desired.object_stores.iter().any(|o| o.name == s) && !ready_stores.contains(s)
        });
        let want = wanted.get(daemon).copied().unwrap_or(0);
        if store_waits || hosts.len() <= want {
            continue;
        }
        // Hosts that do not run go first.
        let mut order: Vec<&String> = hosts.iter().collect();
        order.sort_by_key(|h| candidates.contains(h));
        for host in order.into_iter().take(hosts.len() - want) {
            p.step(Step::UnplaceDaemon {
                daemon: daemon.clone(),
                host: host.clone(),
            });
        }
    }
    p
}

/// The daemons placed on this host get their keys and run.
pub fn run_placed(observed: &Observed, ceph: &CephView) -> Vec<Step> {
    let mut steps = Vec::new();
    for (daemon, hosts) in &ceph.placements {
        if !hosts.contains(&observed.home) {
            continue;
        }
        let key = if let Some(id) = daemon.strip_prefix("mgr.") {
            (!observed.mgr_keyrings.contains(id)).then(|| Step::CreateMgrKey { id: id.into() })
        } else if let Some(id) = daemon.strip_prefix("mds.") {
            (!observed.mds_keyrings.contains(id)).then(|| Step::CreateMdsKey { id: id.into() })
        } else if let Some(store) = daemon.strip_prefix("rgw.") {
            (!observed.rgw_keyrings.contains(store)).then(|| Step::CreateRgwKey {
                store: store.into(),
            })
        } else {
            continue;
        };
        match key {
            // Started in the same pass: steps run in order and stop at the first failure.
            Some(key) => {
                steps.push(key);
                steps.push(Step::Start {
                    daemon: daemon.clone(),
                });
            }
            None => steps.extend(start_unless_running(&observed.running, daemon.clone())),
        }
    }
    steps
}

/// On a host that does not lead: spread daemons running here but not placed here stop (placed
/// elsewhere since, or run here while this host led).
pub fn stop_unplaced(observed: &Observed, ceph: &CephView) -> Vec<Step> {
    let mut steps = Vec::new();
    for daemon in observed.running.iter().filter(|d| is_spread(d)) {
        if !ceph
            .placements
            .get(daemon)
            .is_some_and(|hosts| hosts.contains(&observed.home))
        {
            steps.push(Step::Stop {
                daemon: daemon.clone(),
            });
        }
    }
    steps
}

/// Whether `daemon` is of a kind that is spread over hosts (and so stops when its host leaves).
pub fn is_spread(daemon: &str) -> bool {
    SPREAD_KINDS.iter().any(|k| daemon.starts_with(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{DesiredFs, DesiredStore};
    use crate::planners::tests::{desired, set};

    fn ceph_of(members: &[&str]) -> CephView {
        CephView {
            members: members.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        }
    }

    fn home(name: &str) -> Observed {
        Observed {
            home: name.into(),
            ..Default::default()
        }
    }

    fn joined_plan(o: &Observed, ceph: &CephView) -> Vec<Step> {
        let mut steps = run_placed(o, ceph);
        steps.extend(stop_unplaced(o, ceph));
        steps
    }

    fn placed(ceph: &mut CephView, daemon: &str, host: &str) {
        ceph.placements
            .entry(daemon.into())
            .or_default()
            .insert(host.into());
    }

    #[test]
    fn a_standby_mgr_waits_for_a_joined_host_and_then_goes_there() {
        let mut d = desired();
        d.mgr_ids = vec!["a".into(), "b".into()];
        let o = home("h1");
        let mut ceph = ceph_of(&["h1"]);
        assert_eq!(
            place(&d, &o, &ceph, &BTreeSet::new()).refused,
            [SpreadError::NoHostForMgr {
                daemon: "mgr.b".into()
            }]
        );
        ceph.members.push("h2".into());
        assert_eq!(
            place(&d, &o, &ceph, &BTreeSet::new()).steps,
            [Step::PlaceDaemon {
                daemon: "mgr.b".into(),
                host: "h2".into()
            }]
        );
        placed(&mut ceph, "mgr.b", "h2");
        assert!(place(&d, &o, &ceph, &BTreeSet::new()).steps.is_empty());
        assert_eq!(
            run_placed(&home("h2"), &ceph),
            [
                Step::CreateMgrKey { id: "b".into() },
                Step::Start {
                    daemon: "mgr.b".into()
                }
            ]
        );
        // Several mgrs on one host: nothing is spread, and a placement left over goes.
        d.mgr_allow_multiple = true;
        assert_eq!(
            place(&d, &o, &ceph, &BTreeSet::new()).steps,
            [Step::UnplaceDaemon {
                daemon: "mgr.b".into(),
                host: "h2".into()
            }]
        );
    }

    #[test]
    fn mds_daemons_go_to_different_hosts_or_stay_on_the_first() {
        let mut d = desired();
        d.filesystems = vec![DesiredFs {
            name: "myfs".into(),
            mds_ids: vec!["myfs-a".into(), "myfs-b".into(), "myfs-c".into()],
            ..Default::default()
        }];
        let o = home("h1");
        let mut ceph = ceph_of(&["h1"]);
        // Alone, the leading host runs them all.
        assert_eq!(place(&d, &o, &ceph, &BTreeSet::new()), Partial::default());
        ceph.members.push("h2".into());
        assert_eq!(
            place(&d, &o, &ceph, &BTreeSet::new()).steps,
            [Step::PlaceDaemon {
                daemon: "mds.myfs-b".into(),
                host: "h2".into()
            }]
        );
        placed(&mut ceph, "mds.myfs-b", "h2");
        // A host whose OSDs are all down takes nothing.
        ceph.members.push("h3".into());
        ceph.crush_hosts.insert("h3".into(), vec![7]);
        assert!(place(&d, &o, &ceph, &BTreeSet::new()).steps.is_empty());
        ceph.osds.insert(
            7,
            crate::plan::OsdView {
                up: true,
                ..Default::default()
            },
        );
        assert_eq!(
            place(&d, &o, &ceph, &BTreeSet::new()).steps,
            [Step::PlaceDaemon {
                daemon: "mds.myfs-c".into(),
                host: "h3".into()
            }]
        );
        // The filesystem deleted: its placements go, and the joined host stops its MDS.
        d.filesystems.clear();
        assert_eq!(
            place(&d, &o, &ceph, &BTreeSet::new()).steps,
            [Step::UnplaceDaemon {
                daemon: "mds.myfs-b".into(),
                host: "h2".into()
            }]
        );
        let mut joined = home("h2");
        joined.running = set(&["mds.myfs-b", "osd.1"]);
        joined.mds_keyrings = set(&["myfs-b"]);
        assert!(joined_plan(&joined, &ceph).is_empty());
        ceph.placements.clear();
        assert_eq!(
            joined_plan(&joined, &ceph),
            [Step::Stop {
                daemon: "mds.myfs-b".into()
            }]
        );
    }

    #[test]
    fn daemons_of_a_host_down_too_long_go_to_a_host_that_runs() {
        let mut d = desired();
        d.mgr_ids = vec!["a".into(), "b".into()];
        d.mon_failover = std::time::Duration::from_secs(20);
        let mut o = home("h1");
        let mut ceph = ceph_of(&["h1", "h2", "h3"]);
        placed(&mut ceph, "mgr.b", "h2");
        ceph.crush_hosts.insert("h2".into(), vec![1]);
        // Down, but not for long: it stays.
        o.hosts_down_for
            .insert("h2".into(), std::time::Duration::from_secs(5));
        assert!(place(&d, &o, &ceph, &BTreeSet::new()).steps.is_empty());
        o.hosts_down_for
            .insert("h2".into(), std::time::Duration::from_secs(25));
        assert_eq!(
            place(&d, &o, &ceph, &BTreeSet::new()).steps,
            [
                Step::UnplaceDaemon {
                    daemon: "mgr.b".into(),
                    host: "h2".into()
                },
                Step::PlaceDaemon {
                    daemon: "mgr.b".into(),
                    host: "h3".into()
                }
            ]
        );
    }

    #[test]
    fn gateways_spread_once_their_store_serves_one_per_host() {
        let mut d = desired();
        d.object_stores = vec![DesiredStore {
            name: "s3".into(),
            port: 8080,
            pools: Vec::new(),
            instances: 3,
        }];
        let o = home("h1");
        let mut ceph = ceph_of(&["h1", "h2"]);
        assert_eq!(place(&d, &o, &ceph, &BTreeSet::new()), Partial::default());
        let ready = set(&["s3"]);
        let p = place(&d, &o, &ceph, &ready);
        assert_eq!(
            p.steps,
            [Step::PlaceDaemon {
                daemon: "rgw.s3".into(),
                host: "h2".into()
            }]
        );
        assert_eq!(
            p.refused,
            [SpreadError::NoHostForGateway {
                store: "s3".into(),
                instance: 3
            }]
        );
        placed(&mut ceph, "rgw.s3", "h2");
        let mut joined = home("h2");
        assert_eq!(
            joined_plan(&joined, &ceph),
            [
                Step::CreateRgwKey { store: "s3".into() },
                Step::Start {
                    daemon: "rgw.s3".into()
                }
            ]
        );
        joined.rgw_keyrings = set(&["s3"]);
        joined.running = set(&["rgw.s3"]);
        assert!(joined_plan(&joined, &ceph).is_empty());
        // One instance again: the joined host's gateway goes.
        d.object_stores[0].instances = 1;
        assert_eq!(
            place(&d, &o, &ceph, &ready).steps,
            [Step::UnplaceDaemon {
                daemon: "rgw.s3".into(),
                host: "h2".into()
            }]
        );
    }
}
