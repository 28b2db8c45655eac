//! Text rendering of reports for people; `-o json` prints the same reports as JSON.

use std::fmt::Write as _;

use rookery_orchestrator::disks::Verdict;
use rookery_orchestrator::preflight::human;
use rookery_orchestrator::report::ClusterReport;
use rookery_platform::DaemonState;

pub fn status(r: &ClusterReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "cluster   {} (fsid {})", r.name, r.fsid);
    let _ = writeln!(o, "data dir  {}", r.data_dir);
    match &r.supervisor {
        Some(s) => {
            let _ = writeln!(
                o,
                "supervisor pid {}, up {} s, RSS {}",
                s.pid,
                s.uptime_secs,
                human(s.rss_bytes)
            );
            if let Some(addr) = &s.metrics_address {
                let _ = writeln!(o, "metrics   http://{addr}/metrics");
            }
        }
        None => {
            let _ = writeln!(
                o,
                "supervisor NOT RUNNING: crashed daemons are not restarted; `rookery up` starts it"
            );
        }
    }
    match &r.ceph {
        Some(c) => {
            let _ = writeln!(o, "health    {}", c.health);
            for check in &c.checks {
                let _ = writeln!(
                    o,
                    "  {} {}: {}\n    {}",
                    check.severity, check.code, check.message, check.explanation
                );
                for line in &check.details {
                    let _ = writeln!(o, "    - {line}");
                }
            }
            let quorum: Vec<&str> = c
                .mons
                .iter()
                .filter(|m| m.in_quorum)
                .map(|m| m.name.as_str())
                .collect();
            if !c.hosts.is_empty() {
                let leader = r.reconcile.as_ref().and_then(|i| i.leader.as_deref());
                match leader {
                    Some(l) => {
                        let _ = writeln!(o, "hosts     {} ({l} leads)", c.hosts.len());
                    }
                    None => {
                        let _ = writeln!(o, "hosts     {}", c.hosts.len());
                    }
                }
                for h in &c.hosts {
                    let osds: Vec<String> = h.osds.iter().map(|i| format!("osd.{i}")).collect();
                    let mons: Vec<String> = h.mons.iter().map(|m| format!("mon.{m}")).collect();
                    let _ = writeln!(
                        o,
                        "  {:<12} {:<16} {:<9} {}",
                        h.name,
                        h.address,
                        h.state.to_uppercase(),
                        mons.iter()
                            .chain(&osds)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                }
            }
            let _ = writeln!(
                o,
                "mons      {} ({} in quorum: {})",
                c.mons.len(),
                quorum.len(),
                quorum.join(", ")
            );
            for m in &c.mons {
                let _ = writeln!(
                    o,
                    "  mon.{:<6} {}{}",
                    m.name,
                    m.address,
                    if m.in_quorum { "" } else { "  OUT OF QUORUM" }
                );
            }
            let _ = writeln!(
                o,
                "mgr       {}{}",
                if c.mgr.available {
                    format!("{} active", c.mgr.active)
                } else {
                    "none active".into()
                },
                if c.mgr.standbys > 0 {
                    format!(", {} standby", c.mgr.standbys)
                } else {
                    String::new()
                }
            );
            let up = c.osds.iter().filter(|x| x.up).count();
            let inn = c.osds.iter().filter(|x| x.in_).count();
            let _ = writeln!(o, "osds      {} ({up} up, {inn} in)", c.osds.len());
            for d in &c.osds {
                let _ = writeln!(
                    o,
                    "  osd.{:<4} {:<4} {:<3} host {:<12} {} of {} used  {}",
                    d.id,
                    if d.up { "up" } else { "DOWN" },
                    if d.in_ { "in" } else { "OUT" },
                    d.host,
                    human(d.used_bytes),
                    human(d.size_bytes),
                    d.backing
                );
            }
            let _ = writeln!(o, "pools     {}", c.pools.len());
            for p in &c.pools {
                let _ = writeln!(
                    o,
                    "  {:<24} size {} (min {}), {} PGs, {} stored in {} objects{}",
                    p.name,
                    p.size,
                    p.min_size,
                    p.pg_num,
                    human(p.stored_bytes),
                    p.objects,
                    if p.applications.is_empty() {
                        String::new()
                    } else {
                        format!(", for {}", p.applications.join(","))
                    }
                );
            }
            for f in &c.filesystems {
                let mds: Vec<String> = f
                    .mds
                    .iter()
                    .map(|m| format!("{} {}", m.name, m.state.trim_start_matches("up:")))
                    .collect();
                let _ = writeln!(
                    o,
                    "filesystem {}: {} active wanted; mds {}{}",
                    f.name,
                    f.max_mds,
                    if mds.is_empty() {
                        "none yet".to_string()
                    } else {
                        mds.join(", ")
                    },
                    if f.standbys.is_empty() {
                        String::new()
                    } else {
                        format!("; standby {}", f.standbys.join(", "))
                    }
                );
            }
            for st in &c.object_stores {
                let _ = writeln!(
                    o,
                    "object store {}: S3 at {}{}",
                    st.name,
                    st.endpoint,
                    if st.responding {
                        ""
                    } else {
                        " (NOT ANSWERING)"
                    }
                );
            }
            let _ = writeln!(
                o,
                "capacity  {} used of {}, {} available",
                human(c.capacity.used_bytes),
                human(c.capacity.total_bytes),
                human(c.capacity.avail_bytes)
            );
            let states: Vec<String> = c
                .pgs
                .by_state
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            let _ = writeln!(o, "pgs       {}: {}", c.pgs.total, states.join(", "));
        }
        None => {
            let _ = writeln!(
                o,
                "ceph      unreachable: {}",
                r.ceph_error.clone().unwrap_or_default()
            );
        }
    }
    let _ = writeln!(o, "daemons");
    for d in &r.daemons {
        let _ = writeln!(
            o,
            "  {:<8} {:<10} pid {:<8} restarts {}{}{}",
            d.name,
            rookery_orchestrator::metrics::state_label(d.state),
            d.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            d.restarts,
            if d.adopted { ", adopted" } else { "" },
            d.last_exit
                .as_ref()
                .map(|e| format!(", last exit: {e}"))
                .unwrap_or_default()
        );
    }
    for d in r.daemons.iter().filter(|d| d.crash_looping) {
        if d.state == DaemonState::GaveUp {
            let _ = writeln!(
                o,
                "PROBLEM   {} died at start {} times in a row and is no longer restarted (last exit: {}); \
                 fix the cause (its output below, more in {}/log/{}.stdout and {}/log/ceph-{}.log), then run: rookery daemon retry {}",
                d.name,
                d.restarts + 1,
                d.last_exit.as_deref().unwrap_or("unknown"),
                r.data_dir,
                d.name,
                r.data_dir,
                d.name,
                d.name
            );
        } else {
            let _ = writeln!(
                o,
                "PROBLEM   {} keeps dying shortly after each start ({} restarts); the reason is at the end of {}/log/{}.stdout and {}/log/ceph-{}.log",
                d.name, d.restarts, r.data_dir, d.name, r.data_dir, d.name
            );
        }
        for line in &d.log_tail {
            let _ = writeln!(o, "          | {line}");
        }
    }
    if let Some(i) = &r.reconcile {
        for d in &i.devices {
            let what = match &d.verdict {
                Verdict::Take => "blank and selected: becomes an OSD".to_string(),
                Verdict::Osd { id: Some(id) } => format!("osd.{id}"),
                Verdict::Osd { id: None } => "an OSD of this cluster".to_string(),
                Verdict::Skip { .. } => format!("skipped: {}", d.why.as_deref().unwrap_or("")),
            };
            let _ = writeln!(o, "device    {} ({}): {what}", d.path, human(d.size_bytes));
        }
        for q in &i.retiring {
            let _ = writeln!(
                o,
                "retiring  osd.{}: {}{}{}",
                q.id,
                q.phase,
                q.pgs_left
                    .map(|n| format!(" ({n} PGs left on it)"))
                    .unwrap_or_default(),
                q.replace_with
                    .as_ref()
                    .map(|d| format!("; replaced by an OSD on {}", d.display()))
                    .unwrap_or_default()
            );
        }
        for problem in &i.problems {
            let _ = writeln!(o, "PROBLEM   {problem}");
        }
        for b in &i.blocked {
            let _ = writeln!(o, "blocked   {b}");
        }
        if let Some(e) = &i.last_error {
            let _ = writeln!(o, "last error {e}");
        }
        for n in &i.notices {
            let _ = writeln!(o, "note      {n}");
        }
    }
    if !r.ready {
        let _ = writeln!(o, "not ready {}", r.not_ready.join("; "));
    }
    o
}
