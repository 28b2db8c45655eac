//! Keys, ceph.conf and the mons: what a cluster needs before anything else can talk to it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::desired::Desired;
use crate::plan::{CephView, Observed, Step};
use crate::planners::{start_unless_running, Partial};
use crate::state::MonRecord;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonError {
    #[error("mon.{id} has no host to run on: each mon added after the cluster was made runs on a host of its own that joined (`rookery host add NAME` prints its token); or set spec.mon.count back to {have}")]
    NoHostForMon { id: String, have: usize },
}

/// The mons this host runs: those the state records on it (or on no host: clusters made before mons
/// had hosts).
fn local_ids<'a>(desired: &'a Desired, observed: &'a Observed) -> impl Iterator<Item = &'a String> {
    desired
        .mon_ids
        .iter()
        .filter(|id| observed.mon_hosts.get(*id) == Some(&observed.home))
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
    for id in local_ids(desired, observed) {
        if !observed.mon_stores.contains(id) {
            // The stores of the first mons are made together, before any mon runs (a host that
            // joined makes its mons from the running cluster instead: `join_placed`).
            if observed.mon_stores.is_empty() && !observed.joined {
                p.step(Step::CreateMonStore { id: id.clone() });
                making_stores = true;
            }
        } else if let Some(s) = start_unless_running(&observed.running, format!("mon.{id}")) {
            p.step(s);
        }
    }
    (p, making_stores)
}

/// Mons wanted and recorded nowhere get a host that joined and runs no mon yet (any joined host, when
/// several may share one); the state follows the monmap.
pub fn place(desired: &Desired, observed: &Observed, ceph: &CephView) -> Partial<MonError> {
    let mut p = Partial::default();
    let mut taken: BTreeSet<&String> = observed
        .mon_hosts
        .values()
        .chain(ceph.mon_placements.values())
        .collect();
    taken.insert(&observed.home);
    let have = observed.mon_hosts.len();
    // A host whose OSDs are all down is gone for now: no mon is placed there.
    let eligible =
        |h: &&String| **h != observed.home && !ceph.removals.contains_key(*h) && ceph.runs(h);
    // Every mon's host is recorded in Ceph, the first host's too, so that whichever host leads later
    // knows where each mon is, and the first host, should it stop leading, keeps its own.
    for (id, host) in &observed.mon_hosts {
        if ceph.monmap.contains_key(id) && !ceph.mon_placements.contains_key(id) {
            p.step(Step::PlaceMon {
                id: id.clone(),
                host: host.clone(),
            });
        }
    }
    for id in &desired.mon_ids {
        if observed.mon_hosts.contains_key(id) || ceph.mon_placements.contains_key(id) {
            continue;
        }
        let host = ceph
            .members
            .iter()
            .filter(eligible)
            .find(|h| desired.mon_allow_multiple || !taken.contains(h));
        match host {
            Some(h) => {
                p.step(Step::PlaceMon {
                    id: id.clone(),
                    host: h.clone(),
                });
                taken.insert(h);
            }
            None => p.refuse(MonError::NoHostForMon {
                id: id.clone(),
                have,
            }),
        }
    }
    // A joined host's mon out of quorum too long is replaced when another host can take it (the
    // host that made the cluster restarts its own mons itself).
    // Each replacement needs a host of its own to go to.
    let mut free_hosts = ceph
        .members
        .iter()
        .filter(eligible)
        .filter(|h| desired.mon_allow_multiple || !taken.contains(h))
        .count();
    for (id, out_for) in &observed.mons_out_for {
        let host = observed
            .mon_hosts
            .get(id)
            .or_else(|| ceph.mon_placements.get(id));
        let Some(host) = host.filter(|h| **h != observed.home) else {
            continue;
        };
        let leaving = ceph.removals.contains_key(host);
        if *out_for >= desired.mon_failover && free_hosts > 0 && !leaving {
            free_hosts -= 1;
            p.step(Step::FailoverMon {
                id: id.clone(),
                host: host.clone(),
            });
        }
    }
    p.steps.extend(record(observed, ceph));
    p
}

