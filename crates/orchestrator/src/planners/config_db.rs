//! The spec's `cephConfig` in the mons' config database, and in every running daemon: options set or
//! removed there first; then each daemon still running with an old value that Ceph cannot change at run
//! time, or running a Ceph binary that was upgraded on disk, is restarted, one at a time in Ceph's
//! upgrade order (mons, mgrs, OSDs, MDS, gateways), only when Ceph says it may stop (`ok-to-stop`) and,
//! for an OSD, only while every other OSD is up.

use std::collections::BTreeMap;

use crate::plan::{same_setting, Step};

/// (section, option) -> value.
pub type Options = BTreeMap<(String, String), String>;

/// A running daemon whose options differ from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleDaemon {
    /// As the platform names it: `mon.a`, `osd.3`, `rgw.s3`.
    pub daemon: String,
    pub options: Vec<String>,
    /// One of them cannot change while it runs (or the daemon holds it from its config file), or it
    /// was upgraded.
    pub needs_restart: bool,
    /// Its program was replaced on disk (a Ceph package upgrade) while it ran.
    pub upgraded: bool,
}

/// What the running daemons run with, once the database holds what the spec asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollout {
    pub stale: Vec<StaleDaemon>,
    /// Ceph's answer to `ok-to-stop` for the first daemon that needs a restart (Err: why not).
    pub gate: Option<Result<(), String>>,
    pub all_osds_up: bool,
    /// The daemons' options were compared with the database (not only their programs).
    pub config_checked: bool,
}

/// The database as the mons hold it: (section, option) -> (value, can change at run time).
pub type Database = BTreeMap<(String, String), (String, bool)>;

/// A fingerprint of the options the spec puts in the database.
pub fn digest(want: &Options) -> String {
    crate::spec_digest(&format!("{want:?}"))
}

pub fn plan(
    want: &Options,
    applied: &BTreeMap<String, BTreeMap<String, String>>,
    db: &Database,
    settled: Option<&str>,
    rollout: Option<&Rollout>,
) -> (Vec<Step>, Option<String>) {
    let mut steps = Vec::new();
    for ((section, option), value) in want {
        let have = db.get(&(section.clone(), option.clone()));
        if !have.is_some_and(|(v, _)| same_setting(value, v)) {
            steps.push(Step::SetConfig {
                section: section.clone(),
                option: option.clone(),
                value: value.clone(),
            });
        }
    }
    for (section, options) in applied {
        for option in options.keys() {
            if !want.contains_key(&(section.clone(), option.clone())) {
                steps.push(Step::RemoveConfig {
                    section: section.clone(),
                    option: option.clone(),
                });
            }
        }
    }
    let digest = digest(want);
    if !steps.is_empty() {
        return (steps, None);
    }
    let settled = settled == Some(digest.as_str());
    let Some(rollout) = rollout else {
        let waiting = (!settled)
            .then(|| "checking that the running daemons have the spec's cephConfig".to_string());
        return (steps, waiting);
    };
    if rollout.stale.is_empty() {
        if !settled && rollout.config_checked {
            return (vec![Step::MarkConfigSettled { digest }], None);
        }
        let waiting = (!settled)
            .then(|| "checking that the running daemons have the spec's cephConfig".to_string());
        return (steps, waiting);
    }
    let Some(first) = rollout.stale.iter().find(|s| s.needs_restart) else {
        let names: Vec<&str> = rollout.stale.iter().map(|s| s.daemon.as_str()).collect();
        return (
            steps,
            Some(format!(
                "{} taking the new config (no restart needed)",
                names.join(", ")
            )),
        );
    };
    let is_osd = first.daemon.starts_with("osd.");
    let what = if first.upgraded {
        "run its upgraded Ceph program".to_string()
    } else {
        format!("run with {}", first.options.join(", "))
    };
    let waiting = |why: String| {
        Some(format!(
            "{} must restart to {what}: waiting, {why}",
            first.daemon
        ))
    };
    match &rollout.gate {
        _ if is_osd && !rollout.all_osds_up => (
            steps,
            waiting("another OSD is down (never two at once)".into()),
        ),
        Some(Ok(())) => (
            vec![Step::RestartForConfig {
                daemon: first.daemon.clone(),
                options: first.options.clone(),
                upgrade: first.upgraded,
            }],
            None,
        ),
        Some(Err(why)) => (
            steps,
            waiting(format!("Ceph says it may not stop now: {why}")),
        ),
        None => (steps, waiting("Ceph has not said it may stop".into())),
    }
}

