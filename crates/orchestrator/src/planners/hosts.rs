//! Hosts leaving the cluster (`rookery host rm`), on the leading host: the host's OSDs
//! are marked out and, once Ceph says no data would lose a copy without them (or at once with
//! `--force`) and they are down, purged; then its mons leave the monmap once they are out of quorum
//! (stopped by the host itself, or gone with it); then its records, CRUSH bucket and Ceph user go.
//! A host that still runs stops its own OSDs and mons as they are let go (`plan_member`).

use serde::{Deserialize, Serialize};

use crate::plan::{CephView, Observed, Step};

/// Where a removal stands, for `status` and `host rm`'s progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Leaving {
    pub host: String,
    /// `moving data`, `removing OSDs`, `removing mons`, `finishing`.
    pub phase: String,
    /// Its OSDs still in the cluster.
    pub osds_left: Vec<u32>,
    /// PGs still on them while their data moves.
    pub pgs_left: u32,
    pub mons_left: Vec<String>,
}

/// The mons of `host`: those placed on it that the monmap still has.
pub fn mons_of<'a>(ceph: &'a CephView, host: &'a str) -> impl Iterator<Item = &'a String> + 'a {
    ceph.mon_placements
        .iter()
        .filter(move |(id, h)| *h == host && ceph.monmap.contains_key(*id))
        .map(|(id, _)| id)
}

pub fn plan(observed: &Observed, ceph: &CephView) -> (Vec<Step>, Vec<Leaving>) {
    let mut steps = Vec::new();
    let mut progress = Vec::new();
    for (host, removal) in &ceph.removals {
        if *host == observed.home || removal.done {
            continue;
        }
        let osds = ceph.crush_hosts.get(host).cloned().unwrap_or_default();
        let mut pgs_left = 0;
        let mut moving = false;
        for id in &osds {
            let Some(v) = ceph.osds.get(id) else { continue };
            if v.in_ {
                steps.push(Step::MarkOsdOut { id: *id });
                moving = true;
            } else if !v.up && (v.safe_to_destroy || removal.force) {
                steps.push(Step::PurgeOsd {
                    id: *id,
                    force: removal.force,
                });
            } else {
                // Up (its host stops it once it is safe) or not safe yet.
                moving |= !v.safe_to_destroy;
                pgs_left += v.pgs;
            }
        }
        let mons: Vec<String> = mons_of(ceph, host).cloned().collect();
        let phase = if !osds.is_empty() {
            if moving {
                "moving data"
            } else {
                "removing OSDs"
            }
        } else if !mons.is_empty() {
            // One at a time, while the others keep a majority of the smaller map (the host stops
            // its mon once it is out of the map, so quorum never depends on a mon being stopped).
            let id = &mons[0];
            let others = ceph.monmap.len().saturating_sub(1);
            let others_in = ceph.quorum.iter().filter(|q| *q != id).count();
            if !ceph.quorum.contains(id) || others_in > others / 2 {
                steps.push(Step::RemoveMon { id: id.clone() });
            }
            "removing mons"
        } else {
            steps.push(Step::FinishHostRemoval { host: host.clone() });
            "finishing"
        };
        progress.push(Leaving {
            host: host.clone(),
            phase: phase.into(),
            osds_left: osds,
            pgs_left,
            mons_left: mons,
        });
    }
    (steps, progress)
}

/// What a removal is checked against, read from Ceph.
#[derive(Debug, Clone, Default)]
pub struct RemovalFacts {
    pub members: Vec<String>,
    /// Each mon: id, the host it runs on, in quorum.
    pub mons: Vec<(String, String, bool)>,
    pub osds: Vec<OsdFact>,
    /// The most copies (or chunks) any pool keeps.
    pub largest_pool: u32,
}

#[derive(Debug, Clone, Default)]
pub struct OsdFact {
    pub id: u32,
    pub host: String,
    /// Up and in: it can take data.
    pub serving: bool,
    pub size_bytes: u64,
    pub used_bytes: u64,
}