/// On a host that does not lead: the mons placed here are made and run, those moved elsewhere stop,
/// and the state follows the monmap.
pub fn plan_joined(observed: &Observed, ceph: &CephView) -> Vec<Step> {
    let mut steps = join_placed(observed, ceph);
    // A mon of this host replaced elsewhere while this host was away must not come back.
    for (id, host) in &observed.mon_hosts {
        let moved = ceph.mon_placements.get(id).is_none_or(|p| p != host);
        let name = format!("mon.{id}");
        if *host == observed.home && moved && observed.running.contains(&name) {
            steps.push(Step::Stop { daemon: name });
        }
    }
    steps.extend(record(observed, ceph));
    steps
}

/// The mons placed on this host are made (from the running cluster) and started.
pub fn join_placed(observed: &Observed, ceph: &CephView) -> Vec<Step> {
    let mut steps = Vec::new();
    for (id, host) in &ceph.mon_placements {
        if *host != observed.home {
            continue;
        }
        if !observed.mon_stores.contains(id) {
            steps.push(Step::JoinMonStore { id: id.clone() });
        } else if let Some(s) = start_unless_running(&observed.running, format!("mon.{id}")) {
            steps.push(s);
        }
    }
    steps
}

/// [`Step::RecordMons`] when the monmap says other than the state.
fn record(observed: &Observed, ceph: &CephView) -> Option<Step> {
    let mons = merge_monmap(&observed.mon_records, &ceph.monmap, &ceph.mon_placements);
    (mons != observed.mon_records && !ceph.monmap.is_empty()).then_some(Step::RecordMons { mons })
}

