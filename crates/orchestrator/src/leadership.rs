//! Which host of a cluster over several hosts carries out the cluster-wide work (pools, filesystems,
//! object stores, placing daemons, replacing mons, removals). One host leads at a time, as the record
//! `rookery/leader` in the mons' config-key store says; it rewrites the record every [`RENEW`] to show
//! it is alive. A member that has seen the record unchanged for [`LEASE`] (by its own clock, so hosts'
//! clocks need not agree) takes over when it is the first member, in the order they joined, that runs
//! and is not leaving. A leader whose host is being removed hands the record to that member itself.
//! The host that made the cluster leads until then.
//!
//! Two hosts may both believe they lead for one pass while a takeover is written and read back; the
//! cluster-wide steps are idempotent, so the worst is a step done twice.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long the record may stay unchanged before another member takes over.
pub const LEASE: Duration = Duration::from_secs(30);

/// How often the leader rewrites the record (a mon write each time, so not every pass).
pub const RENEW: Duration = Duration::from_secs(10);

/// How long a leader keeps its record fresh through one pass's steps: a pass stuck longer than this
/// lets another member take over.
pub const LONGEST_PASS: Duration = Duration::from_secs(600);

/// The record in Ceph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderRecord {
    pub host: String,
    /// Raised at every write, so that members see the leader is alive.
    pub beat: u64,
}

/// This host's part in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub leads: bool,
    /// The record to write in this pass (a renewal, a takeover or a handover).
    pub write: Option<LeaderRecord>,
}

/// What the decision needs to know of this host and the cluster.
#[derive(Debug, Clone, Copy)]
pub struct LeadFacts<'a> {
    pub home: &'a str,
    /// This host made the cluster (it leads when nobody has yet).
    pub made_here: bool,
    /// Members that could lead, in the order they joined: running and not being removed.
    pub candidates: &'a [String],
    /// This host is being removed.
    pub leaving: bool,
}

/// Decides whether this host leads and what to write, from the record read from Ceph and how long
/// this host has seen it unchanged.
pub fn decide(
    record: Option<&LeaderRecord>,
    unchanged_for: Duration,
    facts: LeadFacts<'_>,
) -> Lead {
    let follow = Lead {
        leads: false,
        write: None,
    };
    let Some(record) = record else {
        return if facts.made_here {
            Lead {
                leads: true,
                write: Some(LeaderRecord {
                    host: facts.home.to_string(),
                    beat: 1,
                }),
            }
        } else {
            follow
        };
    };
    let next = |host: &str| LeaderRecord {
        host: host.to_string(),
        beat: record.beat + 1,
    };
    if record.host == facts.home {
        if facts.leaving {
            // Handed over; this host then leaves as any other does.
            if let Some(successor) = facts.candidates.iter().find(|c| *c != facts.home) {
                return Lead {
                    leads: false,
                    write: Some(next(successor)),
                };
            }
        }
        return Lead {
            leads: true,
            write: (unchanged_for >= RENEW).then(|| next(facts.home)),
        };
    }
    let successor = facts.candidates.iter().find(|c| **c != record.host);
    if unchanged_for >= LEASE && successor.is_some_and(|s| s == facts.home) && !facts.leaving {
        // Led from the next pass on, once the record reads back as this host's.
        return Lead {
            leads: false,
            write: Some(next(facts.home)),
        };
    }
    follow
}

/// While a leader's steps run (some take longer than the lease: setting up an object store's zone
/// waits on the watchers of a gateway that died with the old leader), the renewal it would write:
/// the record read now, renewed when it is still this host's; None once another host holds it.
pub fn renewal(read: Option<&LeaderRecord>, home: &str) -> Option<LeaderRecord> {
    read.filter(|r| r.host == home).map(|r| LeaderRecord {
        host: r.host.clone(),
        beat: r.beat + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(host: &str, beat: u64) -> Option<LeaderRecord> {
        Some(LeaderRecord {
            host: host.into(),
            beat,
        })
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn facts<'a>(home: &'a str, candidates: &'a [String]) -> LeadFacts<'a> {
        LeadFacts {
            home,
            made_here: home == "h1",
            candidates,
            leaving: false,
        }
    }

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_host_that_made_the_cluster_leads_first() {
        let all = hosts(&["h1", "h2"]);
        let first = decide(None, Duration::ZERO, facts("h1", &all));
        assert!(first.leads);
        assert_eq!(first.write.unwrap().host, "h1");
        assert_eq!(
            decide(None, Duration::ZERO, facts("h2", &all)),
            Lead {
                leads: false,
                write: None
            }
        );
    }

    #[test]
    fn the_leader_renews_only_every_so_often() {
        let all = hosts(&["h1", "h2"]);
        let quiet = decide(view("h1", 4).as_ref(), secs(3), facts("h1", &all));
        assert!(quiet.leads && quiet.write.is_none());
        let renewed = decide(view("h1", 4).as_ref(), secs(10), facts("h1", &all));
        assert_eq!(
            renewed.write,
            Some(LeaderRecord {
                host: "h1".into(),
                beat: 5
            })
        );
    }

    #[test]
    fn the_first_running_member_takes_over_a_silent_lead() {
        // h1 led and went quiet; h2 is down (not a candidate), so h3 takes over, and h4 waits.
        let running = hosts(&["h3", "h4"]);
        assert!(
            decide(view("h1", 7).as_ref(), secs(29), facts("h3", &running))
                .write
                .is_none()
        );
        let takeover = decide(view("h1", 7).as_ref(), secs(30), facts("h3", &running));
        assert!(!takeover.leads);
        assert_eq!(
            takeover.write,
            Some(LeaderRecord {
                host: "h3".into(),
                beat: 8
            })
        );
        assert!(
            decide(view("h1", 7).as_ref(), secs(300), facts("h4", &running))
                .write
                .is_none()
        );
        // The record read back: h3 leads, and h1, back, follows.
        assert!(decide(view("h3", 8).as_ref(), secs(0), facts("h3", &running)).leads);
        let all = hosts(&["h1", "h3", "h4"]);
        assert!(!decide(view("h3", 8).as_ref(), secs(0), facts("h1", &all)).leads);
    }

    #[test]
    fn a_leader_being_removed_hands_over() {
        let all = hosts(&["h1", "h2", "h3"]);
        let mut f = facts("h1", &all);
        f.leaving = true;
        let handover = decide(view("h1", 2).as_ref(), secs(0), f);
        assert!(!handover.leads);
        assert_eq!(handover.write.unwrap().host, "h2");
        // Nobody to hand over to: it keeps leading.
        let alone = hosts(&["h1"]);
        f.candidates = &alone;
        assert!(decide(view("h1", 2).as_ref(), secs(0), f).leads);
    }

    #[test]
    fn a_long_pass_renews_only_its_own_record() {
        assert_eq!(renewal(view("h2", 7).as_ref(), "h2"), view("h2", 8));
        assert_eq!(renewal(view("h4", 9).as_ref(), "h2"), None);
        assert_eq!(renewal(None, "h2"), None);
    }
}