/// Why `host rm` is refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemovalRefused {
    #[error("{0} is not a host of this cluster; `rookery host list` names them")]
    NotMember(String),
    #[error("removing {host} would leave {left} mon(s), of which {in_quorum} in quorum, and quorum needs {need}: bring the other hosts' mons back first (`rookery status` shows which are out)")]
    WouldLoseQuorum {
        host: String,
        left: usize,
        in_quorum: usize,
        need: usize,
    },
    #[error("removing {host} would leave {left} OSD(s) up and in, and a pool keeps {need} copies: add OSDs or hosts first, or lower the pools' size")]
    TooFewOsds {
        host: String,
        left: usize,
        need: u32,
    },
    #[error("removing {host} would leave {used} of data on {room} of room (85% of the OSDs left): add OSDs or hosts first, or delete data")]
    TooFull {
        host: String,
        used: String,
        room: String,
    },
}

impl RemovalRefused {
    pub fn code(&self) -> &'static str {
        match self {
            RemovalRefused::NotMember(_) => "not_found",
            RemovalRefused::WouldLoseQuorum { .. } => "would_lose_quorum",
            RemovalRefused::TooFewOsds { .. } => "too_few_osds",
            RemovalRefused::TooFull { .. } => "too_full",
        }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// Whether `host` may leave: it is a member, the mons left keep a quorum, and (unless
/// `force`, for a host that is gone whatever the data says) the OSDs left can hold every copy.
pub fn check_removal(facts: &RemovalFacts, host: &str, force: bool) -> Result<(), RemovalRefused> {
    if !facts.members.iter().any(|m| m == host) {
        return Err(RemovalRefused::NotMember(host.into()));
    }
    let left: Vec<&(String, String, bool)> =
        facts.mons.iter().filter(|(_, h, _)| h != host).collect();
    let in_quorum = left.iter().filter(|(_, _, q)| *q).count();
    let need = left.len() / 2 + 1;
    if in_quorum < need {
        return Err(RemovalRefused::WouldLoseQuorum {
            host: host.into(),
            left: left.len(),
            in_quorum,
            need,
        });
    }
    if force {
        return Ok(());
    }
    let staying: Vec<&OsdFact> = facts
        .osds
        .iter()
        .filter(|o| o.host != host && o.serving)
        .collect();
    if (staying.len() as u64) < u64::from(facts.largest_pool) {
        return Err(RemovalRefused::TooFewOsds {
            host: host.into(),
            left: staying.len(),
            need: facts.largest_pool,
        });
    }
    let used: u64 = facts.osds.iter().map(|o| o.used_bytes).sum();
    let room = staying.iter().map(|o| o.size_bytes).sum::<u64>() / 100 * 85;
    if used > room {
        return Err(RemovalRefused::TooFull {
            host: host.into(),
            used: gib(used),
            room: gib(room),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::HostRemoval;
    use crate::plan::OsdView;
    use std::net::SocketAddr;

    fn ceph(force: bool) -> CephView {
        let mut c = CephView::default();
        c.removals.insert(
            "h3".into(),
            HostRemoval {
                host: "h3".into(),
                force,
                requested_unix: 0,
                done: false,
            },
        );
        c.crush_hosts.insert("h1".into(), vec![0]);
        c.crush_hosts.insert("h3".into(), vec![2, 3]);
        for id in [0, 2, 3] {
            c.osds.insert(
                id,
                OsdView {
                    up: true,
                    in_: true,
                    ..Default::default()
                },
            );
        }
        let addr: SocketAddr = "10.0.0.3:3300".parse().unwrap();
        c.monmap.insert("c".into(), (addr, addr));
        c.mon_placements.insert("c".into(), "h3".into());
        c.quorum.insert("c".into());
        c
    }

    fn observed() -> Observed {
        Observed {
            home: "h1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn osds_drain_then_go_then_the_mons_then_the_records() {
        let mut c = ceph(false);
        let (steps, progress) = plan(&observed(), &c);
        assert_eq!(
            steps,
            [Step::MarkOsdOut { id: 2 }, Step::MarkOsdOut { id: 3 }]
        );
        assert_eq!(progress[0].phase, "moving data");
        // Out, still up and not safe: wait. Safe and down (its host stopped it): purge.
        for id in [2, 3] {
            c.osds.get_mut(&id).unwrap().in_ = false;
        }
        c.osds.get_mut(&2).unwrap().pgs = 5;
        assert!(plan(&observed(), &c).0.is_empty());
        assert_eq!(plan(&observed(), &c).1[0].pgs_left, 5);
        let v = c.osds.get_mut(&3).unwrap();
        v.up = false;
        v.safe_to_destroy = true;
        assert_eq!(
            plan(&observed(), &c).0,
            [Step::PurgeOsd {
                id: 3,
                force: false
            }]
        );
        // No OSD left: the mon goes while the others keep a majority (here it is the only mon, so only
        // once out of quorum), then the host's records.
        c.crush_hosts.remove("h3");
        assert!(plan(&observed(), &c).0.is_empty());
        let a: SocketAddr = "10.0.0.1:3300".parse().unwrap();
        c.monmap.insert("a".into(), (a, a));
        c.quorum.insert("a".into());
        assert_eq!(
            plan(&observed(), &c).0,
            [Step::RemoveMon { id: "c".into() }]
        );
        c.monmap.remove("a");
        c.quorum.clear();
        assert_eq!(
            plan(&observed(), &c).0,
            [Step::RemoveMon { id: "c".into() }]
        );
        c.monmap.clear();
        assert_eq!(
            plan(&observed(), &c).0,
            [Step::FinishHostRemoval { host: "h3".into() }]
        );
    }

    #[test]
    fn forced_a_down_host_s_osds_go_without_waiting_for_their_data() {
        let mut c = ceph(true);
        for id in [2, 3] {
            let v = c.osds.get_mut(&id).unwrap();
            v.up = false;
            v.in_ = false;
        }
        assert_eq!(
            plan(&observed(), &c).0,
            [
                Step::PurgeOsd { id: 2, force: true },
                Step::PurgeOsd { id: 3, force: true }
            ]
        );
    }

    fn facts() -> RemovalFacts {
        let osd = |id: u32, host: &str| OsdFact {
            id,
            host: host.into(),
            serving: true,
            size_bytes: 10 << 30,
            used_bytes: 1 << 30,
        };
        RemovalFacts {
            members: vec!["h1".into(), "h2".into(), "h3".into()],
            mons: vec![
                ("a".into(), "h1".into(), true),
                ("b".into(), "h2".into(), true),
                ("c".into(), "h3".into(), true),
            ],
            osds: vec![osd(0, "h1"), osd(1, "h2"), osd(2, "h3"), osd(3, "h3")],
            largest_pool: 2,
        }
    }

    #[test]
    fn a_removal_keeps_quorum_and_room_for_every_copy() {
        let f = facts();
        assert_eq!(check_removal(&f, "h3", false), Ok(()));
        assert_eq!(
            check_removal(&f, "h9", false),
            Err(RemovalRefused::NotMember("h9".into()))
        );
        // h2's mon is out: without h3's, a and b are left and only a is in quorum.
        let mut g = f.clone();
        g.mons[1].2 = false;
        assert!(matches!(
            check_removal(&g, "h3", true),
            Err(RemovalRefused::WouldLoseQuorum {
                left: 2,
                in_quorum: 1,
                need: 2,
                ..
            })
        ));
        // Three copies and two OSDs left; forced, only quorum counts.
        let mut g = f.clone();
        g.largest_pool = 3;
        assert!(matches!(
            check_removal(&g, "h3", false),
            Err(RemovalRefused::TooFewOsds {
                left: 2,
                need: 3,
                ..
            })
        ));
        assert_eq!(check_removal(&g, "h3", true), Ok(()));
        // 18 GiB of data does not fit 85% of the 20 GiB left.
        let mut g = f;
        for o in &mut g.osds {
            o.used_bytes = 9 << 29;
        }
        assert!(matches!(
            check_removal(&g, "h3", false),
            Err(RemovalRefused::TooFull { .. })
        ));
    }
}