/// The mons as the monmap has them (each keeping the host the state or its placement gives it), plus
/// those placed and not in the map yet (a mon joining).
pub fn merge_monmap(
    current: &[MonRecord],
    monmap: &BTreeMap<String, (SocketAddr, SocketAddr)>,
    placements: &BTreeMap<String, String>,
) -> Vec<MonRecord> {
    let mut out: Vec<MonRecord> = monmap
        .iter()
        .map(|(id, (v2, v1))| {
            let known = current.iter().find(|m| &m.id == id);
            MonRecord {
                id: id.clone(),
                host: known
                    .and_then(|m| m.host.clone())
                    .or_else(|| placements.get(id).cloned()),
                address: v2.ip(),
                v2_port: v2.port(),
                v1_port: v1.port(),
            }
        })
        .collect();
    // A mon joining: placed on the host its record names, not in the map yet.
    for m in current {
        if !monmap.contains_key(&m.id)
            && m.host.is_some()
            && placements.get(&m.id) == m.host.as_ref()
        {
            out.push(m.clone());
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planners::tests::{desired, set};

    fn record(id: &str, host: &str, last: u8) -> MonRecord {
        MonRecord {
            id: id.into(),
            host: Some(host.into()),
            address: std::net::IpAddr::from([10, 0, 0, last]),
            v2_port: 3300,
            v1_port: 6789,
        }
    }

    fn home() -> Observed {
        let mut o = Observed {
            home: "h1".into(),
            ..Default::default()
        };
        o.mon_hosts.insert("a".into(), "h1".into());
        o.mon_records = vec![record("a", "h1", 1)];
        o
    }

    fn map_of(records: &[MonRecord]) -> BTreeMap<String, (SocketAddr, SocketAddr)> {
        records
            .iter()
            .map(|m| {
                (
                    m.id.clone(),
                    (
                        SocketAddr::new(m.address, m.v2_port),
                        SocketAddr::new(m.address, m.v1_port),
                    ),
                )
            })
            .collect()
    }

    #[test]
    fn keys_then_config_then_stores_then_starts() {
        let d = desired();
        let mut o = home();
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
    fn new_mons_go_to_joined_hosts_one_each_and_wait_for_them() {
        let mut d = desired();
        d.mon_ids = vec!["a".into(), "b".into(), "c".into()];
        let o = home();
        let mut ceph = CephView {
            monmap: map_of(&o.mon_records),
            members: vec!["h1".into(), "h2".into()],
            ..Default::default()
        };
        // One host joined: the first host's a is recorded as its own, b goes to h2, c waits.
        let p = place(&d, &o, &ceph);
        assert_eq!(
            p.steps,
            [
                Step::PlaceMon {
                    id: "a".into(),
                    host: "h1".into()
                },
                Step::PlaceMon {
                    id: "b".into(),
                    host: "h2".into()
                }
            ]
        );
        ceph.mon_placements.insert("a".into(), "h1".into());
        assert_eq!(
            p.refused,
            [MonError::NoHostForMon {
                id: "c".into(),
                have: 1
            }]
        );
        // Placed, b is not placed again; a third host takes c.
        ceph.mon_placements.insert("b".into(), "h2".into());
        ceph.members.push("h3".into());
        let p = place(&d, &o, &ceph);
        assert_eq!(
            p.steps,
            [Step::PlaceMon {
                id: "c".into(),
                host: "h3".into()
            }]
        );
        // With several per host allowed, the first joined host takes both.
        d.mon_allow_multiple = true;
        ceph.mon_placements.retain(|id, _| id == "a");
        ceph.members.pop();
        let p = place(&d, &o, &ceph);
        assert_eq!(p.steps.len(), 2);
        assert!(p
            .steps
            .iter()
            .all(|s| matches!(s, Step::PlaceMon { host, .. } if host == "h2")));
        // A host that joined makes and starts what was placed on it.
        let joined = Observed {
            home: "h2".into(),
            ..Default::default()
        };
        ceph.mon_placements = [("b".to_string(), "h2".to_string())].into();
        assert_eq!(
            plan_joined(&joined, &ceph)[0],
            Step::JoinMonStore { id: "b".into() }
        );
    }

    #[test]
    fn a_joined_host_s_mon_out_too_long_moves_to_a_host_that_runs() {
        let mut d = desired();
        d.mon_ids = vec!["a".into(), "b".into()];
        d.mon_failover = std::time::Duration::from_secs(20);
        let mut o = home();
        o.mon_hosts.insert("b".into(), "h2".into());
        o.mon_records.push(record("b", "h2", 2));
        let mut ceph = CephView {
            monmap: map_of(&o.mon_records),
            members: vec!["h1".into(), "h2".into(), "h3".into()],
            mon_placements: [
                ("a".to_string(), "h1".to_string()),
                ("b".to_string(), "h2".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        ceph.crush_hosts.insert("h2".into(), vec![1]);
        ceph.crush_hosts.insert("h3".into(), vec![2]);
        ceph.osds.insert(1, crate::plan::OsdView::default());
        ceph.osds.insert(
            2,
            crate::plan::OsdView {
                up: true,
                ..Default::default()
            },
        );
        let failover = Step::FailoverMon {
            id: "b".into(),
            host: "h2".into(),
        };
        // Out for less than the timeout: nothing.
        o.mons_out_for
            .insert("b".into(), std::time::Duration::from_secs(5));
        assert!(!place(&d, &o, &ceph).steps.contains(&failover));
        o.mons_out_for
            .insert("b".into(), std::time::Duration::from_secs(25));
        assert!(place(&d, &o, &ceph).steps.contains(&failover));
        // No host that runs to take it (h3's OSDs down too): it stays.
        ceph.osds.get_mut(&2).unwrap().up = false;
        assert!(!place(&d, &o, &ceph).steps.contains(&failover));
        ceph.osds.get_mut(&2).unwrap().up = true;
        // Once out of the map and unplaced, it is placed on h3, not on the dead h2.
        o.mon_hosts.remove("b");
        o.mon_records.pop();
        ceph.monmap = map_of(&o.mon_records);
        ceph.mon_placements.remove("b");
        o.mons_out_for.clear();
        assert_eq!(
            place(&d, &o, &ceph).steps,
            [Step::PlaceMon {
                id: "b".into(),
                host: "h3".into()
            }]
        );
    }

    #[test]
    fn the_state_follows_the_monmap_and_keeps_joining_mons() {
        let a = record("a", "h1", 1);
        let b = record("b", "h2", 2);
        let c = record("c", "h3", 3);
        let placed: BTreeMap<String, String> =
            [("b".into(), "h2".into()), ("c".into(), "h3".into())].into();
        // b joined the map (its host from its placement); c is still joining (kept); a is unchanged.
        let merged = merge_monmap(
            &[a.clone(), c.clone()],
            &map_of(&[a.clone(), b.clone()]),
            &placed,
        );
        assert_eq!(merged, vec![a.clone(), b.clone(), c.clone()]);
        // A mon gone from the map and placed nowhere leaves the state.
        let merged = merge_monmap(
            &[a.clone(), b.clone()],
            &map_of(std::slice::from_ref(&a)),
            &BTreeMap::new(),
        );
        assert_eq!(merged, vec![a]);
    }
}