/// The value `daemon` (Ceph's name: `osd.3`, `client.rgw.s3`) should run with for each option in the
/// database: its own section's, else its kind's, else global's.
pub fn expected_for(ceph_name: &str, want: &Options) -> BTreeMap<String, String> {
    let kind = ceph_name.split('.').next().unwrap_or(ceph_name);
    let rank = |section: &str| {
        if section == ceph_name {
            Some(2)
        } else if section == kind {
            Some(1)
        } else if section == "global" {
            Some(0)
        } else {
            None
        }
    };
    let mut best: BTreeMap<String, (u8, String)> = BTreeMap::new();
    for ((section, option), value) in want {
        let Some(r) = rank(section) else { continue };
        if best.get(option).is_none_or(|(have, _)| r > *have) {
            best.insert(option.clone(), (r, value.clone()));
        }
    }
    best.into_iter().map(|(o, (_, v))| (o, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(items: &[(&str, &str, &str)]) -> Options {
        items
            .iter()
            .map(|(s, k, v)| ((s.to_string(), k.to_string()), v.to_string()))
            .collect()
    }

    #[test]
    fn the_database_first_then_settled_when_every_daemon_runs_with_it() {
        let want = opts(&[("osd", "osd_max_backfills", "3")]);
        let applied = BTreeMap::from([(
            "global".to_string(),
            BTreeMap::from([("debug_ms".to_string(), "1".to_string())]),
        )]);
        let (steps, _) = plan(&want, &applied, &Database::new(), None, None);
        assert_eq!(
            steps,
            [
                Step::SetConfig {
                    section: "osd".into(),
                    option: "osd_max_backfills".into(),
                    value: "3".into()
                },
                Step::RemoveConfig {
                    section: "global".into(),
                    option: "debug_ms".into()
                }
            ]
        );
        let db: Database = [(
            ("osd".to_string(), "osd_max_backfills".to_string()),
            ("3".to_string(), true),
        )]
        .into();
        let fine = Rollout {
            all_osds_up: true,
            config_checked: true,
            ..Default::default()
        };
        let (steps, _) = plan(&want, &BTreeMap::new(), &db, None, Some(&fine));
        assert_eq!(
            steps,
            [Step::MarkConfigSettled {
                digest: digest(&want)
            }]
        );
        let (steps, waiting) = plan(
            &want,
            &BTreeMap::new(),
            &db,
            Some(&digest(&want)),
            Some(&fine),
        );
        assert!(steps.is_empty() && waiting.is_none());
    }

    #[test]
    fn restarts_one_daemon_at_a_time_and_only_when_ceph_says_it_may_stop() {
        let want = opts(&[("osd", "osd_op_num_shards", "4")]);
        let db: Database = [(
            ("osd".to_string(), "osd_op_num_shards".to_string()),
            ("4".to_string(), false),
        )]
        .into();
        let stale = |d: &str| StaleDaemon {
            daemon: d.into(),
            options: vec!["osd_op_num_shards".into()],
            needs_restart: true,
            upgraded: false,
        };
        let mut r = Rollout {
            stale: vec![stale("osd.0"), stale("osd.1")],
            gate: Some(Ok(())),
            all_osds_up: true,
            config_checked: true,
        };
        let (steps, _) = plan(&want, &BTreeMap::new(), &db, None, Some(&r));
        assert_eq!(
            steps,
            [Step::RestartForConfig {
                daemon: "osd.0".into(),
                options: vec!["osd_op_num_shards".into()],
                upgrade: false
            }]
        );
        r.all_osds_up = false;
        let (steps, waiting) = plan(&want, &BTreeMap::new(), &db, None, Some(&r));
        assert!(steps.is_empty());
        assert!(waiting.unwrap().contains("never two at once"));
        r.all_osds_up = true;
        r.gate = Some(Err("2 PGs would become inactive".into()));
        let (steps, waiting) = plan(&want, &BTreeMap::new(), &db, None, Some(&r));
        assert!(steps.is_empty());
        assert!(waiting.unwrap().contains("2 PGs would become inactive"));
    }

    #[test]
    fn an_upgraded_daemon_restarts_even_when_the_config_is_settled() {
        let want = Options::new();
        let r = Rollout {
            stale: vec![StaleDaemon {
                daemon: "mon.a".into(),
                options: vec![],
                needs_restart: true,
                upgraded: true,
            }],
            gate: Some(Ok(())),
            all_osds_up: true,
            config_checked: false,
        };
        let (steps, _) = plan(
            &want,
            &BTreeMap::new(),
            &Database::new(),
            Some(&digest(&want)),
            Some(&r),
        );
        assert!(matches!(&steps[..], [Step::RestartForConfig { daemon, .. }] if daemon == "mon.a"));
        let quiet = Rollout { stale: vec![], ..r };
        let (steps, waiting) = plan(
            &want,
            &BTreeMap::new(),
            &Database::new(),
            Some(&digest(&want)),
            Some(&quiet),
        );
        assert!(steps.is_empty() && waiting.is_none());
    }

    #[test]
    fn the_most_specific_section_wins() {
        let want = opts(&[
            ("global", "debug_ms", "1"),
            ("osd", "debug_ms", "2"),
            ("osd.3", "debug_ms", "3"),
            ("mon", "mon_x", "1"),
        ]);
        assert_eq!(expected_for("osd.3", &want)["debug_ms"], "3");
        assert_eq!(expected_for("osd.1", &want)["debug_ms"], "2");
        assert_eq!(expected_for("mgr.a", &want)["debug_ms"], "1");
        assert!(!expected_for("osd.1", &want).contains_key("mon_x"));
        assert_eq!(expected_for("client.rgw.s3", &want).len(), 1);
    }
}
